"""The per-request state machine: one ext_proc stream, one HTTP exchange, one span.

Envoy opens one ``Process`` stream per HTTP request and sends, depending on its
processing mode: request headers, request body chunks, (request trailers), response
headers, response body chunks, response trailers. Any of the later phases may be
missing (header-only requests, no response at all, a local reply, a mode that skips
them) and chunks come in whatever sizes Envoy read.

:class:`ExchangeState` turns that sequence into calls on an ``ext`` exchange and
returns the answer for each message. The expensive part of a body chunk (scanning) is
deferred to :meth:`ExchangeState.drain`, which the servicer runs after the answer went
out, so Envoy never waits for it. Every exit path funnels into one ``_finish`` guarded
by a flag, so the span is ended exactly once: at the end of the response, or from
:meth:`ExchangeState.close` when the stream ended some other way.

Nothing raised by ``ext`` or telemetry escapes: it is counted with
``tel.parse_error(kind)`` and the exchange carries on (or ends) without it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from llmtap.ext import EnvoyTokenUsage, RequestInfo
from llmtap.gateway import extproc_wire as wire
from llmtap.gateway import modes
from llmtap.gateway.extproc_wire import HeaderMutation, ProcessingMode
from llmtap.gateway.modes import TransportOptions
from llmtap.gateway.protowire import TokenUsage, WireError

__all__ = ["CUT_REASONS", "ExchangeState"]

log = logging.getLogger("llmtap.gateway")

#: ``cut_short`` values (also the ``outcome`` of ``tel.exchange_finished``; a whole
#: exchange is ``complete``): in normal mode, Envoy ended the stream before the
#: exchange ended (client gone, upstream reset, local reply); in observability mode,
#: the stream ended before llmtap saw the end of the exchange (the same causes, or
#: Envoy's deferred_close_timeout passing while llmtap lagged behind); llmtap's own
#: per-exchange timeout; server shutdown; a message llmtap could not decode.
CUT_REASONS = ("cancelled", "incomplete", "timeout", "shutdown", "protocol_error")

# phases
_IDLE, _REQUEST, _RESPONSE, _DONE, _LET_GO = range(5)
_BODY_MODES_THAT_SEND = (
    modes.STREAMED,
    modes.BUFFERED,
    modes.BUFFERED_PARTIAL,
    modes.FULL_DUPLEX_STREAMED,
)


class ExchangeState:
    """Drives one ext exchange from the ext_proc messages of one stream."""

    __slots__ = (
        "_answer_final_inline",
        "_body_expected",
        "_configured_request",
        "_configured_response",
        "_cut",
        "_decision",
        "_deferred_finish",
        "_emitted",
        "_end_mono",
        "_ended",
        "_ex",
        "_ext_ok",
        "_first_chunk",
        "_grpc_metadata",
        "_mono_start",
        "_observability",
        "_opts",
        "_path",
        "_pending",
        "_phase",
        "_protocol_error",
        "_record",
        "_sequence_reported",
        "_start_exchange",
        "_status",
        "_tel",
        "_wall_start",
        "abandon",
    )

    def __init__(
        self,
        opts: TransportOptions,
        tel: Any,
        start_exchange: Callable[[Any], Any],
        grpc_metadata: Mapping[str, str] | None = None,
    ) -> None:
        self._opts = opts
        self._tel = tel
        self._start_exchange = start_exchange
        self._grpc_metadata = grpc_metadata or {}
        self._phase = _IDLE
        self._observability = False
        self._configured_request = -1
        self._configured_response = -1
        self._ex: Any = None
        self._ext_ok = True
        self._decision: Any = None
        self._path = ""
        self._status: int | None = None
        self._mono_start = 0
        self._wall_start = 0
        self._first_chunk: int | None = None
        self._end_mono = 0
        self._body_expected = False
        self._answer_final_inline = bool(opts.metadata_namespace)
        self._pending: list[tuple[bool, memoryview, bool, int]] = []
        self._ended = False
        self._deferred_finish: int | None = None
        self._cut: str | None = None
        self._emitted = False
        self._record: Any = None
        self._protocol_error: str | None = None
        self._sequence_reported = False
        #: Set when the stream cannot be answered (an undecodable message of unknown
        #: kind in normal mode): the servicer closes it and Envoy carries on alone.
        self.abandon = False

    # -- inputs ----------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def is_exchange(self) -> bool:
        """An LLM call was recognised on this stream (so there is a span to end)."""
        return self._ex is not None

    def on_message(self, req: Any, now: int) -> bytes | None:
        """Handle one decoded ProcessingRequest received at monotonic ``now`` (ns).

        Returns the encoded answer, or None when none is due (observability mode).
        Deferred work is left for :meth:`drain`.
        """
        if self._phase == _IDLE:
            self._observability = bool(req.observability_mode)
            if req.request_body_mode >= 0:
                self._configured_request = req.request_body_mode
                self._configured_response = req.response_body_mode
        kind = req.kind
        if req.error is not None:
            self._count("wire")
            log.debug("ext_proc message not decodable: %s", req.error)
            if self._protocol_error is None:
                self._protocol_error = req.error
            if kind == wire.NO_REQUEST:
                if not self._observability:
                    self.abandon = True
                return None
            return self._continue(kind)
        if kind == wire.REQUEST_HEADERS:
            return self._request_headers(req, now)
        if kind == wire.RESPONSE_HEADERS:
            return self._response_headers(req, now)
        if kind == wire.REQUEST_BODY:
            if self._phase == _REQUEST and self._ext_ok:
                self._pending.append((False, req.body, bool(req.end_of_stream), now))
            return self._continue(kind)
        if kind == wire.RESPONSE_BODY:
            return self._response_body(req, now)
        if kind == wire.RESPONSE_TRAILERS:
            return self._response_trailers(req, now)
        if kind == wire.REQUEST_TRAILERS:
            return self._continue(kind)
        self._sequence("empty ProcessingRequest")
        return None

    def drain(self) -> None:
        """Run the work deferred until after the answer: body scanning, span end."""
        if self._pending:
            self._run_pending()
        if self._deferred_finish is not None and not self._ended:
            self._finish(None, self._deferred_finish)
        if self._ended and not self._emitted:
            self._emit()

    def close(self, reason: str, now: int) -> None:
        """The stream is over (``reason``: eof, cancelled, timeout, shutdown, error).

        Ends the exchange if it has not ended: a complete one normally, otherwise cut
        short with a reason from :data:`CUT_REASONS`.
        """
        if not self._ended and self._deferred_finish is None:
            self._finish(self._cut_reason(reason), now)
        self.drain()

    # -- phases ----------------------------------------------------------------------

    def _request_headers(self, req: Any, now: int) -> bytes | None:
        if self._phase != _IDLE:
            self._sequence("request headers twice")
            return self._continue(wire.REQUEST_HEADERS)
        headers: dict[str, str] = req.headers
        self._mono_start = now
        self._wall_start = time.time_ns()
        self._path = headers.get(":path", "")
        ex = None
        try:
            ex = self._start_exchange(self._request_info(req, headers))
        except Exception:
            self._count("ext")
            log.exception("recognising the request failed")
        if ex is None:
            self._phase = _LET_GO
            if self._observability:
                return None
            return wire.encode_response(wire.REQUEST_HEADERS, mode_override=modes.LET_GO)
        self._ex = ex
        self._phase = _REQUEST
        self._guard(self._tel.exchange_started)
        self._decision = self._guard(
            self._tel.begin, headers, self._grpc_metadata, self._wall_start
        )
        if self._observability:
            return None
        inject = getattr(self._decision, "inject_headers", None) or ()
        hint = self._opts.hint_header
        remove = (hint,) if hint and hint in headers else ()
        mutation = HeaderMutation(tuple(inject), remove) if inject or remove else None
        override = None
        if not req.end_of_stream:
            wants_body = True
            try:
                wants_body = bool(ex.wants_request_body)
            except Exception:
                self._ext_failed()
            override = modes.request_mode(
                wants_body, self._configured_request, self._configured_response
            )
        return wire.encode_response(wire.REQUEST_HEADERS, headers=mutation, mode_override=override)

    def _response_headers(self, req: Any, now: int) -> bytes | None:
        if self._phase not in (_IDLE, _REQUEST):
            if self._phase != _LET_GO:
                self._sequence("response headers out of order")
            return self._continue(wire.RESPONSE_HEADERS)
        if self._phase == _IDLE:
            # Request headers were not sent to us (request_header_mode: SKIP): there is
            # nothing to recognise the call by.
            self._phase = _LET_GO
            return self._continue(wire.RESPONSE_HEADERS)
        self._run_pending()  # request body chunks still queued belong before this
        headers: dict[str, str] = req.headers
        self._phase = _RESPONSE
        try:
            self._status = int(headers.get(":status", "0"))
        except ValueError:
            self._status = 0
        if self._ext_ok:
            try:
                plain = {k: v for k, v in headers.items() if not k.startswith(":")}
                self._ex.on_response_headers(self._status, plain)
            except Exception:
                self._ext_failed()
        if req.end_of_stream:
            self._finish(None, now)
            if self._observability:
                return None
            return wire.encode_response(
                wire.RESPONSE_HEADERS, dynamic_metadata=self._dynamic_metadata()
            )
        override: ProcessingMode | None = None
        if self._observability:
            # Without protocol_config (older Envoy) assume the body comes, as the
            # documented configuration says: a body that never came is then reported.
            configured = self._configured_response
            self._body_expected = configured < 0 or configured in _BODY_MODES_THAT_SEND
            return None
        sampled = bool(getattr(self._decision, "sampled", False))
        override, self._body_expected = modes.response_mode(
            self._opts,
            path=self._path,
            status=self._status,
            content_encoding=headers.get("content-encoding", ""),
            sampled=sampled,
            configured_response=self._configured_response,
        )
        return wire.encode_response(wire.RESPONSE_HEADERS, mode_override=override)

    def _response_body(self, req: Any, now: int) -> bytes | None:
        if self._phase != _RESPONSE:
            if self._phase not in (_LET_GO, _DONE):
                self._sequence("response body before response headers")
            return self._continue(wire.RESPONSE_BODY)
        self._body_expected = True
        eos = bool(req.end_of_stream)
        if self._ext_ok:
            self._pending.append((True, req.body, eos, now))
        if not eos:
            return self._continue(wire.RESPONSE_BODY)
        self._phase = _DONE
        if self._observability or not self._answer_final_inline:
            self._deferred_finish = now
            return self._continue(wire.RESPONSE_BODY)
        # The last chunk is scanned before answering: the answer carries the token
        # counts as dynamic metadata.
        self._finish(None, now)
        return wire.encode_response(wire.RESPONSE_BODY, dynamic_metadata=self._dynamic_metadata())

    def _response_trailers(self, req: Any, now: int) -> bytes | None:
        if self._phase != _RESPONSE:
            if self._phase not in (_LET_GO, _DONE):
                self._sequence("response trailers before response headers")
            return self._continue(wire.RESPONSE_TRAILERS)
        self._run_pending()
        usage = None
        try:
            usage = req.metadata().token_usage(self._opts.token_usage_namespace)
        except WireError as exc:
            self._count("wire")
            log.debug("TokenUsage metadata not decodable: %s", exc)
        if self._ext_ok:
            try:
                if usage is not None:
                    self._ex.apply_token_usage(self._envoy_usage(usage))
                self._ex.on_response_trailers(req.headers)
            except Exception:
                self._ext_failed()
        self._finish(None, now)
        if self._observability:
            return None
        return wire.encode_response(
            wire.RESPONSE_TRAILERS, dynamic_metadata=self._dynamic_metadata()
        )

    # -- ending ----------------------------------------------------------------------

    def _cut_reason(self, reason: str) -> str | None:
        if self._protocol_error is not None:
            return "protocol_error"
        if self._phase == _RESPONSE and not self._body_expected:
            # Response headers seen, no body on its way (NONE mode, or trailers-only
            # with Envoy's usage but no trailers came): nothing was cut that we know of.
            return None
        if reason in ("timeout", "shutdown"):
            return reason
        if reason == "error":  # llmtap's own failure: it just did not see the end
            return "incomplete"
        # Envoy ended the stream before the exchange ended. In normal mode it waits for
        # every answer, so that is the HTTP stream going away (client gone, upstream
        # reset, local reply); Envoy closes with a half-close *and* a reset, so "eof"
        # and "cancelled" are the same thing here. In observability mode it may also
        # be Envoy's deferred_close_timeout passing before llmtap read everything.
        return "incomplete" if self._observability else "cancelled"

    def _finish(self, cut_short: str | None, now: int) -> None:
        if self._ended:
            return
        if self._pending:
            self._run_pending()
        self._ended = True
        if self._phase != _LET_GO:
            self._phase = _DONE
        self._end_mono = now
        if self._ex is None:
            return
        if self._protocol_error is not None and cut_short is None:
            cut_short = "protocol_error"
        self._cut = cut_short
        try:
            self._record = self._ex.finish(cut_short=cut_short)
        except Exception:
            self._count("ext")
            log.exception("ext finish failed")
            self._record = None

    def _emit(self) -> None:
        self._emitted = True
        if self._ex is None:
            return
        outcome = "error"
        if self._record is not None:
            # ext may find a body cut short that the stream did not show (a missing
            # end marker); its verdict is the record's.
            outcome = getattr(self._record, "cut_short", None) or self._cut or "complete"
            self._guard(
                self._tel.end,
                self._decision,
                self._record,
                self._wall_start,
                self._wall(self._end_mono),
                None if self._first_chunk is None else self._wall(self._first_chunk),
                self._status,
            )
        self._guard(self._tel.exchange_finished, outcome)

    # -- helpers ---------------------------------------------------------------------

    def _run_pending(self) -> None:
        pending, self._pending = self._pending, []
        ex = self._ex
        for response, chunk, eos, at in pending:
            if not self._ext_ok:
                return
            try:
                if response:
                    if ex.on_response_body(chunk, eos) and self._first_chunk is None:
                        self._first_chunk = at
                else:
                    ex.on_request_body(chunk, eos)
            except Exception:
                self._ext_failed()

    def _request_info(self, req: Any, headers: dict[str, str]) -> RequestInfo:
        return RequestInfo(
            method=headers.get(":method", ""),
            authority=headers.get(":authority") or headers.get("host", ""),
            path=self._path,
            headers={k: v for k, v in headers.items() if not k.startswith(":")},
            scheme=headers.get(":scheme", "https"),
            hint=self._hint(req),
        )

    def _hint(self, req: Any) -> str | None:
        """A provider named by Envoy: dynamic metadata ``<hint_namespace>.provider``
        (forwarded with ``metadata_options.forwarding_namespaces.untyped``), else an
        attribute ``<hint_namespace>.provider`` (e.g. mapped with a CEL expression over
        route or cluster metadata)."""
        ns = self._opts.hint_namespace
        if not ns:
            return None
        try:
            value = req.metadata().filter_metadata.get(ns, {}).get("provider")
            if not (isinstance(value, str) and value):
                name = f"{ns}.provider"
                for attrs in req.attributes().values():
                    value = attrs.get(name)
                    if isinstance(value, str) and value:
                        break
        except WireError:
            self._count("wire")
            return None
        return value if isinstance(value, str) and value else None

    @staticmethod
    def _envoy_usage(u: TokenUsage) -> EnvoyTokenUsage:
        if u.extraction_status == 3:  # FAILED: only the model is meaningful
            return EnvoyTokenUsage(model=u.model or None)
        return EnvoyTokenUsage(
            model=u.model or None,
            input_tokens=u.input_tokens,
            output_tokens=u.output_tokens,
            total_tokens=u.total_tokens if u.total_tokens is not None else u.provider_total_tokens,
            cached_input_tokens=u.cached_tokens,
            cache_creation_input_tokens=u.cache_creation_tokens,
            reasoning_tokens=u.reasoning_tokens,
        )

    def _dynamic_metadata(self) -> dict[str, dict[str, object]] | None:
        ns = self._opts.metadata_namespace
        rec = self._record
        if not ns or rec is None:
            return None
        fields: dict[str, object] = {}
        for key, value in (
            ("provider", getattr(rec, "provider", None)),
            ("model", getattr(rec, "response_model", None) or getattr(rec, "request_model", None)),
            ("input_tokens", getattr(rec, "input_tokens", None)),
            ("output_tokens", getattr(rec, "output_tokens", None)),
            ("cached_input_tokens", getattr(rec, "cache_read_tokens", None)),
            ("reasoning_tokens", getattr(rec, "reasoning_tokens", None)),
        ):
            if value is not None:
                fields[key] = value
        i, o = fields.get("input_tokens"), fields.get("output_tokens")
        if isinstance(i, int) and isinstance(o, int):
            fields["total_tokens"] = i + o
        return {ns: fields} if fields else None

    def _continue(self, kind: int) -> bytes | None:
        return None if self._observability else wire.CONTINUE[kind]

    def _wall(self, mono: int) -> int:
        return self._wall_start + (mono - self._mono_start)

    def _ext_failed(self) -> None:
        # An exchange whose ext code raised is not fed again; it still ends.
        self._ext_ok = False
        self._count("ext")
        log.exception("ext exchange failed; it is no longer fed")

    def _sequence(self, what: str) -> None:
        if not self._sequence_reported:
            self._sequence_reported = True
            self._count("sequence")
            log.debug("unexpected ext_proc message: %s", what)

    def _count(self, kind: str) -> None:
        try:
            self._tel.parse_error(kind)
        except Exception:
            log.exception("telemetry parse_error failed")

    def _guard(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception:
            if fn is not self._tel.parse_error:
                self._count("telemetry")
            log.exception("telemetry call %s failed", getattr(fn, "__name__", fn))
            return None
