"""The ``llmtap`` command line: serve, inspect, envoy-config, demo."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import sys
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from llmtap import __version__

EXAMPLES = "examples"
COMMANDS = (
    ("serve", "llmtap.gateway.server", "run the ext_proc server"),
    ("envoy-config", "llmtap.gateway.envoy_config", "print an Envoy bootstrap wired to llmtap"),
    ("demo", "llmtap.gateway.demo.runner", "Envoy + llmtap + providers + a collector, on loopback"),
)


def _split(data: bytes, how: str) -> Iterator[bytes]:
    """Cut a body the way Envoy might hand it over: whole, every N bytes, or at random."""
    if how == "whole" or not data:
        yield data
        return
    if how.startswith("random"):
        _, _, seed = how.partition(":")
        rng = random.Random(int(seed) if seed else 0)
        i = 0
        while i < len(data):
            n = rng.randint(1, max(1, min(len(data) - i, 4096)))
            yield data[i : i + n]
            i += n
        return
    try:
        step = int(how)
    except ValueError:
        raise SystemExit(
            f"llmtap inspect: --split must be whole, N or random[:SEED], got {how!r}"
        ) from None
    if step < 1:
        raise SystemExit("llmtap inspect: --split N needs N >= 1")
    for i in range(0, len(data), step):
        yield data[i : i + step]


def _parse_headers(values: Sequence[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw in values:
        name, sep, value = raw.partition(":")
        if not sep or not name.strip():
            raise SystemExit(f"llmtap inspect: -H wants 'name: value', got {raw!r}")
        headers[name.strip().lower()] = value.strip()
    return headers


def _load_example(name: str) -> tuple[dict[str, Any], bytes, bytes]:
    root = resources.files("llmtap.gateway").joinpath(EXAMPLES, name)
    if not root.is_dir():
        known = sorted(
            p.name for p in resources.files("llmtap.gateway").joinpath(EXAMPLES).iterdir()
        )
        raise SystemExit(f"llmtap inspect: no example {name!r}; known: {', '.join(known)}")
    meta = json.loads(root.joinpath("exchange.json").read_text())
    body = next(p for p in root.iterdir() if p.name.startswith("response.")).read_bytes()
    return meta, root.joinpath("request.json").read_bytes(), body


def _frames_view(status: int, headers: dict[str, str], chunks: list[bytes], paths: str) -> dict:
    """Frames and raw scanned fields: what core/ sees, before ext/ folds it."""
    from llmtap.core import Decompressor, PathSet, StreamScanner
    from llmtap.core.framing import framer_for

    spec = dict(
        (p.partition("=")[0], p.partition("=")[2]) if "=" in p else (p.lstrip("?"), p)
        for p in (s.strip() for s in paths.split(","))
        if p
    )
    framing, framer = framer_for(status, headers.get("content-type", ""))
    encoding = headers.get("content-encoding", "identity")
    dec = Decompressor(encoding)
    scanner = StreamScanner(framing, PathSet(spec))
    frames: list[Any] = []
    for chunk in chunks:
        plain = dec.feed(chunk)
        frames.extend(framer.feed(plain))
        scanner.feed(plain)
    tail = dec.close()
    frames.extend(framer.feed(tail))
    frames.extend(framer.close())
    scanner.feed(tail)
    scanner.close()
    return {
        "framing": framing,
        "content_encoding": encoding,
        "decompress_error": dec.error,
        "framing_error": framer.error,
        "frames": [_frame_json(f) for f in frames],
        "fields": dict(zip(spec, scanner.values, strict=True)),
        "first_index": dict(zip(spec, scanner.first_index, strict=True)),
        "docs": scanner.docs,
        "scan_error": scanner.error,
    }


def _frame_json(frame: Any) -> Any:
    def text(b: Any) -> str:
        return bytes(b).decode("utf-8", "replace")

    if hasattr(frame, "payload"):
        return {
            "headers": {
                k: v if isinstance(v, (str, int, bool)) else repr(v)
                for k, v in frame.headers.items()
            },
            "payload": text(frame.payload),
            "error": frame.error,
        }
    if hasattr(frame, "data") and hasattr(frame, "event"):
        out: dict[str, Any] = {"data": text(frame.data)}
        for field in ("event", "id", "retry"):
            if getattr(frame, field) is not None:
                out[field] = getattr(frame, field)
        return out
    return text(frame)


def cmd_inspect(args: argparse.Namespace) -> int:
    if args.example:
        meta, request_body, response_body = _load_example(args.example)
        method, url, status = meta["method"], meta["url"], meta["status"]
        headers = {k.lower(): v for k, v in meta["response_headers"].items()}
    else:
        if not (args.url and args.response_body):
            raise SystemExit("llmtap inspect: give --url and --response-body, or --example NAME")
        method, url, status = args.method, args.url, args.status
        headers = _parse_headers(args.header)
        request_body = Path(args.request_body).read_bytes() if args.request_body else b""
        response_body = Path(args.response_body).read_bytes()
    headers.update(_parse_headers(args.header) if args.example else {})
    chunks = list(_split(response_body, args.split))
    if args.format == "frames":
        out = _frames_view(status, headers, chunks, args.paths)
    else:
        from llmtap.ext import inspect_exchange

        out = inspect_exchange(
            method=method,
            url=url,
            status=status,
            response_headers=headers,
            request_body=request_body or None,
            response_chunks=chunks,
        )
    json.dump(out, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llmtap", description=__doc__)
    p.add_argument("--version", action="version", version=f"llmtap {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    ins = sub.add_parser("inspect", help="show what llmtap reads from one captured exchange")
    ins.add_argument("--example", help="a bundled example exchange, e.g. openai_chat_stream")
    ins.add_argument("--method", default="POST")
    ins.add_argument("--url", help="request URL, e.g. https://api.openai.com/v1/chat/completions")
    ins.add_argument("--status", type=int, default=200)
    ins.add_argument("-H", "--header", action="append", default=[], help="response header")
    ins.add_argument("--request-body", help="file with the request body")
    ins.add_argument("--response-body", help="file with the raw response body")
    ins.add_argument("--split", default="whole", help="whole | N | random[:SEED]")
    ins.add_argument(
        "--format",
        choices=["json", "frames"],
        default="json",
        help="json: the span llmtap would emit; frames: raw frames and scanned fields",
    )
    ins.add_argument(
        "--paths",
        default="model,id,usage.prompt_tokens,usage.completion_tokens,"
        "usage.input_tokens,usage.output_tokens,choices[*].finish_reason,?choices[*].delta.content",
        help="comma-separated scanner paths (name=path allowed) for --format frames",
    )
    ins.set_defaults(func=cmd_inspect)

    # Each service command owns its flags; import it only when it is the one asked for,
    # so `llmtap inspect` does not pay for grpc, Envoy or the SDKs.
    wanted = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
    for name, module, help_text in COMMANDS:
        cmd = sub.add_parser(name, help=help_text)
        if wanted == name:
            mod = importlib.import_module(module)
            mod.add_arguments(cmd)
            cmd.set_defaults(func=mod.main)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    if argv is not None:
        sys.argv[1:] = list(argv)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # `llmtap inspect ... | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
