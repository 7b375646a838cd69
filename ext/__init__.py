"""llmtap.ext: provider extensions. Every API family becomes one GenAI call record.

>>> from llmtap.ext import RequestInfo, recognise
>>> ex = recognise(RequestInfo("POST", "api.openai.com", "/v1/chat/completions"))
>>> (ex.family, ex.provider, ex.operation)
('openai.chat_completions', 'openai', 'chat')

Where an API family is handled: one module per family, named after it
(``openai_chat``, ``anthropic_messages``, ``gemini``, ``bedrock_converse``, ...);
recognition order in ``recognise``; the ``error.type`` rule in ``errors``; cost in
``cost``. See ext/README.md for the contract with the gateway.
"""

from .exchange import Exchange
from .inspect import inspect_exchange
from .recognise import FAMILIES, recognise
from .record import ATTR_COST_USD, CallRecord, EnvoyTokenUsage
from .request import ExtConfig, RequestInfo

__all__ = [
    "ATTR_COST_USD",
    "FAMILIES",
    "CallRecord",
    "EnvoyTokenUsage",
    "Exchange",
    "ExtConfig",
    "RequestInfo",
    "inspect_exchange",
    "recognise",
]
