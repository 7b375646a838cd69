"""The configurations compared, and the Envoy bootstrap each one runs behind.

Every configuration is a lane of its own: one Envoy (same build, same bootstrap apart
from the ext_proc part) and, except for the baseline, one ext_proc server. The lanes
run side by side for the whole bench, idle while another lane is measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmtap.gateway import envoy_config as ec

PROVIDERS = ("openai", "anthropic", "bedrock")
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
#: Normal and assisted modes: how long Envoy waits for an answer before it fails open.
#: Generous (the default is 0.5 s): on a loaded 2-core machine a late answer must show
#: as latency, not as a silently skipped exchange.
MESSAGE_TIMEOUT = 2.0


@dataclass(frozen=True)
class Config:
    key: str
    #: The configuration's number in the issue (1-7).
    number: int
    label: str
    server: str  # none | noop | naive | llmtap (noop answers in normal mode)
    envoy_mode: str  # observability | normal | assisted
    sampling: float | None = None
    workers: int = 1

    @property
    def exports_spans(self) -> bool:
        return self.server in ("naive", "llmtap")

    @property
    def title(self) -> str:
        if self.sampling is None:
            return f"{self.number}. {self.label}"
        return f"{self.number}. {self.label} @{self.sampling:g}"


def _both(key: str, number: int, label: str, server: str, mode: str, **kw: Any) -> list[Config]:
    return [
        Config(f"{key}@{s:g}", number, label, server, mode, sampling=s, **kw) for s in (1.0, 0.01)
    ]


ALL: tuple[Config, ...] = (
    Config("baseline", 1, "Envoy, no ext_proc", "none", "observability"),
    Config("noop", 2, "no-op grpc.aio ext_proc", "noop", "observability"),
    Config("noop-answer", 2, "no-op ext_proc answering (normal mode)", "noop", "normal"),
    *_both("naive", 3, "naive Python ext_proc", "naive", "normal"),
    *_both("obs", 4, "llmtap observability", "llmtap", "observability"),
    *_both("normal", 5, "llmtap normal", "llmtap", "normal"),
    *_both("workers2", 6, "llmtap observability, 2 workers", "llmtap", "observability", workers=2),
    *_both("assisted", 7, "llmtap Envoy-assisted", "llmtap", "assisted"),
)
BY_KEY = {c.key: c for c in ALL}
QUICK = ("baseline", "noop", "naive@1", "naive@0.01", "obs@1", "normal@1", "assisted@0.01")


def select(keys: str | None, quick: bool) -> list[Config]:
    if not keys:
        return [BY_KEY[k] for k in QUICK] if quick else list(ALL)
    out = []
    for k in keys.split(","):
        k = k.strip()
        if k not in BY_KEY:
            raise SystemExit(f"unknown configuration {k!r}; known: {', '.join(BY_KEY)}")
        out.append(BY_KEY[k])
    if out[0].key != "baseline":
        out.insert(0, BY_KEY["baseline"])  # every latency is reported against it
    return out


def bootstrap(
    cfg: Config,
    *,
    ext_proc_port: int,
    upstream_port: int,
    max_streams: int = 10_000,
    ext_proc_streams_per_connection: int | None = None,
    deferred_close_timeout: float = 5.0,
    ext_proc_in_listener: bool = False,
) -> dict[str, Any]:
    """The Envoy bootstrap of a lane (listener and admin on ports Envoy picks).

    It is ``llmtap envoy-config``'s, with the ext_proc filter removed for the baseline
    and Envoy's default circuit breakers raised. ``ext_proc_in_listener`` moves the
    ext_proc filter from each provider cluster's upstream filter chain to the
    listener's (before the router): Envoy 1.40 segfaults on ~1 MB responses with
    ext_proc in the upstream chain, not with it in the listener's.
    """
    providers = {k: v for k, v in ec.default_providers().items() if k in PROVIDERS}
    opts = ec.Options(
        mode=cfg.envoy_mode,
        listen=ec.Address("127.0.0.1", 0),
        admin=ec.Address("127.0.0.1", 0),
        ext_proc=ec.Address("127.0.0.1", ext_proc_port),
        upstream=ec.Address("127.0.0.1", upstream_port),
        providers=providers,
        message_timeout=MESSAGE_TIMEOUT,
        max_streams=max_streams,
        deferred_close_timeout=deferred_close_timeout,
    )
    boot = ec.bootstrap(opts)
    limit = max(100_000, 2 * max_streams)
    for cluster in boot["static_resources"]["clusters"]:
        protocol = cluster["typed_extension_protocol_options"][HTTP_OPTIONS]
        if cluster["name"] == ec.EXT_PROC_CLUSTER:
            if ext_proc_streams_per_connection:
                # Envoy's HTTP/2 pool fills one connection before it opens the next, and
                # SO_REUSEPORT spreads connections, not streams: capping the streams per
                # connection is what makes Envoy open enough connections for the kernel
                # to spread the ext_proc streams over llmtap's workers.
                h2 = protocol["explicit_http_config"]["http2_protocol_options"]
                h2["max_concurrent_streams"] = ext_proc_streams_per_connection
                for t in cluster["circuit_breakers"]["thresholds"]:
                    t["max_connections"] = max(t["max_connections"], max_streams)
            continue
        if cfg.server == "none" or ext_proc_in_listener:
            protocol["http_filters"] = [
                f for f in protocol["http_filters"] if f["name"] != ec.EXT_PROC_FILTER
            ]
        # Envoy's default circuit breakers (1024 connections/requests per cluster) would
        # cap the memory run's open streams, not llmtap.
        cluster["circuit_breakers"] = {
            "thresholds": [
                {
                    "priority": "DEFAULT",
                    "max_connections": limit,
                    "max_pending_requests": limit,
                    "max_requests": limit,
                }
            ]
        }
    listener = boot["static_resources"]["listeners"][0]
    listener["tcp_backlog_size"] = 4096
    if ext_proc_in_listener and cfg.server != "none":
        hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
        hcm["http_filters"].insert(0, ec.ext_proc_filter(opts))
    return boot
