# cython: language_level=3, boundscheck=True, wraparound=True
"""Compiled twin of ``exchange.Exchange``: same API, same records.

The per-exchange glue (state, framing choice, the per-chunk check, the fold's
bookkeeping) runs in C on C-level CallRecord and Scan objects; the family hooks,
msgspec, the scanner and the cost table are called as in the pure twin, whose
code this follows line for line.
"""

from msgspec import DecodeError, ValidationError

from llmtap import core as _core

from .content import exchange_content
from .cost import cost_usd
from .errors import describe
from .family import (
    _FRAMED,
    Family,
    _content_kind,
    _content_kinds,
    _decoders,
    decode_request,
    raw_reasons,
)
from .record import apply_envoy

from cpython.pyport cimport PY_SSIZE_T_MAX

from ._record cimport CallRecord
from ._scan cimport Scan, new_scan

cdef object _STREAMED = frozenset({"sse", "ndjson", "eventstream", "json_array"})
cdef object _OVERFLOW_PATHS = _core.PathSet({"model": "model", "stream": "stream"})
cdef Py_ssize_t _CAPTURE_MAX_STR = 64 * 1024

# Hooks the families rarely override: when a family keeps Family's own, the Exchange
# runs the same logic here instead of calling into Python.
cdef object _BASE_FRAMING = Family.framing
cdef object _BASE_IN_STREAM_ERROR = Family.in_stream_error
cdef object _BASE_FOLD = Family.fold
cdef object _BASE_FINISH_REASONS = Family.finish_reasons

# the last config seen, read once: the gateway passes the same object every time
cdef object _cfg_seen = None
cdef Py_ssize_t _cfg_max_body = 0
cdef bint _cfg_capture = False, _cfg_cost = False


cdef str _framing(object fam, object status, object content_type, object route, object stream):
    """Family.framing, for a family that does not override it."""
    if not 200 <= status < 300:
        return "json"  # error bodies are plain JSON whatever the content type says
    kind = _content_kinds.get(content_type) or _content_kind(content_type)
    if kind in _FRAMED:
        return kind
    streamed = route.stream or stream
    if kind == "json":
        stream_framing = route.framing or fam.stream_framing
        return "json_array" if streamed and stream_framing == "json_array" else "json"
    if kind == "none" and streamed:
        return route.framing or fam.stream_framing
    return "json"


cdef bint _in_stream_error(object fam, Scan s) except -1:
    """Family.in_stream_error, unless the family overrides it."""
    if type(fam).in_stream_error is not _BASE_IN_STREAM_ERROR:
        return fam.in_stream_error(s)
    if s.error_event:
        return True
    return s.spec is not None and s.any_set(s.spec.errors)


cdef class Exchange:
    """The per-request state the gateway drives; create it with ``recognise()``."""

    def __init__(self, family, route, provider, operation, config, server_address, server_port):
        self._family = family
        self._route = route
        global _cfg_seen, _cfg_max_body, _cfg_capture, _cfg_cost
        cdef Py_ssize_t max_body
        cdef bint capture, cost
        self._cfg = config
        if config is not _cfg_seen:
            limit = int(config.max_request_body)
            max_body = limit if limit < PY_SSIZE_T_MAX else PY_SSIZE_T_MAX
            capture = config.capture_content
            cost = config.cost
            # no Python code runs between these: another thread sees all or nothing
            _cfg_max_body, _cfg_capture, _cfg_cost = max_body, capture, cost
            _cfg_seen = config
        self._max_body = _cfg_max_body
        self._capture = _cfg_capture
        self._cost = _cfg_cost
        cdef CallRecord rec = CallRecord.__new__(CallRecord)
        rec.family = family.name
        rec.provider = provider
        rec.operation = operation
        rec.server_address = server_address or None
        rec.server_port = server_port if server_address else None
        rec.request_model = route.model
        rec.stream = route.stream
        self._rec = rec
        self._req_done = family.request is None
        self._headers = {}
        self._out = ()
        # every other field starts as None / False (cdef class defaults)

    # -- identity ---------------------------------------------------------------

    @property
    def family(self):
        return self._family.name

    @property
    def provider(self):
        return self._rec.provider

    @property
    def operation(self):
        return self._rec.operation

    @property
    def wants_request_body(self):
        return self._family.request is not None

    # -- request ----------------------------------------------------------------

    def on_request_body(self, chunk, end_of_stream=False):
        """Buffer the request body (up to the cap); decode it at the end."""
        if self._req_done:
            return
        try:
            if (
                end_of_stream
                and self._body is None
                and self._overflow is None
                and len(chunk) <= self._max_body
            ):  # the whole body in one message (the usual case): decode it in place
                self._finish_request(chunk)
                return
            if self._overflow is not None:
                self._overflow.feed(chunk)
            else:
                if self._body is None:
                    self._body = bytearray()
                if len(self._body) + len(chunk) <= self._max_body:
                    self._body += chunk
                else:
                    self._start_overflow(chunk)
            if end_of_stream:
                self._finish_request(None)
        except Exception as e:  # never let a request body break the data path
            self._req_done = True
            self._body = None
            self._scan_error = self._scan_error or f"request body: {e!r}"

    cdef int _start_overflow(self, object chunk) except -1:
        # Too big to buffer: keep reading the few top-level fields as a stream.
        ss = _core.StreamScanner("json", _OVERFLOW_PATHS)
        if self._body:
            ss.feed(bytes(self._body))
        ss.feed(chunk)
        self._body = None
        self._overflow = ss
        return 0

    cdef int _finish_request(self, object whole) except -1:
        self._req_done = True
        cdef CallRecord rec = self._rec
        fam = self._family
        if self._overflow is not None:
            ss, self._overflow = self._overflow, None
            ss.close()
            model, stream = ss.values
            if isinstance(model, str) and model and rec.request_model is None:
                rec.request_model = model
            if isinstance(stream, bool) and rec.stream is None:
                rec.stream = stream
            return 0
        if whole is not None:
            raw = whole
        else:
            body, self._body = self._body, None
            raw = bytes(body) if body else b""
        if self._capture:
            self._req_body = raw = bytes(raw)
        kind = fam.request
        req = None
        if raw and kind:
            dec = _decoders.get(kind)
            if dec is None:
                req = decode_request(raw, kind)
            else:  # decode_request's fast path, without the Python frame
                try:
                    req = dec.decode(raw)
                except ValidationError:
                    req = decode_request(raw, kind)
                except DecodeError:
                    req = None
        if req is not None:
            fam.read_request(req, rec, self._route)
            if rec.request_model is None:
                rec.request_model = self._route.model
            if rec.stream is None:
                rec.stream = self._route.stream
            if rec.stream is None:
                rec.stream = fam.default_stream()
        return 0

    # -- response ---------------------------------------------------------------

    def on_response_headers(self, status, headers):
        """Pick the framing (content type + status) and decompression for the body."""
        if not self._req_done:
            self._finish_request(None)
        self._status = status
        self._rec.http_status = status
        self._headers = dict(headers)
        fam = self._family
        if not fam.scans:
            return
        try:
            if type(fam).framing is _BASE_FRAMING:
                framing = _framing(
                    fam, status, headers.get("content-type", ""), self._route, self._rec.stream
                )
            else:
                framing = fam.framing(
                    status, headers.get("content-type", ""), self._route, self._rec.stream
                )
            encoding = headers.get("content-encoding")
            if encoding:
                encoding = encoding.strip().lower()
                if encoding and encoding != "identity":
                    self._dec = _core.Decompressor(encoding)
                    if self._dec.error:
                        raise ValueError(self._dec.error)
            # Family.scanner_spec's cache, read directly; built on the first miss
            spec = fam._capture_spec if self._capture else fam._spec
            if spec is None:
                spec = fam.scanner_spec(self._capture)
            self._spec = spec
            self._out = spec.out
            # spec.folds is one object per family: core's parsed-fold cache hits
            if self._capture:
                kwargs = {"folds": spec.folds, "max_str": _CAPTURE_MAX_STR}
                if framing == "eventstream" and fam.b64_field:
                    kwargs["b64_field"] = fam.b64_field
                if framing == "json" and 200 <= status < 300:
                    self._resp = bytearray()
                self._ss = _core.StreamScanner(framing, spec.paths, **kwargs)
            elif framing == "eventstream" and fam.b64_field:
                self._ss = _core.StreamScanner(
                    framing, spec.paths, folds=spec.folds, b64_field=fam.b64_field
                )
            else:
                self._ss = _core.StreamScanner(framing, spec.paths, folds=spec.folds)
            self._framing = framing
        except Exception as e:  # unsupported encoding or framing: the body goes unread
            self._dec = self._ss = None
            self._scan_error = f"cannot read body: {e}"

    def on_response_body(self, chunk, end_of_stream=False):
        """Feed one body chunk; True when the first generated output appeared in it."""
        ss = self._ss
        if ss is None:
            return False
        self._seen = True
        try:
            data = chunk if self._dec is None else self._dec.feed(chunk)
            ss.feed(data)
            if self._resp is not None:
                self._keep(data)
            if end_of_stream:
                self._end_body()
            if self._started or not ss.output_started(self._out):
                return False
            self._started = True
            return True
        except Exception as e:  # a bug must not break the data path: stop reading
            self._ss = None
            self._scan_error = f"body scan failed: {e!r}"
            return False

    cdef int _end_body(self) except -1:
        if self._eos:
            return 0
        self._eos = True
        ss, dec = self._ss, self._dec
        if dec is not None:
            tail = dec.close()
            if tail:
                ss.feed(tail)
                if self._resp is not None:
                    self._keep(tail)
        ss.close()
        return 0

    cdef int _keep(self, object data) except -1:
        """Capture: keep a plain response body, up to the request-body cap."""
        resp = self._resp
        if resp is not None:
            if len(resp) + len(data) <= self._max_body:
                resp += data
            else:  # too big to keep: no output messages rather than a cut document
                self._resp = None
        return 0

    def on_response_trailers(self, headers):
        """Trailers count as response headers (Bedrock counts, request ids)."""
        self._headers.update(headers)

    def apply_token_usage(self, usage):
        """Envoy-assisted mode: Envoy's counts override what the body said."""
        self._envoy = usage

    # -- the record ---------------------------------------------------------------

    def finish(self, cut_short=None):
        """Fold everything into the call record (once; later calls return it again)."""
        if self._record is not None:
            return self._record
        if not self._req_done:
            self._finish_request(None)
        rec = self._rec
        try:
            self._fold(rec, cut_short)
        except Exception as e:  # fold bugs must still yield a record
            rec.scan_error = f"fold failed: {e!r}"
        self._record = rec
        self._ss = self._dec = None  # late body chunks are ignored
        return rec

    cdef int _fold(self, CallRecord rec, object cut_short) except -1:
        fam, ss = self._family, self._ss
        if ss is not None and not self._eos:
            self._end_body()
        spec = self._spec
        if spec is None and fam.scans and self._status:
            spec = fam.scanner_spec()
        cdef Scan s = new_scan(spec, ss, self._route, self._headers)
        status = self._status
        cdef bint ok = status is not None and 200 <= status < 300
        cdef bint abnormal = False
        if ok:  # an error body's "id" is not a response id
            s.assign(rec)
            if type(fam).fold is not _BASE_FOLD:
                fam.fold(s, rec)
        if rec.provider == "aws.bedrock":
            rec.aws_request_id = self._headers.get("x-amzn-requestid")
        if ss is None or not ok:
            raw_finish = []
        elif type(fam).finish_reasons is _BASE_FINISH_REASONS:
            raw_finish = raw_reasons(s.get("finish"))
        else:
            raw_finish = fam.finish_reasons(s)
        error_type = message = None
        if status is None:
            error_type = cut_short or "no_response"
            abnormal = cut_short is not None
        elif not ok:
            etype, message = fam.error_fields(s)
            error_type = etype or str(status)
        else:
            if ss is not None and _in_stream_error(fam, s):
                etype, message = fam.error_fields(s)
                event = s.error_event if isinstance(s.error_event, str) and s.error_event else None
                error_type = etype or event or "stream_error"
                abnormal = True
            reason = cut_short
            # Clients hang up as soon as they read the end marker (the OpenAI SDK does on
            # `[DONE]`), often before Envoy delivers end-of-stream: that is not a cut.
            if reason is not None and self._seen and fam.stream_complete(s) is True:
                reason = None
            # An in-stream error is how the provider ended the stream: not a cut. A body
            # the gateway chose not to receive (Envoy-assisted mode) gets no verdict.
            if (
                reason is None
                and not abnormal
                and ss is not None
                and self._seen
                and self._body_incomplete(s)
            ):
                reason = "incomplete"
            if reason is not None:
                abnormal = True
                error_type = error_type or reason
                message = message or f"response cut short: {reason}"
                rec.cut_short = reason
            if ss is not None and spec is not None:
                rec.first_output_kind, rec.first_output_event = s.first_output()
                if spec.chunks >= 0 and self._framing in _STREAMED:
                    rec.output_chunks = s.slot_c(spec.chunks)
        if abnormal:
            finish = [r or "error" for r in raw_finish] or ["error"]
        else:
            finish = [r for r in raw_finish if r is not None]
        rec.finish_reasons = finish or None
        rec.error_type = error_type
        rec.error_message = describe(message) if message else None
        dec = self._dec
        rec.scan_error = self._scan_error or (dec.error if dec is not None else None) or s.error
        if self._envoy is not None:
            apply_envoy(rec, self._envoy)
        if self._capture:
            if ss is not None:
                s.capped = frozenset(
                    [n for n, c in zip(s.values, ss.capped, strict=True) if c]
                )
            body = bytes(self._resp) if ok and self._resp is not None else None
            streamed = ok and self._framing in _STREAMED
            rec.content = exchange_content(fam, rec, self._req_body, body, streamed, s)
            self._req_body = self._resp = None
        if self._cost:
            billed = rec.billed_input_tokens is not None or rec.billed_output_tokens is not None
            rec.cost_usd = cost_usd(
                rec.provider,
                rec.response_model or rec.request_model,
                rec.billed_input_tokens if billed else rec.input_tokens,
                rec.billed_output_tokens if billed else rec.output_tokens,
                None if billed else rec.cache_read_tokens,
                None if billed else rec.cache_creation_tokens,
            )
        return 0

    cdef bint _body_incomplete(self, Scan s) except -1:
        """The body stopped mid-frame, or a stream stopped before its end marker."""
        if getattr(self._dec, "error", None):
            return False  # llmtap could not read it all (e.g. its size cap): no verdict
        if s.truncated:
            return True
        return self._framing in _STREAMED and self._family.stream_complete(s) is False
