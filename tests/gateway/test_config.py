"""Settings: file (YAML/TOML) < env < CLI, unknown keys and bad values named."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pytest

from llmtap.gateway.config import (
    ConfigError,
    Settings,
    add_arguments,
    env_names,
    load_settings,
    settings_from_args,
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_defaults() -> None:
    s = load_settings(env={})
    assert s == Settings()
    assert s.server.listen == "127.0.0.1:50051" and s.server.mode == "normal"
    assert s.resource.service_name == "llmtap"
    assert s.tracing.sampler == "parentbased_always_on"
    assert s.tracing.capture_content == "NO_CONTENT"
    assert s.export.schedule_delay_ms == 5000 and s.export.max_queue_size == 2048
    assert s.export.max_export_batch_size == 512 and s.export.export_timeout_ms == 30000
    assert s.metrics.prometheus_port == 9464


def test_yaml_and_toml_files(tmp_path: Path) -> None:
    y = write(
        tmp_path,
        "llmtap.yaml",
        "server:\n  listen: 0.0.0.0:9000\n  workers: 4\n"
        "tracing:\n  sampler: parentbased_traceidratio\n  sampler_arg: 0.1\n"
        "export:\n  headers: {x-team: a}\n",
    )
    s = load_settings(y, env={})
    assert (s.server.listen, s.server.workers) == ("0.0.0.0:9000", 4)
    assert (s.tracing.sampler, s.tracing.sampler_arg) == ("parentbased_traceidratio", 0.1)
    assert s.export.headers == {"x-team": "a"}
    t = write(
        tmp_path, "llmtap.toml", '[server]\nmode = "observability"\n[metrics]\nprometheus = false\n'
    )
    s = load_settings(t, env={})
    assert s.server.mode == "observability" and s.metrics.prometheus is False
    assert load_settings(write(tmp_path, "empty.yaml", ""), env={}) == Settings()


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.yaml", "server:\n  lisen: x\n", "a.yaml: unknown key `server.lisen`"),
        ("b.yaml", "tracingg: {}\n", "b.yaml: unknown key `tracingg`"),
        ("c.toml", "[export]\nmax_queue_size = 'x'\n",
         "c.toml: `export.max_queue_size`: Expected `int`, got `str`"),
        ("d.yaml", "server:\n  workers: 0\n", "d.yaml: `server.workers`: Expected `int` >= 1"),
        ("e.yaml", "server:\n  mode: loud\n", "e.yaml: `server.mode`: Invalid enum value 'loud'"),
        ("f.yaml", "- a\n- b\n", "f.yaml: Expected `object`, got `array`"),
        ("g.yaml", "server: [\n", "g.yaml: not valid yaml"),
        ("h.yaml", "tracing:\n  sampler: traceidratio\n  sampler_arg: 3\n",
         "h.yaml: `tracing`: sampler_arg must be a ratio in [0, 1] for traceidratio"),
        ("i.yaml", "export:\n  max_queue_size: 10\n",
         "i.yaml: `export`: max_export_batch_size must be <= max_queue_size"),
    ],
)  # fmt: skip
def test_bad_file_errors_name_the_key(tmp_path: Path, name: str, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(write(tmp_path, name, text), env={})
    assert str(e.value).startswith(str(tmp_path / message.split(":")[0]) + ":")
    assert message.split(": ", 1)[1] in str(e.value)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings("/nonexistent/llmtap.yaml", env={})


def test_env_beats_file_and_llmtap_beats_otel(tmp_path: Path) -> None:
    f = write(tmp_path, "x.yaml", "resource:\n  service_name: from-file\nserver:\n  workers: 2\n")
    s = load_settings(f, env={"OTEL_SERVICE_NAME": "from-env"})
    assert s.resource.service_name == "from-env" and s.server.workers == 2
    s = load_settings(
        f, env={"OTEL_SERVICE_NAME": "otel", "LLMTAP_RESOURCE_SERVICE_NAME": "llmtap-env"}
    )
    assert s.resource.service_name == "llmtap-env"


def test_otel_env_vars() -> None:
    env = {
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,team=ml%20ops",
        "OTEL_TRACES_SAMPLER": "ParentBased_TraceIdRatio",
        "OTEL_TRACES_SAMPLER_ARG": "0.25",
        "OTEL_PROPAGATORS": "tracecontext,b3",
        "OTEL_SEMCONV_STABILITY_OPT_IN": "http,gen_ai_latest_experimental",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "span_only",
        "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "1024",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://traces:4317",
        "OTEL_EXPORTER_OTLP_HEADERS": "api-key=generic",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "api-key=specific,x-b=1",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2500",
        "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_EXPORTER_OTLP_CERTIFICATE": "/etc/ca.pem",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_BSP_MAX_QUEUE_SIZE": "4096",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "256",
        "OTEL_BSP_EXPORT_TIMEOUT": "1000",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_METRIC_EXPORT_INTERVAL": "15000",
    }
    s = load_settings(env=env)
    assert s.resource.attributes == {"deployment.environment": "prod", "team": "ml ops"}
    assert (s.tracing.sampler, s.tracing.sampler_arg) == ("parentbased_traceidratio", 0.25)
    assert s.tracing.propagators == ["tracecontext", "b3"]
    assert s.tracing.semconv_latest is True
    assert s.tracing.capture_content == "SPAN_ONLY"
    assert s.tracing.attribute_value_length_limit == 1024
    e = s.export
    assert (e.endpoint, e.traces_endpoint) == ("http://collector:4317", "http://traces:4317")
    assert e.headers == {"api-key": "specific", "x-b": "1"}
    assert (e.timeout_ms, e.compression, e.insecure, e.certificate) == (
        2500,
        "gzip",
        True,
        "/etc/ca.pem",
    )
    assert (e.schedule_delay_ms, e.max_queue_size, e.max_export_batch_size) == (100, 4096, 256)
    assert e.export_timeout_ms == 1000
    assert (s.metrics.prometheus, s.metrics.otlp, s.metrics.export_interval_ms) == (
        False,
        True,
        15000,
    )


@pytest.mark.parametrize(
    ("env", "check"),
    [
        ({"OTEL_SDK_DISABLED": "true"}, lambda s: s.tracing.enabled is False),
        ({"OTEL_TRACES_EXPORTER": "none"}, lambda s: s.export.traces_exporter == "none"),
        ({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"},
         lambda s: s.tracing.capture_content == "SPAN_AND_EVENT"),
        ({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "False"},
         lambda s: s.tracing.capture_content == "NO_CONTENT"),
        ({"OTEL_METRICS_EXPORTER": "none"},
         lambda s: not s.metrics.prometheus and not s.metrics.otlp),
        ({"LLMTAP_TRACING_KEEP_SLOW_MS": "2500"}, lambda s: s.tracing.keep_slow_ms == 2500),
        ({"LLMTAP_TRACING_KEEP_ERRORS": "yes"}, lambda s: s.tracing.keep_errors is True),
        ({"LLMTAP_SERVER_HEALTH": "off"}, lambda s: s.server.health is False),
        ({"OTEL_SERVICE_NAME": ""}, lambda s: s.resource.service_name == "llmtap"),
    ],
)  # fmt: skip
def test_env_switches(env: dict[str, str], check: object) -> None:
    assert check(load_settings(env=env))  # type: ignore[operator]


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"OTEL_TRACES_SAMPLER": "jaeger_remote"}, "OTEL_TRACES_SAMPLER"),
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "lots"}, "OTEL_BSP_MAX_QUEUE_SIZE"),
        ({"OTEL_BSP_SCHEDULE_DELAY": "-5"}, "OTEL_BSP_SCHEDULE_DELAY"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
        ({"OTEL_EXPORTER_OTLP_INSECURE": "maybe"}, "OTEL_EXPORTER_OTLP_INSECURE"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
         "OTEL_TRACES_SAMPLER_ARG"),
        ({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "everything"},
         "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"),
        ({"LLMTAP_SERVER_WORKERS": "0"}, "LLMTAP_SERVER_WORKERS"),
    ],
)  # fmt: skip
def test_bad_env_warns_and_falls_back(
    caplog: pytest.LogCaptureFixture, env: dict[str, str], field: str
) -> None:
    with caplog.at_level(logging.WARNING, logger="llmtap.config"):
        s = load_settings(env=env)
    assert f"ignoring {field}=" in caplog.text
    default = Settings()
    others = {k: v for k, v in env.items() if k != field}
    assert s == load_settings(env=others) or s == default


def test_bad_env_header_values_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="llmtap.config"):
        load_settings(env={"OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer s3cret,broken"})
    assert "ignoring OTEL_EXPORTER_OTLP_HEADERS" in caplog.text
    assert "s3cret" not in caplog.text


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(argv)


def test_cli_beats_env_and_file(tmp_path: Path) -> None:
    f = write(tmp_path, "x.yaml", "server:\n  listen: file:1\n  workers: 2\n")
    ns = parse(["--config", str(f), "--listen", "cli:1", "--set", "tracing.keep_errors=true"])
    s = settings_from_args(ns, env={"LLMTAP_SERVER_LISTEN": "env:1", "LLMTAP_SERVER_WORKERS": "3"})
    assert (s.server.listen, s.server.workers, s.tracing.keep_errors) == ("cli:1", 3, True)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workers", "many"], "--workers: Expected `int`, got `str`"),
        (["--mode", "loud"], "--mode: Invalid enum value 'loud'"),
        (["--set", "server.nope=1"], "unknown setting `server.nope`"),
        (["--set", "server.listen"], "--set wants SECTION.KEY=VALUE"),
        (["--set", "export.max_queue_size=1"], "--set export.max_queue_size: `export`: "),
        (["--sampler", "traceidratio", "--sampler-arg", "9"], "--sampler-arg: `tracing`"),
    ],
)
def test_bad_flags_error_naming_the_flag(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        settings_from_args(parse(argv), env={})
    assert message in str(e.value)


def test_typed_overrides() -> None:
    s = load_settings(env={}, overrides={"server.workers": 3, "export.headers": {"a": "b"}})
    assert s.server.workers == 3 and s.export.headers == {"a": "b"}
    s = load_settings(env={}, overrides={"export.headers": "a=b,c=d"})
    assert s.export.headers == {"a": "b", "c": "d"}


def test_every_setting_has_an_llmtap_env_var() -> None:
    names = set(env_names())
    for section in Settings.__struct_fields__:
        cls = type(getattr(Settings(), section))
        for field in cls.__struct_fields__:
            assert f"LLMTAP_{section}_{field}".upper() in names


def test_transport_reads_the_server_section() -> None:
    """The servicer's TransportOptions takes its fields off ``settings.server``."""
    from llmtap.gateway.modes import TransportOptions

    s = load_settings(
        env={}, overrides={"server.listen": "unix:/tmp/x", "server.hint_header": "x-p"}
    )
    opts = TransportOptions.from_settings(s.server)
    assert (opts.listen, opts.hint_header) == ("unix:/tmp/x", "x-p")
    import dataclasses

    missing = {f.name for f in dataclasses.fields(TransportOptions)} - set(
        type(s.server).__struct_fields__
    )
    assert not missing, f"server settings lack transport options: {missing}"


def test_repr_hides_exporter_header_values() -> None:
    s = load_settings(env={"OTEL_EXPORTER_OTLP_HEADERS": "x-honeycomb-team=s3cret,api-key=k3y"})
    text = repr(s)
    assert "s3cret" not in text and "k3y" not in text
    assert "'x-honeycomb-team': …" in text and "max_queue_size=2048" in text
    assert s.export.headers["api-key"] == "k3y"
