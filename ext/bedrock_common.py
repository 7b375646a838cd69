"""Shared by the AWS Bedrock families: URL shape and what the response headers carry.

Bedrock URLs are ``/model/{modelId}/{converse|converse-stream|invoke|
invoke-with-response-stream}``; the model id is URL-encoded (ARNs contain ``:``
and ``/``). Errors are ``{"message": ...}`` with the exception name in the
``x-amzn-errortype`` header. InvokeModel may report token counts only in
``x-amzn-bedrock-{input,output,cache-read-input,cache-write-input}-token-count``.
Bedrock's input counts exclude cache reads and writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote

from .errors import aws_error_type, pick_error_type
from .family import Route, Scan, add
from .record import CallRecord

__all__ = ["PROVIDER", "bedrock_error_fields", "bedrock_route", "fold_header_usage"]

PROVIDER = "aws.bedrock"


def bedrock_route(path: str, actions: tuple[str, str]) -> Route | None:
    """Route for ``/model/{id}/{action}`` when action is one of (plain, streaming)."""
    head, _, action = path.rpartition("/")
    if action not in actions:
        return None
    prefix, found, model = head.rpartition("/model/")
    if not found or "/" in prefix.strip("/"):
        return None
    return Route(provider=PROVIDER, model=unquote(model) or None, stream=action == actions[1])


def _header_int(h: Mapping[str, str], name: str) -> int | None:
    v = h.get(name)
    if v is None:
        return None
    try:
        return int(v.strip())
    except ValueError:
        return None


def fold_header_usage(headers: Mapping[str, str], rec: CallRecord) -> None:
    """Fill usage from the token-count headers where the body had none."""
    if rec.input_tokens is not None or rec.output_tokens is not None:
        return
    base = _header_int(headers, "x-amzn-bedrock-input-token-count")
    read = _header_int(headers, "x-amzn-bedrock-cache-read-input-token-count")
    write = _header_int(headers, "x-amzn-bedrock-cache-write-input-token-count")
    rec.input_tokens = add(base, read, write) if base is not None else None
    rec.output_tokens = _header_int(headers, "x-amzn-bedrock-output-token-count")
    rec.cache_read_tokens = read
    rec.cache_creation_tokens = write


def bedrock_error_fields(
    s: Scan, generic: tuple[str | None, str | None]
) -> tuple[str | None, str | None]:
    etype, msg = generic
    header = aws_error_type(s.headers.get("x-amzn-errortype"))
    event = s.error_event if isinstance(s.error_event, str) else None
    return pick_error_type(header, aws_error_type(event), etype), msg
