"""``llmtap demo``: Envoy, llmtap, a synthetic provider and a local OTLP receiver, wired.

Modules: ``httpserver`` (paced HTTP/1.1 upstream), ``upstream`` (provider wire formats),
``receiver`` (OTLP gRPC receiver), ``waterfall`` (terminal printer), ``runner`` (the
processes and the calls).
"""
