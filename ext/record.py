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

# Attribute keys as module constants: attributes() reads them as fast globals.
_OPERATION = _g.GEN_AI_OPERATION_NAME
_PROVIDER = _g.GEN_AI_PROVIDER_NAME
_REQUEST_MODEL = _g.GEN_AI_REQUEST_MODEL
_MAX_TOKENS = _g.GEN_AI_REQUEST_MAX_TOKENS
_TEMPERATURE = _g.GEN_AI_REQUEST_TEMPERATURE
_TOP_P = _g.GEN_AI_REQUEST_TOP_P
_TOP_K = _g.GEN_AI_REQUEST_TOP_K
_SEED = _g.GEN_AI_REQUEST_SEED
_CHOICE_COUNT = _g.GEN_AI_REQUEST_CHOICE_COUNT
_STOP_SEQUENCES = _g.GEN_AI_REQUEST_STOP_SEQUENCES
_FREQUENCY_PENALTY = _g.GEN_AI_REQUEST_FREQUENCY_PENALTY
_PRESENCE_PENALTY = _g.GEN_AI_REQUEST_PRESENCE_PENALTY
_STREAM = _g.GEN_AI_REQUEST_STREAM
_OUTPUT_TYPE = _g.GEN_AI_OUTPUT_TYPE
_ENCODING_FORMATS = _g.GEN_AI_REQUEST_ENCODING_FORMATS
_DIMENSIONS = _g.GEN_AI_EMBEDDINGS_DIMENSION_COUNT
_RESPONSE_ID = _g.GEN_AI_RESPONSE_ID
_RESPONSE_MODEL = _g.GEN_AI_RESPONSE_MODEL
_FINISH_REASONS = _g.GEN_AI_RESPONSE_FINISH_REASONS
_INPUT_TOKENS = _g.GEN_AI_USAGE_INPUT_TOKENS
_OUTPUT_TOKENS = _g.GEN_AI_USAGE_OUTPUT_TOKENS
_CACHE_READ = _g.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
_CACHE_CREATION = _g.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS
_REASONING_TOKENS = _g.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS
_REQUEST_SERVICE_TIER = _oa.OPENAI_REQUEST_SERVICE_TIER
_RESPONSE_SERVICE_TIER = _oa.OPENAI_RESPONSE_SERVICE_TIER
_FINGERPRINT = _oa.OPENAI_RESPONSE_SYSTEM_FINGERPRINT
_AWS_REQUEST_ID = _aws.AWS_REQUEST_ID
_ERROR_TYPE = _err.ERROR_TYPE
_SERVER_ADDRESS = _srv.SERVER_ADDRESS
_SERVER_PORT = _srv.SERVER_PORT

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
        # Written out field by field: this runs for every call, and a plain test and
        # store per field is the cheapest way to skip the ones the exchange lacked.
        a: dict[str, Any] = {_OPERATION: self.operation, _PROVIDER: self.provider}
        v: Any
        if (v := self.request_model) is not None:
            a[_REQUEST_MODEL] = v
        if (v := self.max_tokens) is not None:
            a[_MAX_TOKENS] = v
        if (v := self.temperature) is not None:
            a[_TEMPERATURE] = v
        if (v := self.top_p) is not None:
            a[_TOP_P] = v
        if (v := self.top_k) is not None:
            a[_TOP_K] = v
        if (v := self.seed) is not None:
            a[_SEED] = v
        if (v := self.choice_count) is not None and v != 1:
            a[_CHOICE_COUNT] = v
        if v := self.stop_sequences:
            a[_STOP_SEQUENCES] = list(v)
        if (v := self.frequency_penalty) is not None:
            a[_FREQUENCY_PENALTY] = v
        if (v := self.presence_penalty) is not None:
            a[_PRESENCE_PENALTY] = v
        if (v := self.stream) is not None:
            a[_STREAM] = v
        if (v := self.output_type) is not None:
            a[_OUTPUT_TYPE] = v
        if v := self.encoding_formats:
            a[_ENCODING_FORMATS] = list(v)
        if (v := self.embedding_dimensions) is not None:
            a[_DIMENSIONS] = v
        if (v := self.response_id) is not None:
            a[_RESPONSE_ID] = v
        if (v := self.response_model) is not None:
            a[_RESPONSE_MODEL] = v
        if v := self.finish_reasons:
            a[_FINISH_REASONS] = list(v)
        if (v := self.input_tokens) is not None:
            a[_INPUT_TOKENS] = v
        if (v := self.output_tokens) is not None:
            a[_OUTPUT_TOKENS] = v
        if (v := self.cache_read_tokens) is not None:
            a[_CACHE_READ] = v
        if semconv_latest:
            if (v := self.cache_creation_tokens) is not None:
                a[_CACHE_WRITE_LATEST] = v
            if (v := self.audio_input_tokens) is not None:
                a[_AUDIO_INPUT_LATEST] = v
            if (v := self.audio_output_tokens) is not None:
                a[_AUDIO_OUTPUT_LATEST] = v
        elif (v := self.cache_creation_tokens) is not None:
            a[_CACHE_CREATION] = v
        if (v := self.reasoning_tokens) is not None:
            a[_REASONING_TOKENS] = v
        if self.provider in _OPENAI_PROVIDERS:
            if (v := self.request_service_tier) is not None:
                a[_REQUEST_SERVICE_TIER] = v
            if (v := self.service_tier) is not None:
                a[_RESPONSE_SERVICE_TIER] = v
            if (v := self.system_fingerprint) is not None:
                a[_FINGERPRINT] = v
        if (v := self.aws_request_id) is not None:
            a[_AWS_REQUEST_ID] = v
        if (v := self.error_type) is not None:
            a[_ERROR_TYPE] = v
        if (v := self.server_address) is not None:
            a[_SERVER_ADDRESS] = v
            if (v := self.server_port) is not None:
                a[_SERVER_PORT] = v
        if (v := self.cost_usd) is not None:
            a[ATTR_COST_USD] = v
        if (v := self.scan_error) is not None:
            a[ATTR_SCAN_ERROR] = v
        return a
