"""What llmtap asks Envoy to send, per exchange, and the transport's settings.

In normal mode llmtap answers the header messages with a ``mode_override`` where that
saves work: a request that is not an LLM call is let go at once; a request body nobody
reads is not sent; and with Envoy's ``ai_protocol_manager`` filter extracting token
usage (Envoy >= 1.40, ``usage_signal: SYNTHESIZE_TRAILERS``), a response body is
streamed only when llmtap needs it, otherwise only the trailers carrying Envoy's
``TokenUsage`` come over. In observability mode Envoy ignores answers, so there is no
policy: llmtap reads what the filter config sends.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from llmtap.gateway.extproc_wire import ProcessingMode

__all__ = [
    "BUFFERED",
    "NONE",
    "SEND",
    "SKIP",
    "STREAMED",
    "TransportOptions",
    "envoy_covers",
    "request_mode",
    "response_mode",
]

# ProcessingMode.HeaderSendMode
DEFAULT, SEND, SKIP = 0, 1, 2
# ProcessingMode.BodySendMode
NONE, STREAMED, BUFFERED, BUFFERED_PARTIAL, FULL_DUPLEX_STREAMED = 0, 1, 2, 3, 4

#: Let a request that is not an LLM call go: nothing more is sent for it.
LET_GO = ProcessingMode(
    response_header_mode=SKIP,
    request_body_mode=NONE,
    response_body_mode=NONE,
    request_trailer_mode=SKIP,
    response_trailer_mode=SKIP,
)


@dataclass(frozen=True, slots=True)
class TransportOptions:
    """Settings of the ext_proc transport (defaults in the field definitions).

    ``from_settings`` reads the same names off the application settings object;
    names it lacks take these defaults, so the config can grow independently.
    """

    #: ``HOST:PORT`` or ``unix:/path``.
    listen: str = "127.0.0.1:50051"
    #: Server processes sharing the port (SO_REUSEPORT); TCP only.
    workers: int = 1
    #: llmtap gives up on an exchange (and ends its span, ``timeout``) after this long.
    exchange_timeout: float = 900.0
    #: On SIGTERM, open exchanges get this long to finish before they are cut.
    shutdown_grace: float = 10.0
    #: Largest ext_proc message accepted (a body chunk plus headers).
    max_message_bytes: int = 64 * 1024 * 1024
    #: Envoy's ai_protocol_manager publishes TokenUsage on synthesized trailers.
    envoy_token_usage: bool = False
    #: With ``envoy_token_usage``: also stream the bodies of sampled exchanges that
    #: Envoy extracts usage from (TTFT, finish reasons, ids). Off by default: Envoy
    #: 1.40 stalls such a response (see ``response_mode``).
    stream_sampled_bodies: bool = False
    #: Typed metadata namespace Envoy publishes TokenUsage under.
    token_usage_namespace: str = "envoy.ai.token_usage"
    #: Namespace of the dynamic metadata llmtap sets (token counts); "" disables it.
    #: Envoy accepts it only if listed in ``metadata_options.receiving_namespaces``.
    metadata_namespace: str = "llmtap"
    #: Untyped metadata namespace read for a provider hint (key ``provider``).
    hint_namespace: str = "llmtap"
    #: Request header naming the provider; stripped before the request goes upstream.
    hint_header: str = "x-llmtap-provider"
    #: Serve ``grpc.health.v1.Health``.
    health: bool = True

    @classmethod
    def from_settings(cls, settings: Any) -> TransportOptions:
        """From the application ``Settings`` (its ``server`` section) or any object."""
        if settings is None or isinstance(settings, cls):
            return settings or cls()
        src = getattr(settings, "server", settings)
        kw = {}
        for f in fields(cls):
            if hasattr(src, f.name):
                kw[f.name] = getattr(src, f.name)
        return cls(**kw)


def envoy_covers(path: str) -> bool:
    """Whether Envoy's ai_protocol_manager extracts usage for this API (by URL path).

    OpenAI chat completions and Responses (and every compatible backend: Azure, Groq,
    Mistral, Ollama's /v1), Anthropic messages, Gemini/Vertex generateContent. Envoy
    itself recognises the API from the response shape; these are the paths those
    shapes come from.
    """
    p = path.partition("?")[0].rstrip("/")
    return (
        p.endswith("/chat/completions")
        or p.endswith("/responses")
        or (p.endswith("/messages") and "/model/" not in p)  # Bedrock paths differ
        or p.endswith(":generateContent")
        or p.endswith(":streamGenerateContent")
    )


def request_mode(
    wants_request_body: bool, configured_request: int, configured_response: int
) -> ProcessingMode | None:
    """Override at request headers: drop the request body when nothing reads it.

    An override restates both body modes (NONE is the protobuf default), so the
    configured response mode (``protocol_config``; unknown: -1) is carried over.
    """
    if wants_request_body or configured_request == NONE:
        return None
    response = configured_response if configured_response >= 0 else STREAMED
    return ProcessingMode(request_body_mode=NONE, response_body_mode=response)


def response_mode(
    opts: TransportOptions,
    *,
    path: str,
    status: int,
    content_encoding: str,
    sampled: bool,
    configured_response: int,
) -> tuple[ProcessingMode | None, bool]:
    """Override at response headers, and whether the body will be streamed.

    Without Envoy's usage extraction llmtap reads every body (token metrics need it).
    With it, the body is streamed only where llmtap needs it and Envoy extracts
    nothing: error statuses (the error type is in the body; Envoy reads 2xx only),
    compressed bodies (Envoy does not inspect them) and APIs Envoy does not cover;
    elsewhere only the trailers (with Envoy's TokenUsage) come over.

    Sampled exchanges Envoy covers are not streamed unless ``stream_sampled_bodies``:
    with Envoy 1.40, when ``ai_protocol_manager`` adds its synthesized trailers to a
    response whose body ext_proc streams, ext_proc stops on the empty end-of-data
    frame (``encodeData(0, end_stream=false)`` returns StopIteration) and never sends
    the trailers: the client's response hangs. Streaming only what Envoy does not
    extract from avoids that; ``envoy_covers`` must therefore not miss an API Envoy
    does read.
    """
    if not opts.envoy_token_usage:
        if configured_response in (NONE, BUFFERED, BUFFERED_PARTIAL):
            return ProcessingMode(response_body_mode=STREAMED), True
        return None, True
    encoded = content_encoding.strip().lower() not in ("", "identity")
    need_body = (
        (sampled and opts.stream_sampled_bodies)
        or not 200 <= status < 300
        or encoded
        or not envoy_covers(path)
    )
    if need_body:
        if configured_response == STREAMED:
            return None, True
        return ProcessingMode(response_body_mode=STREAMED), True
    return ProcessingMode(response_body_mode=NONE, response_trailer_mode=SEND), False
