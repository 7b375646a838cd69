"""Azure OpenAI: URL shapes. The bodies are OpenAI's, so the OpenAI families fold them.

* ``/openai/deployments/{deployment}/{chat/completions|completions|embeddings}?api-version=...``
  The deployment name stands in for the model when the body names none.
* ``/openai/v1/...`` (the v1 API) and ``/openai/responses?api-version=...``. Groq serves
  the same ``/openai/v1/`` prefix, so without an Azure host this shape only counts as
  Azure when it carries ``api-version``.

Hosts (``*.openai.azure.com``, ``*.cognitiveservices.azure.com``,
``*.services.ai.azure.com``) are in ext/recognise.py.
"""

from __future__ import annotations

from urllib.parse import unquote

from .family import Route

__all__ = ["PROVIDER", "azure_route"]

PROVIDER = "azure.ai.openai"


def azure_route(path: str, query: str) -> Route | None:
    """A Route with the Azure provider (and deployment) if the path is Azure-shaped."""
    if path.startswith("/openai/deployments/"):
        dep = path[len("/openai/deployments/") :].partition("/")[0]
        return Route(provider=PROVIDER, model=unquote(dep) or None)
    if path.startswith("/openai/") and "api-version=" in query:
        return Route(provider=PROVIDER)
    return None
