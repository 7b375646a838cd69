# cython: language_level=3, boundscheck=True, wraparound=True
"""Compiled twin of ``record.CallRecord``: same fields, same attributes.

A cdef class: making one is an allocation (the compiled Exchange sets its fields
in C), and ``attributes()`` tests each field with no Python frame.
"""

from . import semconv as _k

# Field names in the dataclass's order (tests compare them with record.CallRecordPy).
FIELDS = (
    "family", "provider", "operation", "server_address", "server_port",
    "request_model", "stream", "max_tokens", "temperature", "top_p", "top_k", "seed",
    "choice_count", "stop_sequences", "frequency_penalty", "presence_penalty",
    "output_type", "request_service_tier", "encoding_formats", "embedding_dimensions",
    "http_status", "response_model", "response_id", "finish_reasons", "service_tier",
    "system_fingerprint", "aws_request_id", "input_tokens", "output_tokens",
    "cache_read_tokens", "cache_creation_tokens", "reasoning_tokens",
    "audio_input_tokens", "audio_output_tokens", "cost_usd", "billed_input_tokens",
    "billed_output_tokens", "error_type", "error_message", "cut_short",
    "first_output_kind", "first_output_event", "output_chunks", "scan_error", "content",
)  # fmt: skip
cdef dict _INDEX = {name: i for i, name in enumerate(FIELDS)}
cdef Py_ssize_t _REQUIRED = 3  # family, provider, operation

cdef object OPERATION = _k.OPERATION
cdef object PROVIDER = _k.PROVIDER
cdef object REQUEST_MODEL = _k.REQUEST_MODEL
cdef object MAX_TOKENS = _k.MAX_TOKENS
cdef object TEMPERATURE = _k.TEMPERATURE
cdef object TOP_P = _k.TOP_P
cdef object TOP_K = _k.TOP_K
cdef object SEED = _k.SEED
cdef object CHOICE_COUNT = _k.CHOICE_COUNT
cdef object STOP_SEQUENCES = _k.STOP_SEQUENCES
cdef object FREQUENCY_PENALTY = _k.FREQUENCY_PENALTY
cdef object PRESENCE_PENALTY = _k.PRESENCE_PENALTY
cdef object STREAM = _k.STREAM
cdef object OUTPUT_TYPE = _k.OUTPUT_TYPE
cdef object ENCODING_FORMATS = _k.ENCODING_FORMATS
cdef object DIMENSIONS = _k.DIMENSIONS
cdef object RESPONSE_ID = _k.RESPONSE_ID
cdef object RESPONSE_MODEL = _k.RESPONSE_MODEL
cdef object FINISH_REASONS = _k.FINISH_REASONS
cdef object INPUT_TOKENS = _k.INPUT_TOKENS
cdef object OUTPUT_TOKENS = _k.OUTPUT_TOKENS
cdef object CACHE_READ = _k.CACHE_READ
cdef object CACHE_CREATION = _k.CACHE_CREATION
cdef object CACHE_WRITE_LATEST = _k.CACHE_WRITE_LATEST
cdef object AUDIO_INPUT_LATEST = _k.AUDIO_INPUT_LATEST
cdef object AUDIO_OUTPUT_LATEST = _k.AUDIO_OUTPUT_LATEST
cdef object REASONING_TOKENS = _k.REASONING_TOKENS
cdef object REQUEST_SERVICE_TIER = _k.REQUEST_SERVICE_TIER
cdef object RESPONSE_SERVICE_TIER = _k.RESPONSE_SERVICE_TIER
cdef object FINGERPRINT = _k.FINGERPRINT
cdef object AWS_REQUEST_ID = _k.AWS_REQUEST_ID
cdef object ERROR_TYPE = _k.ERROR_TYPE
cdef object SERVER_ADDRESS = _k.SERVER_ADDRESS
cdef object SERVER_PORT = _k.SERVER_PORT
cdef object ATTR_COST_USD = _k.ATTR_COST_USD
cdef object ATTR_SCAN_ERROR = _k.ATTR_SCAN_ERROR
cdef object OPENAI_PROVIDERS = _k.OPENAI_PROVIDERS


cdef class CallRecord:
    """Everything llmtap learned about one call. Metrics read the plain fields."""

    def __init__(self, *args, **kwargs):
        # The dataclass's signature: fields in order, the first three required.
        cdef Py_ssize_t n = len(args), i
        if n > len(FIELDS):
            raise TypeError(
                f"CallRecord.__init__() takes from {_REQUIRED + 1} to {len(FIELDS) + 1} "
                f"positional arguments but {n + 1} were given"
            )
        for i in range(n):
            setattr(self, FIELDS[i], args[i])
        for key, value in kwargs.items():
            j = _INDEX.get(key)
            if j is None:
                raise TypeError(f"CallRecord.__init__() got an unexpected keyword argument {key!r}")
            if j < n:
                raise TypeError(f"CallRecord.__init__() got multiple values for argument {key!r}")
            setattr(self, key, value)
        missing = [repr(f) for f in FIELDS[n:_REQUIRED] if f not in kwargs]
        if missing:  # worded as CPython words it
            names = (
                " and ".join(missing)
                if len(missing) < 3
                else ", ".join(missing[:-1]) + ", and " + missing[-1]
            )
            raise TypeError(
                f"CallRecord.__init__() missing {len(missing)} required positional "
                f"argument{'s' if len(missing) > 1 else ''}: {names}"
            )

    @property
    def span_name(self):
        """``{gen_ai.operation.name} {gen_ai.request.model}``, or just the operation."""
        if self.request_model:
            return f"{self.operation} {self.request_model}"
        return self.operation

    @property
    def status(self):
        """Span status: ``("ERROR", description)`` on failure, else ``("UNSET", None)``."""
        if self.error_type is None:
            return ("UNSET", None)
        return ("ERROR", self.error_message or self.error_type)

    cpdef dict attributes(self, bint semconv_latest=False):
        """Span attributes; ``semconv_latest`` switches to the newest experimental names."""
        cdef dict a = {OPERATION: self.operation, PROVIDER: self.provider}
        if self.request_model is not None:
            a[REQUEST_MODEL] = self.request_model
        if self.max_tokens is not None:
            a[MAX_TOKENS] = self.max_tokens
        if self.temperature is not None:
            a[TEMPERATURE] = self.temperature
        if self.top_p is not None:
            a[TOP_P] = self.top_p
        if self.top_k is not None:
            a[TOP_K] = self.top_k
        if self.seed is not None:
            a[SEED] = self.seed
        if self.choice_count is not None and self.choice_count != 1:
            a[CHOICE_COUNT] = self.choice_count
        if self.stop_sequences:
            a[STOP_SEQUENCES] = list(self.stop_sequences)
        if self.frequency_penalty is not None:
            a[FREQUENCY_PENALTY] = self.frequency_penalty
        if self.presence_penalty is not None:
            a[PRESENCE_PENALTY] = self.presence_penalty
        if self.stream is not None:
            a[STREAM] = self.stream
        if self.output_type is not None:
            a[OUTPUT_TYPE] = self.output_type
        if self.encoding_formats:
            a[ENCODING_FORMATS] = list(self.encoding_formats)
        if self.embedding_dimensions is not None:
            a[DIMENSIONS] = self.embedding_dimensions
        if self.response_id is not None:
            a[RESPONSE_ID] = self.response_id
        if self.response_model is not None:
            a[RESPONSE_MODEL] = self.response_model
        if self.finish_reasons:
            a[FINISH_REASONS] = list(self.finish_reasons)
        if self.input_tokens is not None:
            a[INPUT_TOKENS] = self.input_tokens
        if self.output_tokens is not None:
            a[OUTPUT_TOKENS] = self.output_tokens
        if self.cache_read_tokens is not None:
            a[CACHE_READ] = self.cache_read_tokens
        if semconv_latest:
            if self.cache_creation_tokens is not None:
                a[CACHE_WRITE_LATEST] = self.cache_creation_tokens
            if self.audio_input_tokens is not None:
                a[AUDIO_INPUT_LATEST] = self.audio_input_tokens
            if self.audio_output_tokens is not None:
                a[AUDIO_OUTPUT_LATEST] = self.audio_output_tokens
        elif self.cache_creation_tokens is not None:
            a[CACHE_CREATION] = self.cache_creation_tokens
        if self.reasoning_tokens is not None:
            a[REASONING_TOKENS] = self.reasoning_tokens
        if self.provider in OPENAI_PROVIDERS:
            if self.request_service_tier is not None:
                a[REQUEST_SERVICE_TIER] = self.request_service_tier
            if self.service_tier is not None:
                a[RESPONSE_SERVICE_TIER] = self.service_tier
            if self.system_fingerprint is not None:
                a[FINGERPRINT] = self.system_fingerprint
        if self.aws_request_id is not None:
            a[AWS_REQUEST_ID] = self.aws_request_id
        if self.error_type is not None:
            a[ERROR_TYPE] = self.error_type
        if self.server_address is not None:
            a[SERVER_ADDRESS] = self.server_address
            if self.server_port is not None:
                a[SERVER_PORT] = self.server_port
        if self.cost_usd is not None:
            a[ATTR_COST_USD] = self.cost_usd
        if self.scan_error is not None:
            a[ATTR_SCAN_ERROR] = self.scan_error
        return a

    # -- what the dataclass twin has ---------------------------------------------------

    def __repr__(self):
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in FIELDS)
        return f"CallRecord({inner})"

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return tuple([getattr(self, name) for name in FIELDS]) == tuple(
            [getattr(other, name) for name in FIELDS]
        )

    __hash__ = None  # mutable and compared by value, like the dataclass
