"""llmtap settings: typed msgspec Structs from a YAML/TOML file, env vars and CLI flags.

Precedence: explicit CLI flag > env var > file > default. Each source is validated
against the same Structs, so every error names the setting:

* a file with an unknown key or a bad value is an error (``ConfigError``) naming the
  key path, e.g. ``llmtap.yaml: unknown key `server.lisen```;
* a bad CLI value is an error naming the flag;
* a bad env value logs a warning naming the variable and is ignored (OTel SDK rule).

Env vars are read through one table: the standard ``OTEL_*`` names where OpenTelemetry
defines one (``OTEL_TRACES_SAMPLER``, ``OTEL_EXPORTER_OTLP_*``, ``OTEL_BSP_*`` …), and
``LLMTAP_<SECTION>_<FIELD>`` for every setting (e.g. ``LLMTAP_SERVER_LISTEN``), which
wins over the OTel name. Signal-specific OTel names (``…_TRACES_…``) win over generic.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote

import msgspec
from msgspec import Meta, Struct

from .content import parse_capture_mode
from .sampling import SAMPLER_NAMES

__all__ = [
    "ConfigError",
    "ExportSettings",
    "LoggingSettings",
    "MetricsSettings",
    "ResourceSettings",
    "ServerSettings",
    "Settings",
    "TracingSettings",
    "add_arguments",
    "env_names",
    "load_settings",
    "settings_from_args",
]

log = logging.getLogger("llmtap.config")

MiB = 1024 * 1024
Port = Annotated[int, Meta(ge=0, le=65535)]
Positive = Annotated[int, Meta(ge=1)]
NonNeg = Annotated[float, Meta(ge=0)]
SamplerName = Literal[
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
    "ratelimiting",
    "parentbased_ratelimiting",
]
# One list of names: the sampler module builds them, this type checks them.
assert typing.get_args(SamplerName) == SAMPLER_NAMES
CaptureModeName = Literal["NO_CONTENT", "SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT"]
Propagator = Literal["tracecontext", "baggage", "b3", "b3multi", "none"]


class ConfigError(ValueError):
    """A setting from a file or a flag is invalid; the message names it."""


class _Section(Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class ServerSettings(_Section):
    """The ext_proc transport (field names match ``modes.TransportOptions``)."""

    #: ``HOST:PORT`` or ``unix:/path``.
    listen: str = "127.0.0.1:50051"
    #: Server processes sharing the port (SO_REUSEPORT).
    workers: Positive = 1
    #: ``normal``: llmtap may mutate headers (injects traceparent); ``observability``:
    #: Envoy runs ext_proc in observability mode, llmtap only listens.
    mode: Literal["normal", "observability"] = "normal"
    #: Seconds before an exchange is given up (its span ends with ``timeout``).
    exchange_timeout: NonNeg = 900.0
    #: Seconds open exchanges get to finish on SIGTERM.
    shutdown_grace: NonNeg = 10.0
    #: Largest ext_proc message accepted (a body chunk plus headers).
    max_message_bytes: Positive = 64 * MiB
    #: Largest request body llmtap reads for request fields (model, parameters).
    max_request_body: Positive = 8 * MiB
    #: Envoy's ai_protocol_manager publishes TokenUsage on synthesized trailers.
    envoy_token_usage: bool = False
    #: With ``envoy_token_usage``: also stream the bodies of sampled exchanges Envoy
    #: extracts usage from (TTFT, finish reasons, ids). Off: Envoy 1.40 stalls those.
    stream_sampled_bodies: bool = False
    #: Typed metadata namespace under which Envoy forwards its `TokenUsage`.
    token_usage_namespace: str = "envoy.ai.token_usage"
    #: Dynamic metadata namespace llmtap writes (token counts); "" disables it.
    metadata_namespace: str = "llmtap"
    #: Untyped metadata namespace read for a provider hint (key ``provider``).
    hint_namespace: str = "llmtap"
    #: Request header naming the provider; stripped before the request goes upstream.
    hint_header: str = "x-llmtap-provider"
    #: Serve ``grpc.health.v1.Health`` on the listen address.
    health: bool = True


class ResourceSettings(_Section):
    #: ``service.name`` (``OTEL_SERVICE_NAME``).
    service_name: str = "llmtap"
    #: Extra resource attributes (``OTEL_RESOURCE_ATTRIBUTES``: ``k=v,k2=v2``).
    attributes: dict[str, str] = msgspec.field(default_factory=dict)


class TracingSettings(_Section):
    #: Emit spans at all (`OTEL_SDK_DISABLED=true` turns them off; metrics stay).
    enabled: bool = True
    #: ``OTEL_TRACES_SAMPLER`` names plus llmtap's ``[parentbased_]ratelimiting``.
    sampler: SamplerName = "parentbased_always_on"
    #: Ratio for ``*traceidratio`` (0..1), traces per second for ``*ratelimiting``.
    sampler_arg: float | str | None = None
    #: Export exchanges that end in error even when the head sampler said no.
    keep_errors: bool = False
    #: Export exchanges slower than this (milliseconds) even when not sampled.
    keep_slow_ms: NonNeg | None = None
    #: The caller's context becomes the span's ``parent`` or only a ``link``.
    parent: Literal["parent", "link"] = "parent"
    #: Where the caller's context is read: ``auto`` prefers the ext_proc call's gRPC
    #: metadata (Envoy's own span, when Envoy tracing is on), else the HTTP headers.
    context_source: Literal["auto", "headers", "grpc"] = "auto"
    #: Formats injected into the upstream request (normal mode); all are extracted.
    propagators: list[Propagator] = msgspec.field(
        default_factory=lambda: ["tracecontext", "baggage"]
    )
    #: ``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental``.
    semconv_latest: bool = False
    #: Message content on spans/events: `NO_CONTENT`, `SPAN_ONLY`, `EVENT_ONLY`,
    #: `SPAN_AND_EVENT` (`true` = `SPAN_AND_EVENT`, `false` = `NO_CONTENT`).
    capture_content: CaptureModeName = "NO_CONTENT"
    #: Byte cap per content attribute (JSON kept valid, see ``content.truncate_json``).
    content_max_bytes: Positive = 16 * 1024
    #: Longest string attribute value; longer values are cut.
    attribute_value_length_limit: Positive | None = None
    #: Most attributes per span; extra ones are dropped.
    attribute_count_limit: Positive = 128

    def __post_init__(self) -> None:
        arg = self.sampler_arg
        if arg is None or arg == "":
            return
        try:
            v = float(arg)
        except ValueError:
            raise ValueError(f"sampler_arg must be a number, got {arg!r}") from None
        if self.sampler.endswith("traceidratio") and not 0.0 <= v <= 1.0:
            raise ValueError(f"sampler_arg must be a ratio in [0, 1] for {self.sampler}")
        if self.sampler.endswith("ratelimiting") and not v >= 0.0:
            raise ValueError(f"sampler_arg must be >= 0 traces/s for {self.sampler}")


class ExportSettings(_Section):
    #: ``otlp`` (gRPC), ``none``, or ``memory`` (kept in process, for tests).
    traces_exporter: Literal["otlp", "none", "memory"] = "otlp"
    #: Only OTLP/gRPC is implemented.
    protocol: Literal["grpc"] = "grpc"
    #: ``OTEL_EXPORTER_OTLP_ENDPOINT``; traces go to ``http://localhost:4317`` if unset.
    endpoint: str | None = None
    #: Traces-only endpoint; wins over `endpoint`.
    traces_endpoint: str | None = None
    #: Headers sent with every export (`k=v,k2=v2`), e.g. collector auth.
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    #: Per-attempt deadline of one export call.
    timeout_ms: Positive = 10_000
    #: `gzip` compresses export requests.
    compression: Literal["none", "gzip"] = "none"
    #: Plaintext when the endpoint has no scheme (``http://`` implies it, ``https://``
    #: forbids it); unset means TLS, as the OTLP exporter spec says.
    insecure: bool | None = None
    #: CA bundle (PEM) to verify the collector's TLS certificate.
    certificate: str | None = None
    #: Client private key (PEM) for mutual TLS.
    client_key: str | None = None
    #: Client certificate (PEM) for mutual TLS.
    client_certificate: str | None = None
    #: ``OTEL_BSP_*``: batching.
    schedule_delay_ms: Annotated[int, Meta(ge=0)] = 5000
    #: Spans waiting for export; beyond it new spans are dropped and counted.
    max_queue_size: Positive = 2048
    #: Most spans per export request.
    max_export_batch_size: Positive = 512
    #: Total time one batch may take, retries included, before it is dropped.
    export_timeout_ms: Positive = 30_000
    #: Byte bound of the queue (encoded spans), on top of ``max_queue_size``.
    max_queue_bytes: Positive = 64 * MiB

    def __post_init__(self) -> None:
        if self.max_export_batch_size > self.max_queue_size:
            raise ValueError("max_export_batch_size must be <= max_queue_size")

    def __repr__(self) -> str:
        # Exporter headers carry vendor API keys: a logged Settings must not leak them.
        fields = ", ".join(
            f"{k}={{{', '.join(f'{h!r}: …' for h in self.headers)}}}"
            if k == "headers"
            else f"{k}={getattr(self, k)!r}"
            for k in self.__struct_fields__
        )
        return f"ExportSettings({fields})"


class MetricsSettings(_Section):
    #: Serve Prometheus metrics (`OTEL_METRICS_EXPORTER` lists `prometheus`).
    prometheus: bool = True
    #: Address the Prometheus endpoint binds.
    prometheus_host: str = "0.0.0.0"
    #: With several workers, worker ``i`` serves on ``prometheus_port + i``.
    prometheus_port: Port = 9464
    #: Push OTLP metrics when an endpoint is configured (``metrics.otlp_endpoint`` or
    #: ``export.endpoint``).
    otlp: bool = True
    #: OTLP/gRPC endpoint for metrics; defaults to the traces endpoint.
    otlp_endpoint: str | None = None
    #: How often metrics are pushed over OTLP.
    export_interval_ms: Positive = 60_000
    #: Distinct GenAI label sets kept before models collapse to ``_other``.
    max_series: Positive = 2000


class LoggingSettings(_Section):
    #: Least severe log level written.
    level: Literal["debug", "info", "warning", "error"] = "info"
    #: `json` (one object per line) or `text`.
    format: Literal["json", "text"] = "json"


class Settings(Struct, forbid_unknown_fields=True, kw_only=True):
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    resource: ResourceSettings = msgspec.field(default_factory=ResourceSettings)
    tracing: TracingSettings = msgspec.field(default_factory=TracingSettings)
    export: ExportSettings = msgspec.field(default_factory=ExportSettings)
    metrics: MetricsSettings = msgspec.field(default_factory=MetricsSettings)
    logging: LoggingSettings = msgspec.field(default_factory=LoggingSettings)


_SECTIONS: dict[str, type[Struct]] = {
    name: typing.get_type_hints(Settings)[name] for name in Settings.__struct_fields__
}


# -- value parsing (shared by env and flags) ----------------------------------------------


def _kv_list(text: str) -> dict[str, str]:
    """``k=v,k2=v2`` with percent-decoding (OTEL_RESOURCE_ATTRIBUTES/_HEADERS format)."""
    out: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"expected key=value, got {item.strip()!r}")
        out[unquote(key.strip())] = unquote(value.strip())
    return out


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _parse_as(text: str, tp: Any) -> Any:
    """Turn a string into a value of type ``tp`` (bool words, numbers, k=v maps,
    comma lists); the result is checked by msgspec afterwards."""
    text = text.strip()
    origin = typing.get_origin(tp)
    if origin is Annotated:
        return _parse_as(text, typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if text.lower() in ("", "none", "null"):
            return None
        for a in args:
            try:
                return msgspec.convert(_parse_as(text, a), a, strict=False)
            except (ValueError, msgspec.ValidationError):
                continue
        raise ValueError(f"invalid value {text!r}")
    if tp is bool:
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    if origin is dict:
        return _kv_list(text)
    if origin is list:
        return [p.strip() for p in text.split(",") if p.strip()]
    if origin is Literal and all(
        isinstance(a, str) and a == a.lower() for a in typing.get_args(tp)
    ):
        return text.lower()
    return text


# -- the env table ------------------------------------------------------------------------

_Parser = Callable[[str], dict[str, Any]]


def _field(path: str) -> _Parser:
    section, name = path.split(".")
    tp = typing.get_type_hints(_SECTIONS[section], include_extras=True)[name]
    return lambda text: {path: _parse_as(text, tp)}


def _negated(path: str) -> _Parser:
    return lambda text: {path: not _parse_as(text, bool)}


def _traces_exporter(text: str) -> dict[str, Any]:
    names = [p.strip().lower() for p in text.split(",") if p.strip()]
    if names == ["none"]:
        return {"export.traces_exporter": "none"}
    if names == ["otlp"]:
        return {"export.traces_exporter": "otlp"}
    raise ValueError(f"only otlp or none are supported, got {text!r}")


def _metrics_exporter(text: str) -> dict[str, Any]:
    names = {p.strip().lower() for p in text.split(",") if p.strip()}
    if not names <= {"otlp", "prometheus", "none"}:
        raise ValueError(f"only otlp, prometheus or none are supported, got {text!r}")
    return {"metrics.prometheus": "prometheus" in names, "metrics.otlp": "otlp" in names}


def _semconv(text: str) -> dict[str, Any]:
    opts = {p.strip() for p in text.split(",")}
    return {"tracing.semconv_latest": "gen_ai_latest_experimental" in opts}


def _capture(text: str) -> dict[str, Any]:
    return {"tracing.capture_content": parse_capture_mode(text).name}


def _protocol(text: str) -> dict[str, Any]:
    if text.strip().lower() != "grpc":
        raise ValueError(f"only grpc is supported, got {text!r}")
    return {"export.protocol": "grpc"}


# (env var, parser) in increasing priority; LLMTAP_* names are appended for every field.
_OTEL_ENV: list[tuple[str, _Parser]] = [
    ("OTEL_SERVICE_NAME", _field("resource.service_name")),
    ("OTEL_RESOURCE_ATTRIBUTES", _field("resource.attributes")),
    ("OTEL_SDK_DISABLED", _negated("tracing.enabled")),
    ("OTEL_TRACES_SAMPLER", _field("tracing.sampler")),
    ("OTEL_TRACES_SAMPLER_ARG", _field("tracing.sampler_arg")),
    ("OTEL_PROPAGATORS", _field("tracing.propagators")),
    ("OTEL_SEMCONV_STABILITY_OPT_IN", _semconv),
    ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", _capture),
    ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", _field("tracing.attribute_value_length_limit")),
    ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", _field("tracing.attribute_value_length_limit")),
    ("OTEL_ATTRIBUTE_COUNT_LIMIT", _field("tracing.attribute_count_limit")),
    ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", _field("tracing.attribute_count_limit")),
    ("OTEL_TRACES_EXPORTER", _traces_exporter),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", _protocol),
    ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", _protocol),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", _field("export.endpoint")),
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", _field("export.traces_endpoint")),
]
for _generic, _specific, _path in (
    ("OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "export.headers"),
    ("OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "export.timeout_ms"),
    (
        "OTEL_EXPORTER_OTLP_COMPRESSION",
        "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
        "export.compression",
    ),
    ("OTEL_EXPORTER_OTLP_INSECURE", "OTEL_EXPORTER_OTLP_TRACES_INSECURE", "export.insecure"),
    (
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
        "export.certificate",
    ),
    ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "export.client_key"),
    (
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
        "export.client_certificate",
    ),
):
    _OTEL_ENV += [(_generic, _field(_path)), (_specific, _field(_path))]
_OTEL_ENV += [
    ("OTEL_BSP_SCHEDULE_DELAY", _field("export.schedule_delay_ms")),
    ("OTEL_BSP_MAX_QUEUE_SIZE", _field("export.max_queue_size")),
    ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", _field("export.max_export_batch_size")),
    ("OTEL_BSP_EXPORT_TIMEOUT", _field("export.export_timeout_ms")),
    ("OTEL_METRICS_EXPORTER", _metrics_exporter),
    ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", _field("metrics.otlp_endpoint")),
    ("OTEL_METRIC_EXPORT_INTERVAL", _field("metrics.export_interval_ms")),
    ("OTEL_EXPORTER_PROMETHEUS_HOST", _field("metrics.prometheus_host")),
    ("OTEL_EXPORTER_PROMETHEUS_PORT", _field("metrics.prometheus_port")),
]


def _all_paths() -> list[str]:
    return [f"{s}.{f}" for s, cls in _SECTIONS.items() for f in cls.__struct_fields__]


def _llmtap_env(path: str) -> str:
    return "LLMTAP_" + path.replace(".", "_").upper()


_ENV: list[tuple[str, _Parser]] = _OTEL_ENV + [(_llmtap_env(p), _field(p)) for p in _all_paths()]


def env_names() -> list[str]:
    """Every environment variable llmtap reads, lowest priority first."""
    return [name for name, _ in _ENV]


# -- layering -----------------------------------------------------------------------------

_UNKNOWN = re.compile(r"Object contains unknown field `([^`]*)`(?: - at `\$\.?([^`]*)`)?")
_AT = re.compile(r" - at `\$\.?([^`]*)`")


def _explain(err: msgspec.MsgspecError) -> str:
    """msgspec's message, with ``$.a.b`` paths turned into ``a.b`` setting names."""
    text = str(err)
    m = _UNKNOWN.match(text)
    if m:
        where = f"{m.group(2)}.{m.group(1)}" if m.group(2) else m.group(1)
        return f"unknown key `{where}`"
    m = _AT.search(text)
    if m:
        return f"`{m.group(1)}`: {text[: m.start()]}"
    return text


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    section, name = path.split(".")
    data.setdefault(section, {})[name] = value


def _read_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"{p}: cannot read: {e.strerror}") from None
    try:
        if p.suffix.lower() == ".toml":
            obj: Any = tomllib.loads(raw.decode())
        else:
            import yaml

            obj = yaml.safe_load(raw) or {}
    except Exception as e:
        raise ConfigError(f"{p}: not valid {p.suffix.lstrip('.') or 'YAML'}: {e}") from None
    try:
        settings = msgspec.convert(obj, Settings)
    except msgspec.ValidationError as e:
        raise ConfigError(f"{p}: {_explain(e)}") from None
    # Back to plain data: only keys the file set are kept, so env can layer on top.
    return {
        section: {k: msgspec.to_builtins(getattr(getattr(settings, section), k)) for k in keys}
        for section, keys in ((s, obj.get(s) or {}) for s in _SECTIONS)
        if isinstance(keys, dict)
    }


def _validate(data: dict[str, Any]) -> Settings:
    # Lax: env and flag values arrive as strings ("3", "true"); files were checked strictly.
    return msgspec.convert(data, Settings, strict=False)


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    _flags: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings: defaults < ``path`` (YAML, or TOML by ``.toml``) < ``env``
    (default ``os.environ``) < ``overrides`` (``{"server.listen": "0.0.0.0:50051"}``,
    values typed or strings as typed on a command line)."""
    env = os.environ if env is None else env
    data = _read_file(path) if path is not None else {}
    for name, parser in _ENV:
        text = env.get(name)
        if text is None or text.strip() == "":
            continue
        try:
            values = parser(text)
            trial = {s: dict(v) for s, v in data.items()}
            for p, v in values.items():
                _set(trial, p, v)
            _validate(trial)
        except (ValueError, msgspec.ValidationError) as e:
            msg = _explain(e) if isinstance(e, msgspec.MsgspecError) else str(e)
            log.warning("ignoring %s=%r: %s", name, _shown(name, text), msg)
            continue
        data = trial
    for path_, value in (overrides or {}).items():
        if path_ not in _all_paths():
            raise ConfigError(f"unknown setting `{path_}`")
        try:
            if isinstance(value, str):
                section, name_ = path_.split(".")
                value = _parse_as(
                    value, typing.get_type_hints(_SECTIONS[section], include_extras=True)[name_]
                )
            _set(data, path_, value)
            _validate(data)
        except (ValueError, msgspec.ValidationError) as e:
            msg = _explain(e) if isinstance(e, msgspec.MsgspecError) else str(e)
            msg = msg.removeprefix(f"`{path_}`: ")
            flag = (_flags or {}).get(path_, f"--set {path_}")
            raise ConfigError(f"{flag}: {msg}") from None
    try:
        return _validate(data)
    except msgspec.ValidationError as e:  # pragma: no cover - each layer was validated
        raise ConfigError(_explain(e)) from None


def _shown(name: str, text: str) -> str:
    """Env values as logged: header maps may hold credentials, so only keys are shown."""
    if "HEADERS" in name:
        return ",".join(f"{k.split('=')[0]}=…" for k in text.split(","))
    return text


# -- CLI ----------------------------------------------------------------------------------

#: Friendly flags for the settings people change most; everything else via ``--set``.
_FLAGS: dict[str, str] = {
    "--listen": "server.listen",
    "--workers": "server.workers",
    "--mode": "server.mode",
    "--service-name": "resource.service_name",
    "--sampler": "tracing.sampler",
    "--sampler-arg": "tracing.sampler_arg",
    "--otlp-endpoint": "export.endpoint",
    "--prometheus-port": "metrics.prometheus_port",
    "--log-level": "logging.level",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--config``, ``--set SECTION.KEY=VALUE`` and the common shortcuts."""
    parser.add_argument("--config", metavar="FILE", help="settings file (YAML, or TOML)")
    parser.add_argument(
        "--set",
        metavar="SECTION.KEY=VALUE",
        action="append",
        default=[],
        dest="settings_overrides",
        help="override one setting, e.g. --set tracing.keep_errors=true (repeatable)",
    )
    for flag, path in _FLAGS.items():
        parser.add_argument(flag, metavar="VALUE", default=None, help=f"same as --set {path}=…")


def settings_from_args(ns: argparse.Namespace, env: Mapping[str, str] | None = None) -> Settings:
    """The settings for parsed ``add_arguments`` flags (raises ``ConfigError``)."""
    overrides: dict[str, Any] = {}
    flags: dict[str, str] = {}
    for item in getattr(ns, "settings_overrides", None) or ():
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"--set wants SECTION.KEY=VALUE, got {item!r}")
        overrides[key.strip()] = value
    for flag, path in _FLAGS.items():
        value = getattr(ns, flag.lstrip("-").replace("-", "_"), None)
        if value is not None:
            overrides[path] = value
            flags[path] = flag
    return load_settings(getattr(ns, "config", None), env=env, overrides=overrides, _flags=flags)
