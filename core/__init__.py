"""llmtap.core: framers, the JSON field scanner, the fused StreamScanner, decompression.

Each name is the compiled twin when it is built (the pure-Python one otherwise,
or when ``LLMTAP_NO_EXTENSIONS`` is set); see docs/design.md.
"""

from .decompress import Decompressor
from .framing import (
    EventStreamFramer,
    EventStreamMessage,
    JSONArrayFramer,
    JSONBodyFramer,
    NDJSONFramer,
    SSEEvent,
    SSEFramer,
)
from .paths import PathSet
from .scanner import JsonScanner
from .stream import StreamScanner

__all__ = [
    "Decompressor",
    "EventStreamFramer",
    "EventStreamMessage",
    "JSONArrayFramer",
    "JSONBodyFramer",
    "JsonScanner",
    "NDJSONFramer",
    "PathSet",
    "SSEEvent",
    "SSEFramer",
    "StreamScanner",
]
