# The C-level seam between the native framers and the fused StreamScanner
# (docs/design.md, "Native framer <-> StreamScanner seam"). Each wire format is
# implemented once per twin: the compiled StreamScanner drives these framers with
# its own FrameSink, so no Python object is made per frame.
#
# Contract for on_frame():
#   * `data`/`n` is the frame (SSE event data, NDJSON line, array element, JSON body
#     piece, eventstream payload). `name`/`name_len` is the SSE event name or the
#     eventstream `:event-type` (`:exception-type` for exceptions); NULL/0 if absent.
#   * Both pointers are valid only during the call (they point into the fed chunk or
#     into the framer's carry-over buffer); copy what must outlive it.
#   * Returning -1 with a Python exception set aborts feed_into()/close_into(), which
#     then return -1 too; the framer does not record that as a stream error.
#   * An eventstream prelude CRC mismatch delivers one frame with data NULL, n 0 and
#     FRAME_BAD_CRC, after `Framer.error` is set: nothing follows it.

cdef enum:
    FRAME_ERROR_EVENT = 1    # SSE `event: error`; eventstream :message-type exception/error
    FRAME_BAD_CRC = 2        # eventstream message whose CRC did not match (payload untrusted)
    FRAME_BAD_MESSAGE = 4    # eventstream message whose headers are malformed


# Growable byte buffer for frames that span chunks; never grows past max_frame.
cdef struct Carry:
    unsigned char* p
    Py_ssize_t n
    Py_ssize_t cap


cdef class FrameSink:
    cdef int on_frame(self, const unsigned char* data, Py_ssize_t n,
                      const unsigned char* name, Py_ssize_t name_len, int flags) except -1


cdef class Framer:
    cdef readonly object error          # first error (str) or None; once set, feeds are no-ops
    cdef readonly bint truncated        # close() found the stream ended mid-frame
    cdef readonly Py_ssize_t max_frame
    cdef Py_ssize_t offset              # stream offset of the next byte fed
    cdef bint closed
    cdef Carry carry

    cdef int feed_into(self, const unsigned char* buf, Py_ssize_t n, FrameSink sink) except -1
    cdef int close_into(self, FrameSink sink) except -1


# The concrete framers (Python API in core/framing.py). Their state is declared here
# so the StreamScanner may cimport them; only the seam above is a contract.

cdef class SSEFramer(Framer):
    cdef int bom                        # BOM bytes matched at stream start; -1 once past it
    cdef bint cr                        # last chunk ended with CR: a leading LF belongs to it
    cdef Py_ssize_t line_start          # stream offset of the line in `carry`
    cdef const unsigned char* dptr      # single data line still inside the current chunk
    cdef Py_ssize_t dlen
    cdef bint dcarried                  # the event's data lives in `data` instead
    cdef Py_ssize_t ndata               # data lines seen in the current event
    cdef Carry data
    cdef Carry event
    cdef Carry last_id
    cdef bint has_id
    cdef bint has_retry
    cdef long long retry

    cdef int on_line(self, const unsigned char* s, Py_ssize_t n, bint in_chunk,
                     Py_ssize_t start, FrameSink sink) except -1
    cdef int dispatch(self, FrameSink sink) except -1


cdef class NDJSONFramer(Framer):
    cdef Py_ssize_t line_start

    cdef int emit_line(self, const unsigned char* s, Py_ssize_t n, FrameSink sink) except -1


# JSONArrayFramer.state / JSONBodyFramer.state (same numbering as the pure module).
cdef enum:
    A_START, A_FIRST, A_NEXT, A_ELEM, A_DONE
cdef enum:
    B_START, B_VALUE, B_SCALAR, B_DONE


cdef class JSONArrayFramer(Framer):
    cdef int state
    cdef Py_ssize_t depth
    cdef bint in_str
    cdef bint esc
    cdef Py_ssize_t start               # stream offset of the current element


cdef class JSONBodyFramer(Framer):
    cdef int state
    cdef Py_ssize_t depth
    cdef bint in_str
    cdef bint esc


cdef class EventStreamFramer(Framer):
    cdef Py_ssize_t start               # stream offset of the message in `carry`
    cdef Py_ssize_t need                # its total length, once the prelude checked out
    cdef object frame_error             # message of the error frame being delivered
    cdef const unsigned char* hdr       # header block of the message being delivered
    cdef Py_ssize_t hdr_len

    cdef Py_ssize_t check_prelude(self, const unsigned char* p, Py_ssize_t start,
                                  FrameSink sink) except -2
    cdef int message(self, const unsigned char* p, Py_ssize_t total, Py_ssize_t start,
                     FrameSink sink) except -1
