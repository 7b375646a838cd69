"""llmtap: an Envoy ext_proc tap that turns LLM calls into OpenTelemetry GenAI spans."""

from llmtap._version import __version__

__all__ = ["__version__"]
