"""What the gateway knows about a request before its body: :class:`RequestInfo`, config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT_HINT_HEADER", "DEFAULT_MAX_REQUEST_BODY", "ExtConfig", "RequestInfo"]

#: Request header that names the provider (or API family) explicitly.
DEFAULT_HINT_HEADER = "x-llmtap-provider"
#: Request bodies are buffered up to this many bytes for decoding (4 MiB).
DEFAULT_MAX_REQUEST_BODY = 4 * 1024 * 1024

_DEFAULT_PORTS = {"https": 443, "http": 80, "grpc": 80, "grpcs": 443}


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """The request line and headers, as Envoy reports them.

    ``headers`` must have lowercased names. ``path`` may carry the query string.
    ``hint`` is a provider or family name the gateway got from ext_proc metadata;
    it wins over the hint header, which wins over the host and the path.
    """

    method: str
    authority: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    scheme: str = "https"
    hint: str | None = None

    def split_path(self) -> tuple[str, str]:
        """``(path, query)`` with the query string (may be empty) split off."""
        path, _, query = self.path.partition("?")
        return path, query

    def host_port(self) -> tuple[str, int | None]:
        """Host (lowercase, no brackets) and port (explicit, else the scheme default)."""
        auth = self.authority.strip().lower()
        host, port = auth, None
        if auth.startswith("["):  # IPv6 literal
            end = auth.find("]")
            host = auth[1:end] if end > 0 else auth[1:]
            rest = auth[end + 1 :] if end > 0 else ""
            if rest.startswith(":") and rest[1:].isdigit():
                port = int(rest[1:])
        else:
            name, sep, p = auth.rpartition(":")
            if sep and p.isdigit():
                host, port = name, int(p)
        if port is None:
            port = _DEFAULT_PORTS.get(self.scheme.lower())
        return host, port


@dataclass(frozen=True, slots=True)
class ExtConfig:
    """Knobs of the provider extensions; ``recognise`` also accepts any object with
    these attribute names (missing ones take the defaults).
    """

    hint_header: str = DEFAULT_HINT_HEADER
    max_request_body: int = DEFAULT_MAX_REQUEST_BODY
    cost: bool = True
    #: Build ``CallRecord.content`` (message content). Off: nothing of it is read,
    #: kept or scanned. The gateway turns it on from the capture setting.
    capture_content: bool = False

    @classmethod
    def of(cls, config: Any) -> ExtConfig:
        if config is None:
            return _DEFAULT
        if isinstance(config, ExtConfig):
            return config
        return cls(
            hint_header=str(getattr(config, "hint_header", DEFAULT_HINT_HEADER)).lower(),
            max_request_body=int(getattr(config, "max_request_body", DEFAULT_MAX_REQUEST_BODY)),
            cost=bool(getattr(config, "cost", True)),
            capture_content=getattr(config, "capture_content", False) is True,
        )


_DEFAULT = ExtConfig()
