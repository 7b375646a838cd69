cdef class CallRecord:
    # the fields of record.CallRecord, in its order; the compiled Exchange writes them
    # directly
    cdef public object family, provider, operation, server_address, server_port
    cdef public object request_model, stream, max_tokens, temperature, top_p, top_k
    cdef public object seed, choice_count, stop_sequences, frequency_penalty
    cdef public object presence_penalty, output_type, request_service_tier
    cdef public object encoding_formats, embedding_dimensions
    cdef public object http_status, response_model, response_id, finish_reasons
    cdef public object service_tier, system_fingerprint, aws_request_id
    cdef public object input_tokens, output_tokens, cache_read_tokens
    cdef public object cache_creation_tokens, reasoning_tokens, audio_input_tokens
    cdef public object audio_output_tokens, cost_usd, billed_input_tokens
    cdef public object billed_output_tokens
    cdef public object error_type, error_message, cut_short, first_output_kind
    cdef public object first_output_event, output_chunks, scan_error, content

    cpdef dict attributes(self, bint semconv_latest=*)
