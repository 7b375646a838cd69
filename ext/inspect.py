"""``llmtap inspect``: replay one captured exchange and show the span llmtap would emit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from .recognise import recognise
from .request import RequestInfo

__all__ = ["inspect_exchange"]


def inspect_exchange(
    method: str,
    url: str,
    status: int,
    response_headers: Mapping[str, str],
    request_body: bytes | None,
    response_chunks: Iterable[bytes],
    request_headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The span for one exchange, minus timing: ``{name, kind, status, attributes}``.

    ``response_chunks`` are fed as Envoy would hand them over (any split); header
    names may be in any case.
    """
    u = urlsplit(url)
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    info = RequestInfo(
        method=method,
        authority=u.netloc,
        path=path,
        headers={k.lower(): v for k, v in (request_headers or {}).items()},
        scheme=u.scheme or "https",
    )
    ex = recognise(info)
    if request_body and ex.wants_request_body:
        ex.on_request_body(request_body, True)
    ex.on_response_headers(status, {k.lower(): v for k, v in response_headers.items()})
    pending: bytes | None = None
    for chunk in response_chunks:
        if pending is not None:
            ex.on_response_body(pending, False)
        pending = chunk
    ex.on_response_body(pending or b"", True)
    rec = ex.finish()
    code, description = rec.status
    return {
        "name": rec.span_name,
        "kind": "CLIENT",
        "status": {"code": code, "description": description},
        "attributes": rec.attributes(),
    }
