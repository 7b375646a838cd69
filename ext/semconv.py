"""Span attribute names ``CallRecord.attributes()`` writes (both twins read them here).

GenAI semantic conventions v1.41 layout from ``opentelemetry-semantic-conventions``;
llmtap's own additions live under ``llmtap.*``.
"""

from __future__ import annotations

from opentelemetry.semconv._incubating.attributes import aws_attributes as _aws
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _g
from opentelemetry.semconv._incubating.attributes import openai_attributes as _oa
from opentelemetry.semconv.attributes import error_attributes as _err
from opentelemetry.semconv.attributes import server_attributes as _srv

#: Estimated USD cost of the call (genai-prices; input, cache read, cache write and
#: output tokens priced separately). Absent when the model's price is unknown.
ATTR_COST_USD = "llmtap.usage.cost_usd"
#: Why llmtap could not read (part of) the response body: framing, JSON or
#: decompression error with its byte offset. Debug aid, absent when all was read.
ATTR_SCAN_ERROR = "llmtap.scan_error"

# The newest experimental GenAI conventions (semantic-conventions-genai, PR #440)
# rename cache_creation -> cache_write and add per-modality token counts. Spelled
# out here because the installed semconv package predates them.
CACHE_WRITE_LATEST = "gen_ai.usage.cache_write.input_tokens"
AUDIO_INPUT_LATEST = "gen_ai.usage.audio.input_tokens"
AUDIO_OUTPUT_LATEST = "gen_ai.usage.audio.output_tokens"

# Keys of CallRecord.attributes(), one name per field it writes.
OPERATION = _g.GEN_AI_OPERATION_NAME
PROVIDER = _g.GEN_AI_PROVIDER_NAME
REQUEST_MODEL = _g.GEN_AI_REQUEST_MODEL
MAX_TOKENS = _g.GEN_AI_REQUEST_MAX_TOKENS
TEMPERATURE = _g.GEN_AI_REQUEST_TEMPERATURE
TOP_P = _g.GEN_AI_REQUEST_TOP_P
TOP_K = _g.GEN_AI_REQUEST_TOP_K
SEED = _g.GEN_AI_REQUEST_SEED
CHOICE_COUNT = _g.GEN_AI_REQUEST_CHOICE_COUNT
STOP_SEQUENCES = _g.GEN_AI_REQUEST_STOP_SEQUENCES
FREQUENCY_PENALTY = _g.GEN_AI_REQUEST_FREQUENCY_PENALTY
PRESENCE_PENALTY = _g.GEN_AI_REQUEST_PRESENCE_PENALTY
STREAM = _g.GEN_AI_REQUEST_STREAM
OUTPUT_TYPE = _g.GEN_AI_OUTPUT_TYPE
ENCODING_FORMATS = _g.GEN_AI_REQUEST_ENCODING_FORMATS
DIMENSIONS = _g.GEN_AI_EMBEDDINGS_DIMENSION_COUNT
RESPONSE_ID = _g.GEN_AI_RESPONSE_ID
RESPONSE_MODEL = _g.GEN_AI_RESPONSE_MODEL
FINISH_REASONS = _g.GEN_AI_RESPONSE_FINISH_REASONS
INPUT_TOKENS = _g.GEN_AI_USAGE_INPUT_TOKENS
OUTPUT_TOKENS = _g.GEN_AI_USAGE_OUTPUT_TOKENS
CACHE_READ = _g.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
CACHE_CREATION = _g.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS
REASONING_TOKENS = _g.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS
REQUEST_SERVICE_TIER = _oa.OPENAI_REQUEST_SERVICE_TIER
RESPONSE_SERVICE_TIER = _oa.OPENAI_RESPONSE_SERVICE_TIER
FINGERPRINT = _oa.OPENAI_RESPONSE_SYSTEM_FINGERPRINT
AWS_REQUEST_ID = _aws.AWS_REQUEST_ID
ERROR_TYPE = _err.ERROR_TYPE
SERVER_ADDRESS = _srv.SERVER_ADDRESS
SERVER_PORT = _srv.SERVER_PORT

#: Providers whose spans carry ``openai.*`` attributes (semconv: other providers'
#: spans are not expected to include them).
OPENAI_PROVIDERS = frozenset({"openai", "azure.ai.openai"})
