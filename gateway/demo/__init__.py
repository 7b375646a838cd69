"""``llmtap demo``: Envoy, llmtap, a synthetic provider and a local OTLP receiver, wired.

Modules: ``httpserver`` (paced HTTP/1.1 upstream), ``upstream`` (provider wire formats),
``receiver`` (OTLP gRPC receiver), ``waterfall`` (terminal printer), ``runner`` (the
processes and the calls).
"""

import os

# The demo starts child processes while its receiver's gRPC threads run; gRPC then logs
# an INFO line per fork about skipping its fork handlers, which is noise on a terminal.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
