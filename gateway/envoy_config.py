"""``llmtap envoy-config``: an Envoy bootstrap that sends LLM provider traffic past llmtap.

Routing. One listener, two ways in:

* **By path prefix** (any ``Host``): ``/<provider>/...`` goes to that provider with the
  prefix stripped and ``Host`` rewritten, so an SDK only needs its base URL pointed at
  Envoy, e.g. ``OpenAI(base_url="http://127.0.0.1:10000/openai/v1")`` or
  ``Anthropic(base_url="http://127.0.0.1:10000/anthropic")``.
* **By Host** (``Host: api.openai.com`` etc.): the request is forwarded unchanged. This is
  the way for clients that sign the host and path (AWS SigV4 for Bedrock): send plain
  HTTP to the provider's name through Envoy as an HTTP proxy, e.g. boto3 with
  ``endpoint_url="http://bedrock-runtime.us-east-1.amazonaws.com"`` and
  ``Config(proxies={"http": "http://127.0.0.1:10000"})``. Envoy adds TLS upstream.

Placement. The ext_proc filter (and, in ``assisted`` mode, the AI protocol manager) runs
in each provider cluster's *upstream* filter chain rather than in the listener's. So
llmtap sees the request exactly as the provider receives it (real host, path after the
prefix is stripped) however the client reached Envoy, and the AI protocol manager's
usage record is published before ext_proc is told about the response trailers (upstream
filters encode in reverse order: codec, then the protocol manager, then ext_proc).

Modes (``--mode``):

* ``observability``: ext_proc ``observability_mode`` ("send and go"): headers and
  STREAMED bodies are copied to llmtap and never wait for it; ``deferred_close_timeout``
  keeps the gRPC stream open for llmtap to finish after the HTTP stream ends.
* ``normal``: synchronous ext_proc, request headers SEND, request body STREAMED (or
  NONE), response headers SEND, response body STREAMED, response trailers SEND,
  ``failure_mode_allow`` so traffic flows when llmtap is down, ``message_timeout``
  bounds the added latency, ``allow_mode_override`` lets llmtap stop the body copy for
  calls it does not need to read.
* ``assisted``: Envoy's ``ai_protocol_manager`` (1.40, work in progress) extracts token
  usage itself and synthesizes empty response trailers at a clean end of stream, so
  llmtap gets the typed ``envoy.ai.token_usage`` record with the trailers message and
  the response body never crosses gRPC (``response_body_mode: NONE``). Upstream
  ``accept-encoding`` is forced to ``identity`` because the filter cannot read
  compressed bodies.

``--upstream HOST:PORT`` sends every provider to one plaintext address (tests, the
demo); the ``Host`` rewrite stays, so llmtap still sees the real provider names.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml

MODES = ("observability", "normal", "assisted")

EXT_PROC_CLUSTER = "llmtap_ext_proc"
EXT_PROC_FILTER = "envoy.filters.http.ext_proc"
AI_PROTOCOL_MANAGER = "envoy.filters.http.ai_protocol_manager"
LLMTAP_NAMESPACE = "llmtap"
TOKEN_USAGE_NAMESPACE = "envoy.ai.token_usage"

_TYPE = "type.googleapis.com/"
_HCM = _TYPE + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_EXT_PROC = _TYPE + "envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor"
_AIPM = _TYPE + "envoy.extensions.filters.http.ai_protocol_manager.v3.AiProtocolManager"
_ROUTER = _TYPE + "envoy.extensions.filters.http.router.v3.Router"
_UPSTREAM_CODEC = _TYPE + "envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec"
_HTTP_OPTIONS = _TYPE + "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_HTTP_OPTIONS_KEY = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_TLS = _TYPE + "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"

_CA_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu, Alpine
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/cert.pem",  # macOS, OpenBSD
)


@dataclass(frozen=True)
class Provider:
    """One upstream API: reached at ``/<name>/`` on the listener or by its ``host``."""

    name: str
    host: str
    port: int = 443
    tls: bool = True

    @property
    def authority(self) -> str:
        default = 443 if self.tls else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


def default_providers(aws_region: str = "us-east-1") -> dict[str, Provider]:
    """The providers llmtap recognises, at their public endpoints."""
    hosts = {
        "openai": "api.openai.com",
        "anthropic": "api.anthropic.com",
        "gemini": "generativelanguage.googleapis.com",
        "vertex": "aiplatform.googleapis.com",
        "bedrock": f"bedrock-runtime.{aws_region}.amazonaws.com",
        "cohere": "api.cohere.com",
        "mistral": "api.mistral.ai",
        "groq": "api.groq.com",
        "deepseek": "api.deepseek.com",
        "together": "api.together.xyz",
        "openrouter": "openrouter.ai",
        "xai": "api.x.ai",
    }
    found = {name: Provider(name, host) for name, host in hosts.items()}
    # Ollama runs next to the caller, in plaintext.
    found["ollama"] = Provider("ollama", "127.0.0.1", 11434, tls=False)
    return found


def parse_provider(spec: str) -> Provider:
    """``NAME=https://host[:port]`` or ``NAME=http://host:port`` (``NAME=host`` means https)."""
    name, sep, url = spec.partition("=")
    name = name.strip().lower()
    if not sep or not name or not url:
        raise ValueError(f"provider must be NAME=URL, got {spec!r}")
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"provider name must be letters, digits, - or _, got {name!r}")
    if "://" not in url:
        url = "https://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"provider URL must be http(s)://host[:port], got {url!r}")
    tls = parts.scheme == "https"
    try:
        port = parts.port or (443 if tls else 80)
    except ValueError:
        raise ValueError(f"bad port in provider URL {url!r}") from None
    return Provider(name, parts.hostname, port, tls)


@dataclass(frozen=True)
class Address:
    """A TCP ``host:port`` or a unix socket path."""

    host: str = ""
    port: int = 0
    path: str = ""

    @classmethod
    def parse(cls, text: str, *, what: str = "address", unix: bool = False) -> Address:
        if text.startswith("unix:"):
            if not unix:
                raise ValueError(f"{what} cannot be a unix socket: {text!r}")
            path = text[len("unix:") :].removeprefix("//")
            if not path:
                raise ValueError(f"{what}: empty unix socket path")
            return cls(path=path)
        host, sep, port = text.rpartition(":")
        host = host.strip("[]")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError(f"{what} must be HOST:PORT, got {text!r}")
        return cls(host=host, port=int(port))

    def __str__(self) -> str:
        if self.path:
            return f"unix:{self.path}"
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def envoy(self) -> dict[str, Any]:
        if self.path:
            return {"pipe": {"path": self.path}}
        return {"socket_address": {"address": self.host, "port_value": self.port}}

    @property
    def is_ip(self) -> bool:
        if self.path:
            return True
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True


@dataclass(frozen=True)
class Options:
    """Everything the bootstrap depends on; the CLI flags map one to one."""

    mode: str = "observability"
    listen: Address = field(default_factory=lambda: Address("127.0.0.1", 10000))
    admin: Address = field(default_factory=lambda: Address("127.0.0.1", 9901))
    ext_proc: Address = field(default_factory=lambda: Address("127.0.0.1", 50051))
    upstream: Address | None = None
    providers: Mapping[str, Provider] = field(default_factory=default_providers)
    request_body: str = "streamed"  # normal/assisted: "streamed" or "none"
    message_timeout: float = 0.5
    deferred_close_timeout: float = 5.0
    route_timeout: float = 600.0
    max_streams: int = 10000
    ca_file: str | None = None
    access_log: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.request_body not in ("streamed", "none"):
            raise ValueError(f"request_body must be streamed or none, got {self.request_body!r}")
        if not self.providers:
            raise ValueError("at least one provider is needed")
        if self.message_timeout <= 0 or self.deferred_close_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if self.max_streams < 1:
            raise ValueError(f"max_streams must be >= 1, got {self.max_streams}")


def _duration(seconds: float) -> str:
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def _find_ca_file() -> str:
    for path in _CA_BUNDLES:
        if os.path.exists(path):
            return path
    try:
        import certifi
    except ImportError:
        raise ValueError(
            "no CA bundle found for upstream TLS; pass --ca-file (or --upstream for plaintext)"
        ) from None
    return str(certifi.where())


def _endpoints(name: str, address: Address) -> dict[str, Any]:
    return {
        "cluster_name": name,
        "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address.envoy()}}]}],
    }


def _processing_mode(opts: Options) -> dict[str, str]:
    if opts.mode == "assisted":
        response_body, response_trailers = "NONE", "SEND"
    else:
        response_body, response_trailers = "STREAMED", "SEND"
    request_body = "STREAMED" if opts.mode == "observability" else opts.request_body.upper()
    return {
        "request_header_mode": "SEND",
        "request_body_mode": request_body,
        "request_trailer_mode": "SKIP",
        "response_header_mode": "SEND",
        "response_body_mode": response_body,
        "response_trailer_mode": response_trailers,
    }


def ext_proc_filter(opts: Options) -> dict[str, Any]:
    """The ext_proc HTTP filter for ``opts.mode``."""
    cfg: dict[str, Any] = {
        "@type": _EXT_PROC,
        "grpc_service": {"envoy_grpc": {"cluster_name": EXT_PROC_CLUSTER}, "timeout": "5s"},
        "stat_prefix": "llmtap",
        "processing_mode": _processing_mode(opts),
        # Never let an observer break the traffic it observes.
        "failure_mode_allow": True,
    }
    if opts.mode == "observability":
        cfg["observability_mode"] = True
        cfg["deferred_close_timeout"] = _duration(opts.deferred_close_timeout)
    else:
        cfg["message_timeout"] = _duration(opts.message_timeout)
        cfg["allow_mode_override"] = True
    if opts.mode != "observability":
        # Envoy drops dynamic metadata from namespaces it was not told to accept; llmtap
        # publishes the token counts under its own for access logs and rate limits.
        options: dict[str, Any] = {"receiving_namespaces": {"untyped": [LLMTAP_NAMESPACE]}}
        if opts.mode == "assisted":
            options["forwarding_namespaces"] = {"typed": [TOKEN_USAGE_NAMESPACE]}
        cfg["metadata_options"] = options
    return {"name": EXT_PROC_FILTER, "typed_config": cfg}


def _ai_protocol_manager() -> dict[str, Any]:
    return {
        "name": AI_PROTOCOL_MANAGER,
        "typed_config": {
            "@type": _AIPM,
            "response_handling": {
                "token_usage": {
                    # Routes carry no per-route declaration: the API is detected from the
                    # response shape, and llmtap still reads the request side itself.
                    "include_unconfigured_routes": True,
                    "metadata_namespace": TOKEN_USAGE_NAMESPACE,
                    "usage_signal": "SYNTHESIZE_TRAILERS",
                }
            },
        },
    }


def _provider_cluster(p: Provider, opts: Options, ca_file: str | None) -> dict[str, Any]:
    filters = [ext_proc_filter(opts)]
    if opts.mode == "assisted":
        filters.append(_ai_protocol_manager())
    filters.append(
        {"name": "envoy.filters.http.upstream_codec", "typed_config": {"@type": _UPSTREAM_CODEC}}
    )
    if opts.upstream is not None:
        address, tls = opts.upstream, False
    else:
        address, tls = Address(p.host, p.port), p.tls
    protocol: dict[str, Any] = {"@type": _HTTP_OPTIONS, "http_filters": filters}
    if tls:
        # ALPN picks h2 where the provider offers it.
        protocol["auto_config"] = {"http_protocol_options": {}, "http2_protocol_options": {}}
    else:
        protocol["explicit_http_config"] = {"http_protocol_options": {}}
    cluster: dict[str, Any] = {
        "name": f"provider_{p.name}",
        "type": "STATIC" if address.is_ip else "LOGICAL_DNS",
        "connect_timeout": "5s",
        "load_assignment": _endpoints(f"provider_{p.name}", address),
        "typed_extension_protocol_options": {_HTTP_OPTIONS_KEY: protocol},
    }
    if not address.is_ip:
        cluster["dns_lookup_family"] = "V4_PREFERRED"
    if tls:
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": _TLS,
                "sni": p.host,
                "common_tls_context": {
                    "alpn_protocols": ["h2", "http/1.1"],
                    "validation_context": {
                        "trusted_ca": {"filename": ca_file},
                        "match_typed_subject_alt_names": [
                            {"san_type": "DNS", "matcher": {"exact": p.host}}
                        ],
                    },
                },
            },
        }
    return cluster


def _ext_proc_cluster(opts: Options) -> dict[str, Any]:
    n = opts.max_streams
    return {
        "name": EXT_PROC_CLUSTER,
        "type": "STATIC" if opts.ext_proc.is_ip else "STRICT_DNS",
        "connect_timeout": "1s",
        "load_assignment": _endpoints(EXT_PROC_CLUSTER, opts.ext_proc),
        "typed_extension_protocol_options": {
            _HTTP_OPTIONS_KEY: {
                "@type": _HTTP_OPTIONS,
                "explicit_http_config": {
                    "http2_protocol_options": {
                        "max_concurrent_streams": n,
                        # Bodies are copied to llmtap: windows large enough that a burst of
                        # streams does not stall on flow control.
                        "initial_stream_window_size": 1 << 20,
                        "initial_connection_window_size": 16 << 20,
                        "connection_keepalive": {"interval": "30s", "timeout": "5s"},
                    }
                },
            }
        },
        # One HTTP/2 connection carries many ext_proc streams; every in-flight LLM call
        # holds one stream for its whole life, so the defaults (1024) are far too small.
        "circuit_breakers": {
            "thresholds": [
                {
                    "priority": "DEFAULT",
                    "max_connections": max(64, n // 100),
                    "max_pending_requests": n,
                    "max_requests": n,
                    "max_retries": 3,
                    "track_remaining": True,
                }
            ]
        },
    }


def _routes(opts: Options) -> list[dict[str, Any]]:
    route_extra: dict[str, Any] = {}
    if opts.mode == "assisted":
        route_extra["request_headers_to_add"] = [
            {
                "header": {"key": "accept-encoding", "value": "identity"},
                "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
            }
        ]
    timeout = _duration(opts.route_timeout)
    by_host = []
    by_prefix = []
    for p in opts.providers.values():
        cluster = f"provider_{p.name}"
        by_host.append(
            {
                "name": f"host_{p.name}",
                "domains": sorted({p.host, p.authority, f"{p.host}:{p.port}"}),
                "routes": [
                    {
                        "match": {"prefix": "/"},
                        "route": {"cluster": cluster, "timeout": timeout},
                        **route_extra,
                    }
                ],
            }
        )
        by_prefix.append(
            {
                "match": {"prefix": f"/{p.name}/"},
                "route": {
                    "cluster": cluster,
                    "timeout": timeout,
                    "prefix_rewrite": "/",
                    "host_rewrite_literal": p.authority,
                },
                **route_extra,
            }
        )
    return [*by_host, {"name": "by_prefix", "domains": ["*"], "routes": by_prefix}]


def bootstrap(opts: Options) -> dict[str, Any]:
    """The whole Envoy bootstrap as plain data (``render`` turns it into YAML)."""
    tls_needed = opts.upstream is None and any(p.tls for p in opts.providers.values())
    ca_file = (opts.ca_file or _find_ca_file()) if tls_needed else None
    hcm: dict[str, Any] = {
        "@type": _HCM,
        "stat_prefix": "llmtap_ingress",
        "codec_type": "AUTO",
        # Provider paths carry ':' (Gemini ':streamGenerateContent') and may be signed
        # (SigV4): forward them untouched.
        "normalize_path": False,
        "merge_slashes": False,
        "http_protocol_options": {"allow_absolute_url": True},
        "stream_idle_timeout": "300s",
        "route_config": {"name": "providers", "virtual_hosts": _routes(opts)},
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": _ROUTER, "suppress_envoy_headers": True},
            }
        ],
    }
    if opts.access_log:
        hcm["access_log"] = [
            {
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": _TYPE + "envoy.extensions.access_loggers.file.v3.FileAccessLog",
                    "path": "/dev/stdout" if opts.access_log == "-" else opts.access_log,
                },
            }
        ]
    return {
        "admin": {"address": opts.admin.envoy()},
        "static_resources": {
            "listeners": [
                {
                    "name": "llm_ingress",
                    "address": opts.listen.envoy(),
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": hcm,
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [
                *(_provider_cluster(p, opts, ca_file) for p in opts.providers.values()),
                _ext_proc_cluster(opts),
            ],
        },
    }


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(config: Mapping[str, Any]) -> str:
    """YAML for ``envoy -c``."""
    return yaml.dump(dict(config), Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def generate(opts: Options) -> str:
    return render(bootstrap(opts))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``llmtap envoy-config``."""
    parser.add_argument("--mode", choices=MODES, default="observability")
    parser.add_argument("--listen", default="127.0.0.1:10000", help="HOST:PORT for clients")
    parser.add_argument("--admin", default="127.0.0.1:9901", help="HOST:PORT of Envoy's admin")
    parser.add_argument(
        "--ext-proc", default="127.0.0.1:50051", help="llmtap serve at HOST:PORT or unix:PATH"
    )
    parser.add_argument(
        "--upstream",
        metavar="HOST:PORT",
        help="send every provider to this plaintext address (tests, demo)",
    )
    parser.add_argument(
        "--provider",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="add or replace a provider, e.g. azure=https://myres.openai.azure.com",
    )
    parser.add_argument("--aws-region", default="us-east-1", help="Bedrock region")
    parser.add_argument("--request-body", choices=["streamed", "none"], default="streamed")
    parser.add_argument("--message-timeout", type=float, default=0.5, metavar="SECONDS")
    parser.add_argument("--deferred-close-timeout", type=float, default=5.0, metavar="SECONDS")
    parser.add_argument("--route-timeout", type=float, default=600.0, metavar="SECONDS")
    parser.add_argument("--max-streams", type=int, default=10000, help="ext_proc streams")
    parser.add_argument("--ca-file", help="CA bundle for provider TLS (default: the system's)")
    parser.add_argument("--access-log", metavar="PATH", help="Envoy access log ('-' = stdout)")
    parser.add_argument("-o", "--output", help="write here instead of stdout")


def options_from_args(args: argparse.Namespace) -> Options:
    """Turn parsed flags into ``Options``; bad values raise ``ValueError``."""
    providers = default_providers(args.aws_region)
    for spec in args.provider:
        p = parse_provider(spec)
        providers[p.name] = p
    return Options(
        mode=args.mode,
        listen=Address.parse(args.listen, what="--listen"),
        admin=Address.parse(args.admin, what="--admin"),
        ext_proc=Address.parse(args.ext_proc, what="--ext-proc", unix=True),
        upstream=Address.parse(args.upstream, what="--upstream") if args.upstream else None,
        providers=providers,
        request_body=args.request_body,
        message_timeout=args.message_timeout,
        deferred_close_timeout=args.deferred_close_timeout,
        route_timeout=args.route_timeout,
        max_streams=args.max_streams,
        ca_file=args.ca_file,
        access_log=args.access_log,
    )


def main(args: argparse.Namespace) -> int:
    """Entry point of ``llmtap envoy-config``."""
    try:
        text = generate(options_from_args(args))
    except ValueError as exc:
        print(f"llmtap envoy-config: {exc}", file=sys.stderr)
        return 2
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0
