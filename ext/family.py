"""The shape every API family module fills in, and the helpers folds share.

A family declares, mostly as data: how its URLs look (:meth:`Family.match`), the
request fields it reads (a msgspec Struct naming only those fields), the scanner
paths and folds for its responses, which presence slots mark generated output, and
the framing of a streamed 2xx response when the content type does not say. Its
:meth:`Family.fold` turns the scanned values into the call record, once, at the end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import msgspec

from .errors import pick_error_type
from .record import CallRecord
from .scan import Scan, Spec, as_int

__all__ = [
    "ERROR_PATHS",
    "OUTPUT_DOCS",
    "Family",
    "Route",
    "Scan",
    "Spec",
    "add",
    "as_int",
    "decode_request",
    "raw_reasons",
]

#: Error fields every family scans: OpenAI-style ``error.{code,type,message}``,
#: Google's ``error.status``, Ollama's ``{"error": "..."}`` and the bare
#: ``{"message": ...}`` of Bedrock and Cohere.
ERROR_PATHS: Mapping[str, str] = {
    "_e_code": "error.code",
    "_e_type": "error.type",
    "_e_status": "error.status",
    "_e_msg": "error.message",
    "_e_str": "error",
    "_e_top_msg": "message",
}

#: Slots whose value in a 2xx body means the provider reported an error in it.
ERROR_SLOTS = ("_e_code", "_e_type", "_e_msg", "_e_str")

#: Slot counting the documents that carried output (``CallRecord.output_chunks``).
OUTPUT_DOCS = "_output_docs"

_JSON_TYPES = ("application/json", "text/json")
_NDJSON_TYPES = (
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/jsonlines",
    "application/stream+json",
)


_FRAMED = frozenset({"sse", "ndjson", "eventstream"})
# raw content-type header -> what it says about the framing (a handful per process)
_content_kinds: dict[str, str] = {}


def _content_kind(content_type: str) -> str:
    """``sse``, ``ndjson``, ``eventstream``, ``json``, ``none`` (no type) or ``other``."""
    ct = content_type.partition(";")[0].strip().lower()
    if ct == "text/event-stream":
        kind = "sse"
    elif ct in _NDJSON_TYPES:
        kind = "ndjson"
    elif ct == "application/vnd.amazon.eventstream":
        kind = "eventstream"
    elif ct in _JSON_TYPES or ct.endswith("+json"):
        kind = "json"
    else:
        kind = "other" if ct else "none"
    if len(content_type) <= 256:
        if len(_content_kinds) >= 256:
            _content_kinds.clear()
        _content_kinds[content_type] = kind
    return kind


@dataclass(frozen=True, slots=True)
class Route:
    """What the URL alone says about a call. Shared: recognition caches it per path."""

    provider: str | None = None  # provider implied by the path shape, if any
    model: str | None = None  # model named in the path (Gemini, Vertex, Bedrock, Azure)
    stream: bool | None = None  # the method itself streams (streamGenerateContent, ...)
    framing: str | None = None  # framing the URL asks for (Gemini ``alt=sse``)
    enum_int: bool = False  # Vertex ``enum-encoding=int``: enums come back as numbers


def _resolve(
    fields: Mapping[str, tuple[str, ...]], index: Mapping[str, int]
) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """(field, slot indexes) pairs; slots the spec does not have never hold a value."""
    return tuple((f, tuple(index[n] for n in names if n in index)) for f, names in fields.items())


def add(*values: int | None) -> int | None:
    """Sum of the values present; None when none is."""
    total, seen = 0, False
    for v in values:
        if v is not None:
            total += v
            seen = True
    return total if seen else None


def raw_reasons(v: Any) -> list[str | None]:
    """Finish reasons in choice order; None where a choice has none (yet)."""
    if v is None or v == "":
        return []
    if isinstance(v, list):
        return [None if x is None or x == "" else str(x) for x in v]
    return [str(v)]


# One Decoder per request Struct (a handful, all class attributes of the families):
# cheaper per call than msgspec.json.decode(type=...).
_decoders: dict[type[msgspec.Struct], msgspec.json.Decoder[Any]] = {}


def decode_request(
    body: bytes | bytearray | memoryview, kind: type[msgspec.Struct]
) -> msgspec.Struct | None:
    """Decode the fields ``kind`` names; a field of an unexpected type is dropped alone.

    The fast path decodes straight into the Struct (unknown fields are skipped
    without building objects). If one field has a surprising type the lenient path
    converts field by field so the others still count. Not JSON at all: None.
    """
    dec = _decoders.get(kind)
    if dec is None:
        dec = _decoders[kind] = msgspec.json.Decoder(kind, strict=False)
    try:
        return dec.decode(body)
    except msgspec.ValidationError:
        pass
    except msgspec.DecodeError:
        return None
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    if not isinstance(raw, dict):
        return None
    kwargs: dict[str, Any] = {}
    for f in msgspec.structs.fields(kind):
        if f.encode_name in raw:
            try:
                kwargs[f.name] = msgspec.convert(raw[f.encode_name], f.type, strict=False)
            except msgspec.ValidationError:
                continue
    return kind(**kwargs)


class Family:
    """One API family. Subclasses set the class attributes and override the hooks."""

    #: ``provider.api`` name, e.g. ``openai.chat_completions``; also a valid hint.
    name: ClassVar[str] = "unknown"
    #: ``gen_ai.operation.name``.
    operation: ClassVar[str] = "unknown"
    #: Provider when neither the hint nor the host named one.
    provider: ClassVar[str] = "unknown"
    #: The last segment (after the last ``/``, then the last ``:``) of every path
    #: :meth:`match` accepts: recognition tries the family only on those paths.
    #: Empty: on every path.
    path_keys: ClassVar[tuple[str, ...]] = ()
    #: Request fields this family reads (None: it reads none).
    request: ClassVar[type[msgspec.Struct] | None] = None
    #: Scanner slots: name -> path (``?path`` for presence slots).
    paths: ClassVar[Mapping[str, str]] = {}
    #: StreamScanner folds for slots that need one (default: last non-null wins).
    folds: ClassVar[Mapping[str, Any]] = {}
    #: Record fields read straight from the scan (before :meth:`fold`): field -> the
    #: slots to try in order; the first holding a non-empty string wins, else None.
    texts: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    #: The same for numbers (as int: Titan sends ``28.0``).
    numbers: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    #: Presence slots that tell the kind of output (``text``, ``tool_call``,
    #: ``reasoning``); the latest one seen at or before the first output wins,
    #: declaration order breaks ties.
    outputs: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: Presence slots whose first document is the first output (default: the
    #: ``outputs`` slots). Differs when the kind is announced before the output.
    markers: ClassVar[tuple[str, ...] | None] = None
    #: Framing of a streamed 2xx body whose content type does not name one.
    stream_framing: ClassVar[str] = "sse"
    #: Eventstream payload field holding base64 JSON (Bedrock InvokeModel streams).
    b64_field: ClassVar[str | None] = None
    #: Error fields scanned in every body.
    error_paths: ClassVar[Mapping[str, str]] = ERROR_PATHS
    #: False: the response body is not read at all.
    scans: ClassVar[bool] = True
    #: Slots (and their folds) read only when message content is captured: the
    #: output of a streamed response, joined with ``"concat"`` folds.
    capture_paths: ClassVar[Mapping[str, str]] = {}
    capture_folds: ClassVar[Mapping[str, Any]] = {}

    _spec: Spec | None = None
    _capture_spec: Spec | None = None
    _markers: tuple[str, ...] | None = None

    # -- recognition -----------------------------------------------------------

    def match(self, method: str, path: str, query: str) -> Route | None:
        """A Route when ``path`` has this family's shape, else None."""
        return None

    # -- request ---------------------------------------------------------------

    def read_request(self, req: Any, rec: CallRecord, route: Route) -> None:
        """Copy the decoded request fields into ``rec``."""

    def default_stream(self) -> bool | None:
        """Whether a request that does not say streams (Ollama: yes)."""
        return None

    # -- response --------------------------------------------------------------

    def framing(self, status: int, content_type: str, route: Route, stream: bool | None) -> str:
        """The body framing, from the status and content type (never sniffed)."""
        if not 200 <= status < 300:
            return "json"  # error bodies are plain JSON whatever the content type says
        kind = _content_kinds.get(content_type) or _content_kind(content_type)
        if kind in _FRAMED:
            return kind
        streamed = route.stream or stream
        if kind == "json":
            stream_framing = route.framing or self.stream_framing
            return "json_array" if streamed and stream_framing == "json_array" else "json"
        if kind == "none" and streamed:
            return route.framing or self.stream_framing
        return "json"

    def scanner_spec(self, capture: bool = False) -> Spec:
        """The StreamScanner spec, built once per family; ``capture`` adds the
        content slots (only then: the default path scans nothing more)."""
        c = self._capture_spec if capture else self._spec
        if c is None:
            c = self._build_spec(capture)
            if capture:
                self._capture_spec = c
            else:
                self._spec = c
        return c

    def _build_spec(self, capture: bool) -> Spec:
        from llmtap.core import PathSet

        spec = {**self.error_paths, **self.paths}
        folds = dict(self.folds)
        markers = self.marker_slots()
        if markers:
            # one count over every marker slot: a document carrying several kinds of
            # output is still one output chunk
            spec[OUTPUT_DOCS] = spec[markers[0]]
            folds[OUTPUT_DOCS] = ("count", *markers[1:])
        if capture:
            spec.update(self.capture_paths)
            folds.update(self.capture_folds)
        names = tuple(spec)
        index = {name: i for i, name in enumerate(names)}
        out = tuple(index[slot] for slot in markers)
        chunks = index[OUTPUT_DOCS] if markers else -1
        kinds = [(index[slot], kind) for slot, kind in self.outputs if slot in index]
        return Spec(
            paths=PathSet(spec),
            names=names,
            out=out,
            folds=folds,
            chunks=chunks,
            slot_of=index,
            errors=tuple(index[slot] for slot in ERROR_SLOTS if slot in index),
            kind_slots=tuple(i for i, _ in kinds),
            kind_names=tuple(k for _, k in kinds),
            texts=_resolve(self.texts, index),
            numbers=_resolve(self.numbers, index),
        )

    def fold(self, s: Scan, rec: CallRecord) -> None:
        """Fold what ``texts`` and ``numbers`` cannot say into ``rec`` (sums, ...);
        runs after they were read (``Scan.assign``), for a 2xx response only."""

    # -- content (only when capture is on) ---------------------------------------------

    def input_messages(self, req: bytes) -> tuple[list[Any] | None, list[Any] | None]:
        """(system instructions, input messages) of a request body, as GenAI JSON."""
        return None, None

    def output_messages(self, body: bytes, finish: list[str] | None) -> list[Any] | None:
        """Output messages of a plain (not streamed) 2xx response body."""
        return None

    def stream_messages(self, s: Scan, finish: list[str] | None) -> list[Any] | None:
        """Output messages of a streamed response, from the ``capture_paths`` slots."""
        return None

    def finish_reasons(self, s: Scan) -> list[str | None]:
        """Finish reason per choice/candidate in index order (None: not finished)."""
        return raw_reasons(s.get("finish"))

    def stream_complete(self, s: Scan) -> bool | None:
        """Whether a streamed body reached its normal end (sentinel, final event);
        None when the family has no end marker to tell by."""
        return None

    def first_output_kind(self, s: Scan) -> str | None:
        """Kind of the first output: the latest kind evidence at or before it (the
        ``outputs`` slots; declaration order breaks ties). See ``Scan.first_output``."""
        return s.first_output()[0]

    def first_output_doc(self, s: Scan) -> int | None:
        """Index of the first document that carried output (a ``markers`` slot), or None."""
        return s.first_output()[1]

    def marker_slots(self) -> tuple[str, ...]:
        m = self._markers
        if m is None:
            m = self.markers if self.markers is not None else tuple(s for s, _ in self.outputs)
            self._markers = m
        return m

    # -- errors ----------------------------------------------------------------

    def error_fields(self, s: Scan) -> tuple[str | None, str | None]:
        """(error type, message) a body carries, by the rule in ext/errors.py."""
        etype = pick_error_type(s.get("_e_code"), s.get("_e_type"), s.get("_e_status"))
        return etype, s.text("_e_msg", "_e_str", "_e_top_msg")

    def in_stream_error(self, s: Scan) -> bool:
        """A 2xx body that nonetheless reports an error (SSE ``event: error`` etc.)."""
        if s.error_event:
            return True
        spec = s.spec
        return spec is not None and s.any_set(spec.errors)
