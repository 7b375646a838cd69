"""The call record: one LLM call, folded once, rendered as OTel GenAI span attributes.

Attribute names come from ``opentelemetry-semantic-conventions`` where it has them
(GenAI semantic conventions v1.41 layout); llmtap's own additions live under
``llmtap.*``. Only what the exchange carried is emitted: a field that is ``None`` is
never written, so a parameter the client did not send never shows up as a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.semconv._incubating.attributes import aws_attributes as _aws
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _g
from opentelemetry.semconv._incubating.attributes import openai_attributes as _oa
from opentelemetry.semconv.attributes import error_attributes as _err
from opentelemetry.semconv.attributes import server_attributes as _srv

__all__ = ["ATTR_COST_USD", "ATTR_SCAN_ERROR", "CallRecord", "EnvoyTokenUsage"]

#: Estimated USD cost of the call (genai-prices; input, cache read, cache write and
#: output tokens priced separately). Absent when the model's price is unknown.
ATTR_COST_USD = "llmtap.usage.cost_usd"
#: Why llmtap could not read (part of) the response body: framing, JSON or
#: decompression error with its byte offset. Debug aid, absent when all was read.
ATTR_SCAN_ERROR = "llmtap.scan_error"

# The newest experimental GenAI conventions (semantic-conventions-genai, PR #440)
# rename cache_creation -> cache_write and add per-modality token counts. Spelled
# out here because the installed semconv package predates them.
_CACHE_WRITE_LATEST = "gen_ai.usage.cache_write.input_tokens"
_AUDIO_INPUT_LATEST = "gen_ai.usage.audio.input_tokens"
_AUDIO_OUTPUT_LATEST = "gen_ai.usage.audio.output_tokens"

#: Providers whose spans carry ``openai.*`` attributes (semconv: other providers'
#: spans are not expected to include them).
_OPENAI_PROVIDERS = frozenset({"openai", "azure.ai.openai"})


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
        a: dict[str, Any] = {
            _g.GEN_AI_OPERATION_NAME: self.operation,
            _g.GEN_AI_PROVIDER_NAME: self.provider,
        }
        put = _Put(a)
        put(_g.GEN_AI_REQUEST_MODEL, self.request_model)
        put(_g.GEN_AI_REQUEST_MAX_TOKENS, self.max_tokens)
        put(_g.GEN_AI_REQUEST_TEMPERATURE, self.temperature)
        put(_g.GEN_AI_REQUEST_TOP_P, self.top_p)
        put(_g.GEN_AI_REQUEST_TOP_K, self.top_k)
        put(_g.GEN_AI_REQUEST_SEED, self.seed)
        if self.choice_count is not None and self.choice_count != 1:
            a[_g.GEN_AI_REQUEST_CHOICE_COUNT] = self.choice_count
        if self.stop_sequences:
            a[_g.GEN_AI_REQUEST_STOP_SEQUENCES] = list(self.stop_sequences)
        put(_g.GEN_AI_REQUEST_FREQUENCY_PENALTY, self.frequency_penalty)
        put(_g.GEN_AI_REQUEST_PRESENCE_PENALTY, self.presence_penalty)
        put(_g.GEN_AI_REQUEST_STREAM, self.stream)
        put(_g.GEN_AI_OUTPUT_TYPE, self.output_type)
        if self.encoding_formats:
            a[_g.GEN_AI_REQUEST_ENCODING_FORMATS] = list(self.encoding_formats)
        put(_g.GEN_AI_EMBEDDINGS_DIMENSION_COUNT, self.embedding_dimensions)
        put(_g.GEN_AI_RESPONSE_ID, self.response_id)
        put(_g.GEN_AI_RESPONSE_MODEL, self.response_model)
        if self.finish_reasons:
            a[_g.GEN_AI_RESPONSE_FINISH_REASONS] = list(self.finish_reasons)
        put(_g.GEN_AI_USAGE_INPUT_TOKENS, self.input_tokens)
        put(_g.GEN_AI_USAGE_OUTPUT_TOKENS, self.output_tokens)
        put(_g.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, self.cache_read_tokens)
        if semconv_latest:
            put(_CACHE_WRITE_LATEST, self.cache_creation_tokens)
            put(_AUDIO_INPUT_LATEST, self.audio_input_tokens)
            put(_AUDIO_OUTPUT_LATEST, self.audio_output_tokens)
        else:
            put(_g.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, self.cache_creation_tokens)
        put(_g.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, self.reasoning_tokens)
        if self.provider in _OPENAI_PROVIDERS:
            put(_oa.OPENAI_REQUEST_SERVICE_TIER, self.request_service_tier)
            put(_oa.OPENAI_RESPONSE_SERVICE_TIER, self.service_tier)
            put(_oa.OPENAI_RESPONSE_SYSTEM_FINGERPRINT, self.system_fingerprint)
        put(_aws.AWS_REQUEST_ID, self.aws_request_id)
        put(_err.ERROR_TYPE, self.error_type)
        put(_srv.SERVER_ADDRESS, self.server_address)
        if self.server_address is not None:
            put(_srv.SERVER_PORT, self.server_port)
        put(ATTR_COST_USD, self.cost_usd)
        put(ATTR_SCAN_ERROR, self.scan_error)
        return a


class _Put:
    """Write a key only when its value was carried by the exchange."""

    __slots__ = ("a",)

    def __init__(self, a: dict[str, Any]) -> None:
        self.a = a

    def __call__(self, key: str, value: Any) -> None:
        if value is not None:
            self.a[key] = value
