"""One call in flight: feeds request and response bytes to its family, folds once.

The response body path (:meth:`Exchange.on_response_body`) is hot: it hands each
chunk to the Decompressor (if any) and the native StreamScanner and makes no Python
object per event; all folding waits for :meth:`Exchange.finish`. Nothing here raises
into the gateway: a failure to read a body ends reading and is noted on the record.

With content capture on (``ExtConfig.capture_content``) the request body and a plain
2xx response body are kept (bounded like the request body), streamed output is
joined by the scanner's ``"concat"`` slots, and ``CallRecord.content`` builds the
messages from them when first read. Off, none of that happens.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from llmtap import core as _core

from .content import MessageContent, exchange_content
from .cost import cost_usd
from .errors import describe
from .family import Family, Route, Spec, decode_request
from .record import CallRecordPy as CallRecord
from .record import EnvoyTokenUsage, apply_envoy
from .request import ExtConfig
from .scan import ScanPy as Scan

__all__ = ["Exchange"]

# Streamed framings: a body in one of these that stops before the family's own end
# marker was cut short even if every frame in it was whole.
_STREAMED = frozenset({"sse", "ndjson", "eventstream", "json_array"})
# Past the request-body cap, only these are still read (streaming, bounded memory).
_OVERFLOW_PATHS = _core.PathSet({"model": "model", "stream": "stream"})
# Capture: strings a scanner extracts may be as long as a joined "concat" slot, so a
# streamed piece is never cut before it is joined (core: max_str >= max_concat).
_CAPTURE_MAX_STR = 64 * 1024


class Exchange:
    """The per-request state the gateway drives; create it with ``recognise()``."""

    __slots__ = (
        "_body",
        "_cfg",
        "_dec",
        "_envoy",
        "_eos",
        "_family",
        "_framing",
        "_headers",
        "_out",
        "_overflow",
        "_rec",
        "_record",
        "_req_body",
        "_req_done",
        "_resp",
        "_route",
        "_scan_error",
        "_seen",
        "_spec",
        "_ss",
        "_started",
        "_status",
    )

    def __init__(
        self,
        family: Family,
        route: Route,
        provider: str,
        operation: str,
        config: ExtConfig,
        server_address: str | None,
        server_port: int | None,
    ) -> None:
        self._family = family
        self._route = route
        self._cfg = config
        # positional: family, provider, operation, server address and port, model, stream
        self._rec = CallRecord(
            family.name,
            provider,
            operation,
            server_address or None,
            server_port if server_address else None,
            route.model,
            route.stream,
        )
        self._body: bytearray | None = None
        self._req_body: bytes | None = None  # kept for content capture
        self._resp: bytearray | None = None  # capture: a plain response body
        self._spec: Spec | None = None
        self._overflow: Any = None  # StreamScanner reading a request past the cap
        self._req_done = family.request is None
        self._status: int | None = None
        self._headers: dict[str, str] = {}
        self._framing: str | None = None
        self._dec: Any = None
        self._ss: Any = None
        self._out: tuple[int, ...] = ()
        self._started = False
        self._seen = False  # any body message reached us (Envoy may be told to skip bodies)
        self._eos = False
        self._envoy: EnvoyTokenUsage | None = None
        self._scan_error: str | None = None
        self._record: CallRecord | None = None

    # -- identity ---------------------------------------------------------------

    @property
    def family(self) -> str:
        return self._family.name

    @property
    def provider(self) -> str:
        return self._rec.provider

    @property
    def operation(self) -> str:
        return self._rec.operation

    @property
    def wants_request_body(self) -> bool:
        return self._family.request is not None

    # -- request ----------------------------------------------------------------

    def on_request_body(
        self, chunk: bytes | bytearray | memoryview, end_of_stream: bool = False
    ) -> None:
        """Buffer the request body (up to the cap); decode it at the end."""
        if self._req_done:
            return
        try:
            if (
                end_of_stream
                and self._body is None
                and self._overflow is None
                and len(chunk) <= self._cfg.max_request_body
            ):  # the whole body in one message (the usual case): decode it in place
                self._finish_request(chunk)
                return
            if self._overflow is not None:
                self._overflow.feed(chunk)
            else:
                buf = self._body
                if buf is None:
                    buf = self._body = bytearray()
                if len(buf) + len(chunk) <= self._cfg.max_request_body:
                    buf += chunk
                else:
                    self._start_overflow(chunk)
            if end_of_stream:
                self._finish_request()
        except Exception as e:  # never let a request body break the data path
            self._req_done = True
            self._body = None
            self._scan_error = self._scan_error or f"request body: {e!r}"

    def _start_overflow(self, chunk: bytes | bytearray | memoryview) -> None:
        # Too big to buffer: keep reading the few top-level fields as a stream.
        ss = _core.StreamScanner("json", _OVERFLOW_PATHS)
        if self._body:
            ss.feed(bytes(self._body))
        ss.feed(chunk)
        self._body = None
        self._overflow = ss

    def _finish_request(self, whole: bytes | bytearray | memoryview | None = None) -> None:
        """Decode the request: ``whole`` is the entire body when it came in one piece."""
        self._req_done = True
        fam, rec = self._family, self._rec
        if self._overflow is not None:
            ss, self._overflow = self._overflow, None
            ss.close()
            model, stream = ss.values
            if isinstance(model, str) and model and rec.request_model is None:
                rec.request_model = model
            if isinstance(stream, bool) and rec.stream is None:
                rec.stream = stream
        else:
            raw: bytes | bytearray | memoryview
            if whole is not None:
                raw = whole
            else:
                body, self._body = self._body, None
                raw = bytes(body) if body else b""
            if self._cfg.capture_content:
                self._req_body = raw = bytes(raw)
            req = decode_request(raw, fam.request) if raw and fam.request else None
            if req is not None:
                fam.read_request(req, rec, self._route)
                if rec.request_model is None:
                    rec.request_model = self._route.model
                if rec.stream is None:
                    rec.stream = self._route.stream
                if rec.stream is None:
                    rec.stream = fam.default_stream()

    # -- response ---------------------------------------------------------------

    def on_response_headers(self, status: int, headers: Mapping[str, str]) -> None:
        """Pick the framing (content type + status) and decompression for the body."""
        if not self._req_done:
            self._finish_request()
        self._status = status
        self._rec.http_status = status
        self._headers = dict(headers)
        fam = self._family
        if not fam.scans:
            return
        try:
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
            capture = self._cfg.capture_content
            spec = self._spec = fam.scanner_spec(capture)
            self._out = spec.out
            # spec.folds is one object per family: core's parsed-fold cache hits
            if capture:
                kwargs: dict[str, Any] = {"folds": spec.folds, "max_str": _CAPTURE_MAX_STR}
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

    def on_response_body(
        self, chunk: bytes | bytearray | memoryview, end_of_stream: bool = False
    ) -> bool:
        """Feed one body chunk; True when the first generated output appeared in it."""
        ss = self._ss
        if ss is None:
            return False
        self._seen = True
        try:
            dec = self._dec
            data = chunk if dec is None else dec.feed(chunk)
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

    def _end_body(self) -> None:
        if self._eos:
            return
        self._eos = True
        ss, dec = self._ss, self._dec
        if dec is not None:
            tail = dec.close()
            if tail:
                ss.feed(tail)
                if self._resp is not None:
                    self._keep(tail)
        ss.close()

    def _keep(self, data: bytes | bytearray | memoryview) -> None:
        """Capture: keep a plain response body, up to the request-body cap."""
        resp = self._resp
        if resp is not None:
            if len(resp) + len(data) <= self._cfg.max_request_body:
                resp += data
            else:  # too big to keep: no output messages rather than a cut document
                self._resp = None

    def on_response_trailers(self, headers: Mapping[str, str]) -> None:
        """Trailers count as response headers (Bedrock counts, request ids)."""
        self._headers.update(headers)

    def apply_token_usage(self, usage: EnvoyTokenUsage) -> None:
        """Envoy-assisted mode: Envoy's counts override what the body said."""
        self._envoy = usage

    # -- the record ---------------------------------------------------------------

    def finish(self, cut_short: str | None = None) -> CallRecord:
        """Fold everything into the call record (once; later calls return it again).

        ``cut_short`` says why the response ended early (``client_disconnect``,
        ``stream_reset``, ``timeout``, ...); None when the gateway saw a normal end.
        """
        if self._record is not None:
            return self._record
        if not self._req_done:
            self._finish_request()
        rec = self._rec
        try:
            self._fold(rec, cut_short)
        except Exception as e:  # fold bugs must still yield a record
            rec.scan_error = f"fold failed: {e!r}"
        self._record = rec
        self._ss = self._dec = None  # late body chunks are ignored
        return rec

    def _fold(self, rec: CallRecord, cut_short: str | None) -> None:
        fam, ss = self._family, self._ss
        if ss is not None and not self._eos:
            self._end_body()
        spec = self._spec
        if spec is None and fam.scans and self._status:
            spec = fam.scanner_spec()
        s = Scan(spec, ss, self._route, self._headers)
        status = self._status
        ok = status is not None and 200 <= status < 300
        if ok:  # an error body's "id" is not a response id
            s.assign(rec)
            fam.fold(s, rec)
        if rec.provider == "aws.bedrock":
            rec.aws_request_id = self._headers.get("x-amzn-requestid")
        raw_finish = fam.finish_reasons(s) if ss is not None and ok else []
        error_type: str | None = None
        message: str | None = None
        abnormal = False
        if status is None:
            error_type = cut_short or "no_response"
            abnormal = cut_short is not None
        elif not 200 <= status < 300:
            etype, message = fam.error_fields(s)
            error_type = etype or str(status)
        else:
            if ss is not None and fam.in_stream_error(s):
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
                    rec.output_chunks = s.slot(spec.chunks)
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
        if self._cfg.capture_content:
            if ss is not None:
                s.capped = frozenset(n for n, c in zip(s.values, ss.capped, strict=True) if c)
            rec.content = self._content(s, ok)
        if self._cfg.cost:
            billed = rec.billed_input_tokens is not None or rec.billed_output_tokens is not None
            rec.cost_usd = cost_usd(
                rec.provider,
                rec.response_model or rec.request_model,
                rec.billed_input_tokens if billed else rec.input_tokens,
                rec.billed_output_tokens if billed else rec.output_tokens,
                None if billed else rec.cache_read_tokens,
                None if billed else rec.cache_creation_tokens,
            )

    def _content(self, s: Scan, ok: bool) -> MessageContent:
        """The record's content, built from what was kept when (if ever) it is read."""
        body = bytes(self._resp) if ok and self._resp is not None else None
        streamed = ok and self._framing in _STREAMED
        content = exchange_content(self._family, self._rec, self._req_body, body, streamed, s)
        self._req_body = self._resp = None
        return content

    def _body_incomplete(self, s: Scan) -> bool:
        """The body stopped mid-frame, or a stream stopped before its end marker."""
        if getattr(self._dec, "error", None):
            return False  # llmtap could not read it all (e.g. its size cap): no verdict
        if s.truncated:
            return True
        return self._framing in _STREAMED and self._family.stream_complete(s) is False


ExchangePy = Exchange

from llmtap.core._env import NO_EXTENSIONS  # noqa: E402

if not NO_EXTENSIONS:  # pragma: no branch
    with suppress(ImportError):  # the pure twin serves
        from ._exchange import Exchange  # type: ignore[no-redef]
