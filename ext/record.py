"""The call record: one LLM call, folded once, rendered as OTel GenAI span attributes.

Attribute names come from ``opentelemetry-semantic-conventions`` where it has them
(GenAI semantic conventions v1.41 layout); llmtap's own additions live under
``llmtap.*``. Only what the exchange carried is emitted: a field that is ``None`` is
never written, so a parameter the client did not send never shows up as a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from .semconv import (
    ATTR_COST_USD,
    ATTR_SCAN_ERROR,
    AUDIO_INPUT_LATEST,
    AUDIO_OUTPUT_LATEST,
    AWS_REQUEST_ID,
    CACHE_CREATION,
    CACHE_READ,
    CACHE_WRITE_LATEST,
    CHOICE_COUNT,
    DIMENSIONS,
    ENCODING_FORMATS,
    ERROR_TYPE,
    FINGERPRINT,
    FINISH_REASONS,
    FREQUENCY_PENALTY,
    INPUT_TOKENS,
    MAX_TOKENS,
    OPENAI_PROVIDERS,
    OPERATION,
    OUTPUT_TOKENS,
    OUTPUT_TYPE,
    PRESENCE_PENALTY,
    PROVIDER,
    REASONING_TOKENS,
    REQUEST_MODEL,
    REQUEST_SERVICE_TIER,
    RESPONSE_ID,
    RESPONSE_MODEL,
    RESPONSE_SERVICE_TIER,
    SEED,
    SERVER_ADDRESS,
    SERVER_PORT,
    STOP_SEQUENCES,
    STREAM,
    TEMPERATURE,
    TOP_K,
    TOP_P,
)

__all__ = ["ATTR_COST_USD", "ATTR_SCAN_ERROR", "CallRecord", "EnvoyTokenUsage", "apply_envoy"]


@dataclass(slots=True)
class EnvoyTokenUsage:
    """Token usage Envoy (AI Gateway) already computed, passed in assisted mode.

    Counts follow the GenAI conventions: ``input_tokens`` includes cached input,
    ``output_tokens`` includes reasoning. ``status`` is the HTTP status Envoy saw.
    Fields left ``None`` keep whatever llmtap read from the body.
    """

    model: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cached_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    status: int | None = None


@dataclass(slots=True)
class CallRecord:
    """Everything llmtap learned about one call. Metrics read the plain fields."""

    family: str
    provider: str
    operation: str
    server_address: str | None = None
    server_port: int | None = None
    # request
    request_model: str | None = None
    stream: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: float | None = None
    seed: int | None = None
    choice_count: int | None = None
    stop_sequences: list[str] | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    output_type: str | None = None
    request_service_tier: str | None = None
    encoding_formats: list[str] | None = None
    embedding_dimensions: int | None = None
    # response
    http_status: int | None = None
    response_model: str | None = None
    response_id: str | None = None
    finish_reasons: list[str] | None = None
    service_tier: str | None = None
    system_fingerprint: str | None = None
    aws_request_id: str | None = None
    # usage, inclusive per the conventions (input includes cached, output reasoning)
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_creation_tokens: int | None = None
    reasoning_tokens: int | None = None
    audio_input_tokens: int | None = None
    audio_output_tokens: int | None = None
    cost_usd: float | None = None
    #: What the provider bills, when it differs from the tokens processed (Cohere
    #: ``billed_units``); priced instead of the token counts. Not span attributes.
    billed_input_tokens: int | None = None
    billed_output_tokens: int | None = None
    # outcome
    error_type: str | None = None
    error_message: str | None = None
    cut_short: str | None = None
    first_output_kind: str | None = None
    #: 0-based index of the response event (SSE event, NDJSON line, array element,
    #: eventstream message) that carried the first output; not a span attribute.
    first_output_event: int | None = None
    #: Streamed responses: documents (events, lines, elements, messages) that carried
    #: output; ``gen_ai.client.operation.time_per_output_chunk`` divides by it.
    output_chunks: int | None = None
    scan_error: str | None = None
    #: ``gen_ai.system_instructions`` / ``gen_ai.input.messages`` /
    #: ``gen_ai.output.messages`` as GenAI JSON, only when content capture is on
    #: (built when first read; the gateway masks and caps it). Not in ``attributes()``.
    content: Mapping[str, Any] | None = None

    @property
    def span_name(self) -> str:
        """``{gen_ai.operation.name} {gen_ai.request.model}``, or just the operation."""
        if self.request_model:
            return f"{self.operation} {self.request_model}"
        return self.operation

    @property
    def status(self) -> tuple[str, str | None]:
        """Span status: ``("ERROR", description)`` on failure, else ``("UNSET", None)``.

        Instrumentation leaves successful spans UNSET (OTel recording-errors rules).
        """
        if self.error_type is None:
            return ("UNSET", None)
        return ("ERROR", self.error_message or self.error_type)

    def attributes(self, semconv_latest: bool = False) -> dict[str, Any]:
        """Span attributes; ``semconv_latest`` switches to the newest experimental names."""
        # Written out field by field: this runs for every call, and a plain test and
        # store per field is the cheapest way to skip the ones the exchange lacked.
        a: dict[str, Any] = {OPERATION: self.operation, PROVIDER: self.provider}
        v: Any
        if (v := self.request_model) is not None:
            a[REQUEST_MODEL] = v
        if (v := self.max_tokens) is not None:
            a[MAX_TOKENS] = v
        if (v := self.temperature) is not None:
            a[TEMPERATURE] = v
        if (v := self.top_p) is not None:
            a[TOP_P] = v
        if (v := self.top_k) is not None:
            a[TOP_K] = v
        if (v := self.seed) is not None:
            a[SEED] = v
        if (v := self.choice_count) is not None and v != 1:
            a[CHOICE_COUNT] = v
        if v := self.stop_sequences:
            a[STOP_SEQUENCES] = list(v)
        if (v := self.frequency_penalty) is not None:
            a[FREQUENCY_PENALTY] = v
        if (v := self.presence_penalty) is not None:
            a[PRESENCE_PENALTY] = v
        if (v := self.stream) is not None:
            a[STREAM] = v
        if (v := self.output_type) is not None:
            a[OUTPUT_TYPE] = v
        if v := self.encoding_formats:
            a[ENCODING_FORMATS] = list(v)
        if (v := self.embedding_dimensions) is not None:
            a[DIMENSIONS] = v
        if (v := self.response_id) is not None:
            a[RESPONSE_ID] = v
        if (v := self.response_model) is not None:
            a[RESPONSE_MODEL] = v
        if v := self.finish_reasons:
            a[FINISH_REASONS] = list(v)
        if (v := self.input_tokens) is not None:
            a[INPUT_TOKENS] = v
        if (v := self.output_tokens) is not None:
            a[OUTPUT_TOKENS] = v
        if (v := self.cache_read_tokens) is not None:
            a[CACHE_READ] = v
        if semconv_latest:
            if (v := self.cache_creation_tokens) is not None:
                a[CACHE_WRITE_LATEST] = v
            if (v := self.audio_input_tokens) is not None:
                a[AUDIO_INPUT_LATEST] = v
            if (v := self.audio_output_tokens) is not None:
                a[AUDIO_OUTPUT_LATEST] = v
        elif (v := self.cache_creation_tokens) is not None:
            a[CACHE_CREATION] = v
        if (v := self.reasoning_tokens) is not None:
            a[REASONING_TOKENS] = v
        if self.provider in OPENAI_PROVIDERS:
            if (v := self.request_service_tier) is not None:
                a[REQUEST_SERVICE_TIER] = v
            if (v := self.service_tier) is not None:
                a[RESPONSE_SERVICE_TIER] = v
            if (v := self.system_fingerprint) is not None:
                a[FINGERPRINT] = v
        if (v := self.aws_request_id) is not None:
            a[AWS_REQUEST_ID] = v
        if (v := self.error_type) is not None:
            a[ERROR_TYPE] = v
        if (v := self.server_address) is not None:
            a[SERVER_ADDRESS] = v
            if (v := self.server_port) is not None:
                a[SERVER_PORT] = v
        if (v := self.cost_usd) is not None:
            a[ATTR_COST_USD] = v
        if (v := self.scan_error) is not None:
            a[ATTR_SCAN_ERROR] = v
        return a


def apply_envoy(rec: Any, u: EnvoyTokenUsage) -> None:
    """Envoy-assisted mode: Envoy's counts override what the body said."""
    if u.model and rec.response_model is None:
        rec.response_model = u.model
    if u.input_tokens is not None:
        rec.input_tokens = u.input_tokens
    if u.output_tokens is not None:
        rec.output_tokens = u.output_tokens
    if u.cached_input_tokens is not None:
        rec.cache_read_tokens = u.cached_input_tokens
    if u.cache_creation_input_tokens is not None:
        rec.cache_creation_tokens = u.cache_creation_input_tokens
    if u.reasoning_tokens is not None:
        rec.reasoning_tokens = u.reasoning_tokens
    if u.status is not None and rec.http_status is None:
        # No response headers reached llmtap; Envoy saw how the call ended.
        rec.http_status = u.status
        if rec.error_type == "no_response":
            ok = 200 <= u.status < 300
            rec.error_type = None if ok else str(u.status)
            rec.finish_reasons = rec.finish_reasons if ok else None


CallRecordPy = CallRecord

from llmtap.core._env import NO_EXTENSIONS  # noqa: E402

if not NO_EXTENSIONS:  # pragma: no branch
    with suppress(ImportError):  # the pure twin serves
        from ._record import CallRecord  # type: ignore[no-redef]
