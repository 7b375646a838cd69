"""What each scenario sends through Envoy and what the upstream answers, byte for byte.

The bodies come from the demo upstream's synthesizers (``gateway/demo/upstream.py``,
checked against recorded provider traffic), with the number of pieces fixed so that
"200 chunks" means 200 writes on the upstream socket. Everything is computed once, at
import, from fixed seeds: the upstream process and the load generator build the same
bytes independently.

Each scenario's request model is ``bench-<name>``: spans and token metrics name the
scenario they belong to, so the collector attributes them without guessing.
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from llmtap.gateway.demo import upstream as demo

SCENARIO_HEADER = "x-bench-scenario"
HOLD = "hold"  # the memory run's scenario: the upstream stops mid-stream until released

_WORDS = re.findall(r"\s*\S+", " ".join(demo._SENTENCES))


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    #: Path on Envoy's listener (``/<provider>/...``: prefix routing, Host rewritten).
    path: str
    request_headers: tuple[tuple[str, str], ...]
    request_body: bytes
    status: int
    response_headers: tuple[tuple[str, str], ...]
    #: One entry per upstream write (chunked framing) or the whole body (``stream`` false).
    pieces: tuple[bytes, ...]
    stream: bool
    #: Framing units in the body: SSE events, eventstream messages; 1 for a JSON body.
    events: int
    #: Counts for the "CPU per request on the streaming scenarios" target.
    streaming: bool
    #: Request rate of the paced turns: well below what the slowest configuration
    #: sustains here, so that CPU, latency and span counts are measured unsaturated.
    paced_rps: float = 100.0

    @property
    def model(self) -> str:
        """The request model of the paced turns (and the warm-up)."""
        return "bench-" + self.name

    @property
    def model_max(self) -> str:
        """The request model of the throughput turns: their spans are counted apart."""
        return "bench-" + self.name + "-max"

    def path_for(self, model: str) -> str:
        return self.path.replace(self.model, model)

    def body_for(self, model: str) -> bytes:
        return self.request_body.replace(self.model.encode(), model.encode())

    @property
    def body_bytes(self) -> int:
        return sum(len(p) for p in self.pieces)

    def headers_for_request(self) -> list[tuple[str, str]]:
        return [
            ("content-type", "application/json"),
            (SCENARIO_HEADER, self.name),
            *self.request_headers,
        ]


def _words(n: int, rng: random.Random) -> list[str]:
    start = rng.randrange(len(_WORDS))
    return [_WORDS[(start + i) % len(_WORDS)] for i in range(n)]


def _call(name: str, body: dict[str, object], words: int) -> demo._Call:
    # The demo's private call record: its synthesizers need one, and the word count
    # must be exact here (the demo's own `_new_call` picks 1-3 random sentences).
    rng = random.Random(zlib.crc32(name.encode()))
    return demo._Call(body, rng, _words(words, rng), input_tokens=42, created=1_750_000_000)


def _chat_request(name: str, stream: bool) -> dict[str, object]:
    body: dict[str, object] = {
        "model": "bench-" + name,
        "messages": [
            {"role": "system", "content": "You answer in one short paragraph."},
            {"role": "user", "content": "How do I keep an eye on what my LLM calls cost?"},
        ],
        "max_tokens": 1024,
        "temperature": 0.2,
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _scenario(
    name: str,
    title: str,
    path: str,
    body: dict[str, object],
    reply: demo.Reply,
    *,
    events: int,
    request_headers: tuple[tuple[str, str], ...] = (),
    extra_response_headers: tuple[tuple[str, str], ...] = (),
) -> Scenario:
    headers = (("content-type", reply.content_type), *reply.headers, *extra_response_headers)
    pieces = tuple(reply.pieces) if reply.stream else (b"".join(reply.pieces),)
    return Scenario(
        name=name,
        title=title,
        path=path,
        request_headers=request_headers,
        request_body=_dumps(body),
        status=reply.status,
        response_headers=tuple(headers),
        pieces=pieces,
        stream=reply.stream,
        events=events,
        streaming=reply.stream,
    )


def chat(name: str, title: str, words: int) -> Scenario:
    body = _chat_request(name, stream=False)
    reply = demo.openai_chat(_call(name, body, words))
    return _scenario(name, title, "/openai/v1/chat/completions", body, reply, events=1)


def chat_stream(name: str, title: str, chunks: int) -> Scenario:
    # role chunk + one per word + finish chunk + usage chunk + [DONE]
    body = _chat_request(name, stream=True)
    reply = demo.openai_chat(_call(name, body, chunks - 4))
    assert len(reply.pieces) == chunks, (name, len(reply.pieces))
    return _scenario(name, title, "/openai/v1/chat/completions", body, reply, events=chunks)


def gzip_stream(name: str, title: str, chunks: int) -> Scenario:
    """An OpenAI stream with ``content-encoding: gzip``, each piece sync-flushed so
    that it decodes on its own (what a compressing proxy in front of a stream does)."""
    plain = chat_stream(name, title, chunks)
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    pieces = [z.compress(p) + z.flush(zlib.Z_SYNC_FLUSH) for p in plain.pieces]
    pieces[-1] += z.flush(zlib.Z_FINISH)
    return Scenario(
        name=name,
        title=title,
        path=plain.path,
        request_headers=(("accept-encoding", "gzip"),),
        request_body=plain.request_body,
        status=200,
        response_headers=(*plain.response_headers, ("content-encoding", "gzip")),
        pieces=tuple(pieces),
        stream=True,
        events=chunks,
        streaming=True,
    )


def anthropic_stream(name: str, title: str, events: int) -> Scenario:
    # message_start, content_block_start, ping, deltas, content_block_stop,
    # message_delta, message_stop
    body: dict[str, object] = {
        "model": "bench-" + name,
        "max_tokens": 1024,
        "system": "You answer in one short paragraph.",
        "messages": [{"role": "user", "content": "How do I keep an eye on what my calls cost?"}],
        "stream": True,
    }
    reply = demo.anthropic_messages(_call(name, body, events - 6))
    assert len(reply.pieces) == events
    headers = (("anthropic-version", "2023-06-01"),)
    return _scenario(
        name, title, "/anthropic/v1/messages", body, reply, events=events, request_headers=headers
    )


def bedrock_stream(name: str, title: str, events: int) -> Scenario:
    # messageStart, deltas, contentBlockStop, messageStop, metadata
    body: dict[str, object] = {
        "messages": [{"role": "user", "content": [{"text": "How do I watch my costs?"}]}],
        "inferenceConfig": {"maxTokens": 1024},
    }
    model = "bench-" + name
    reply = demo.bedrock_converse(_call(name, body, events - 4), model, stream=True)
    assert len(reply.pieces) == events
    path = f"/bedrock/model/{model}/converse-stream"
    return _scenario(name, title, path, body, reply, events=events)


def embeddings(name: str, title: str, min_bytes: int, dims: int = 1536) -> Scenario:
    """OpenAI embeddings of ``dims`` floats (text-embedding-3-small's size; the demo's
    synthesizer makes 64), as many inputs as it takes for a body of ``min_bytes``."""
    rng = random.Random(zlib.crc32(name.encode()))
    vector = [round(rng.uniform(-0.1, 0.1), 9) for _ in range(dims)]
    n = 1
    while True:
        body: dict[str, object] = {
            "model": "bench-" + name,
            "input": [f"document {i}: how to watch what LLM calls cost" for i in range(n)],
        }
        doc = {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": vector} for i in range(n)],
            "model": "bench-" + name,
            "usage": {"prompt_tokens": 11 * n, "total_tokens": 11 * n},
        }
        # OpenAI pretty-prints non-streamed JSON on the wire.
        raw = json.dumps(doc, indent=2).encode()
        if len(raw) >= min_bytes:
            break
        n += 1
    reply = demo.Reply(200, "application/json", [raw], False, [])
    return _scenario(name, title, "/openai/v1/embeddings", body, reply, events=1)


def _chat_of_size(name: str, title: str, min_bytes: int) -> Scenario:
    words = min_bytes // 6
    while True:
        sc = chat(name, title, words)
        if sc.body_bytes >= min_bytes:
            return sc
        words += max(1, (min_bytes - sc.body_bytes) // 6)


_BUILDERS: dict[str, tuple[Callable[[], Scenario], float]] = {
    "chat_small": (lambda: chat("chat_small", "chat, small JSON", 40), 200),
    "chat_64k": (lambda: _chat_of_size("chat_64k", "chat, 64 KB JSON", 64 * 1024), 100),
    "stream_20": (lambda: chat_stream("stream_20", "chat stream, 20 chunks", 20), 150),
    "stream_200": (lambda: chat_stream("stream_200", "chat stream, 200 chunks", 200), 50),
    "anthropic": (lambda: anthropic_stream("anthropic", "Anthropic stream, 50 events", 50), 100),
    "bedrock": (lambda: bedrock_stream("bedrock", "Bedrock eventstream, 50 msgs", 50), 100),
    "gzip_stream": (lambda: gzip_stream("gzip_stream", "gzip chat stream, 50 chunks", 50), 100),
    "embed_1m": (lambda: embeddings("embed_1m", "embeddings, 1 MB JSON", 1 << 20), 20),
}

#: Scenario names in report order.
NAMES: tuple[str, ...] = tuple(_BUILDERS)
#: The subset ``--quick`` runs.
QUICK: tuple[str, ...] = ("stream_200",)

_CACHE: dict[str, Scenario] = {}


def get(name: str) -> Scenario:
    """The scenario called ``name`` (``hold`` is the memory run's)."""
    sc = _CACHE.get(name)
    if sc is None:
        if name == HOLD:
            sc = chat_stream(HOLD, "chat stream held open", 20)
        elif name in _BUILDERS:
            build, rate = _BUILDERS[name]
            sc = dataclasses.replace(build(), paced_rps=rate)
        else:
            raise KeyError(f"unknown scenario {name!r}; known: {', '.join(NAMES)}")
        _CACHE[name] = sc
    return sc
