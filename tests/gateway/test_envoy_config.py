"""``llmtap envoy-config``: every mode validated by the real Envoy, then run with traffic."""

from __future__ import annotations

import argparse
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmtap.gateway import envoy_config as ec
from llmtap.gateway.demo.httpserver import HttpServer, Request, Response
from llmtap.gateway.demo.procs import Envoy, validate_envoy_config


def _parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    ec.add_arguments(p)
    return p.parse_args(list(argv))


def _cluster(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in cfg["static_resources"]["clusters"] if c["name"] == name)


def _upstream_filters(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    opts = cluster["typed_extension_protocol_options"][ec._HTTP_OPTIONS_KEY]
    return opts["http_filters"]


def _ext_proc(cfg: dict[str, Any], provider: str = "openai") -> dict[str, Any]:
    filters = _upstream_filters(_cluster(cfg, f"provider_{provider}"))
    return next(f for f in filters if f["name"] == ec.EXT_PROC_FILTER)["typed_config"]


@pytest.mark.parametrize("mode", ec.MODES)
@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["--upstream", "127.0.0.1:8080", "--ext-proc", "unix:/tmp/llmtap.sock"],
        ["--provider", "azure=https://myres.openai.azure.com", "--ext-proc", "llmtap:50051"],
    ],
    ids=["tls", "upstream-unix", "azure-dns"],
)
def test_real_envoy_accepts_every_mode(mode: str, extra: list[str]) -> None:
    opts = ec.options_from_args(_parse("--mode", mode, *extra))
    ok, output = validate_envoy_config(ec.generate(opts))
    assert ok, output
    assert "OK" in output


def test_validation_is_strict() -> None:
    """The validate test is worth something only if Envoy rejects unknown fields."""
    cfg = ec.bootstrap(ec.Options(mode="assisted"))
    filters = _upstream_filters(_cluster(cfg, "provider_openai"))
    filters[1]["typed_config"]["response_handling"]["token_usage"]["usage_signall"] = 1
    ok, output = validate_envoy_config(ec.render(cfg))
    assert not ok
    assert "usage_signall" in output or "INVALID_ARGUMENT" in output


def test_observability_mode() -> None:
    cfg = ec.bootstrap(ec.Options(mode="observability"))
    ep = _ext_proc(cfg)
    assert ep["observability_mode"] is True
    assert ep["deferred_close_timeout"] == "5s"
    assert ep["failure_mode_allow"] is True
    mode = ep["processing_mode"]
    assert mode["request_body_mode"] == "STREAMED"
    assert mode["response_body_mode"] == "STREAMED"
    assert mode["request_header_mode"] == mode["response_header_mode"] == "SEND"
    assert "message_timeout" not in ep  # has no meaning when Envoy does not wait


def test_normal_mode() -> None:
    cfg = ec.bootstrap(ec.Options(mode="normal", message_timeout=0.25))
    ep = _ext_proc(cfg)
    assert "observability_mode" not in ep
    assert ep["failure_mode_allow"] is True
    assert ep["allow_mode_override"] is True
    assert ep["message_timeout"] == "0.25s"
    assert ep["processing_mode"] == {
        "request_header_mode": "SEND",
        "request_body_mode": "STREAMED",
        "request_trailer_mode": "SKIP",
        "response_header_mode": "SEND",
        "response_body_mode": "STREAMED",
        "response_trailer_mode": "SEND",
    }
    no_body = ec.bootstrap(ec.Options(mode="normal", request_body="none"))
    assert _ext_proc(no_body)["processing_mode"]["request_body_mode"] == "NONE"


def test_assisted_mode() -> None:
    cfg = ec.bootstrap(ec.Options(mode="assisted"))
    filters = _upstream_filters(_cluster(cfg, "provider_anthropic"))
    # ext_proc first, the protocol manager next to the codec: on the response path the
    # manager runs first and its usage record is published before ext_proc's trailers.
    assert [f["name"] for f in filters] == [
        ec.EXT_PROC_FILTER,
        ec.AI_PROTOCOL_MANAGER,
        "envoy.filters.http.upstream_codec",
    ]
    usage = filters[1]["typed_config"]["response_handling"]["token_usage"]
    assert usage["usage_signal"] == "SYNTHESIZE_TRAILERS"
    assert usage["metadata_namespace"] == ec.TOKEN_USAGE_NAMESPACE
    ep = filters[0]["typed_config"]
    assert ep["metadata_options"] == {
        "forwarding_namespaces": {"typed": [ec.TOKEN_USAGE_NAMESPACE]},
        "receiving_namespaces": {"untyped": [ec.LLMTAP_NAMESPACE]},
    }
    assert ep["processing_mode"]["response_body_mode"] == "NONE"
    assert ep["processing_mode"]["response_trailer_mode"] == "SEND"
    assert ep["allow_mode_override"] is True
    assert ep["failure_mode_allow"] is True
    routes = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    vhosts = routes["typed_config"]["route_config"]["virtual_hosts"]
    for vh in vhosts:
        for r in vh["routes"]:
            assert r["request_headers_to_add"][0]["header"] == {
                "key": "accept-encoding",
                "value": "identity",
            }


def test_ext_proc_cluster_sized_for_many_streams() -> None:
    cfg = ec.bootstrap(ec.Options(max_streams=20000))
    c = _cluster(cfg, ec.EXT_PROC_CLUSTER)
    limits = c["circuit_breakers"]["thresholds"][0]
    assert limits["max_requests"] == limits["max_pending_requests"] == 20000
    assert limits["max_connections"] >= 64
    http2 = c["typed_extension_protocol_options"][ec._HTTP_OPTIONS_KEY]["explicit_http_config"]
    assert http2["http2_protocol_options"]["max_concurrent_streams"] == 20000


def test_unix_socket_ext_proc() -> None:
    cfg = ec.bootstrap(ec.Options(ext_proc=ec.Address.parse("unix:/run/llmtap.sock", unix=True)))
    c = _cluster(cfg, ec.EXT_PROC_CLUSTER)
    assert c["type"] == "STATIC"
    ep = c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert ep["address"] == {"pipe": {"path": "/run/llmtap.sock"}}


def test_provider_clusters_use_tls_to_real_hosts() -> None:
    cfg = ec.bootstrap(ec.Options(providers=ec.default_providers("eu-west-1")))
    want = {
        "openai": "api.openai.com",
        "anthropic": "api.anthropic.com",
        "gemini": "generativelanguage.googleapis.com",
        "bedrock": "bedrock-runtime.eu-west-1.amazonaws.com",
        "cohere": "api.cohere.com",
        "mistral": "api.mistral.ai",
        "groq": "api.groq.com",
    }
    for name, host in want.items():
        c = _cluster(cfg, f"provider_{name}")
        sock = c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
        assert sock["socket_address"] == {"address": host, "port_value": 443}
        tls = c["transport_socket"]["typed_config"]
        assert tls["sni"] == host
        san = tls["common_tls_context"]["validation_context"]["match_typed_subject_alt_names"]
        assert san == [{"san_type": "DNS", "matcher": {"exact": host}}]
        assert c["type"] == "LOGICAL_DNS"
    ollama = _cluster(cfg, "provider_ollama")
    assert "transport_socket" not in ollama


def test_upstream_override_routes_everything_to_one_plaintext_address() -> None:
    cfg = ec.bootstrap(ec.Options(upstream=ec.Address("127.0.0.1", 18080)))
    providers = [c for c in cfg["static_resources"]["clusters"] if c["name"] != ec.EXT_PROC_CLUSTER]
    assert len(providers) == len(ec.default_providers())
    for c in providers:
        assert "transport_socket" not in c
        ep = c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
        assert ep == {"socket_address": {"address": "127.0.0.1", "port_value": 18080}}


def test_prefix_and_host_routes() -> None:
    cfg = ec.bootstrap(ec.Options())
    hcm = cfg["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    vhosts = hcm["typed_config"]["route_config"]["virtual_hosts"]
    by_prefix = vhosts[-1]
    assert by_prefix["domains"] == ["*"]
    routes = {r["match"]["prefix"]: r["route"] for r in by_prefix["routes"]}
    assert routes["/openai/"] == {
        "cluster": "provider_openai",
        "timeout": "600s",
        "prefix_rewrite": "/",
        "host_rewrite_literal": "api.openai.com",
    }
    assert routes["/ollama/"]["host_rewrite_literal"] == "127.0.0.1:11434"
    anthropic = next(v for v in vhosts if v["name"] == "host_anthropic")
    assert "api.anthropic.com" in anthropic["domains"]
    assert "api.anthropic.com:443" in anthropic["domains"]
    assert anthropic["routes"][0]["route"]["cluster"] == "provider_anthropic"


def test_yaml_has_no_anchors() -> None:
    text = ec.generate(ec.Options(mode="normal"))
    assert "&id" not in text and "*id" not in text
    assert yaml.safe_load(text) == ec.bootstrap(ec.Options(mode="normal"))


def test_cli_main(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "envoy.yaml"
    assert ec.main(_parse("--mode", "normal", "-o", str(out))) == 0
    assert yaml.safe_load(out.read_text())["admin"]["address"]["socket_address"]["port_value"]
    assert ec.main(_parse("--listen", "0.0.0.0:8000", "--admin", "127.0.0.1:9000")) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    listener = cfg["static_resources"]["listeners"][0]["address"]["socket_address"]
    assert listener == {"address": "0.0.0.0", "port_value": 8000}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--listen", "nope"], "--listen must be HOST:PORT, got 'nope'"),
        (["--listen", "unix:/x"], "--listen cannot be a unix socket: 'unix:/x'"),
        (["--ext-proc", "unix:"], "--ext-proc: empty unix socket path"),
        (["--upstream", "h:99999"], "--upstream must be HOST:PORT, got 'h:99999'"),
        (["--provider", "azure"], "provider must be NAME=URL, got 'azure'"),
        (["--provider", "x=ftp://h"], "provider URL must be http(s)://host[:port], got 'ftp://h'"),
        (["--max-streams", "0"], "max_streams must be >= 1, got 0"),
    ],
)
def test_cli_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert ec.main(_parse(*argv)) == 2
    assert capsys.readouterr().err == f"llmtap envoy-config: {message}\n"


def test_parse_provider() -> None:
    assert ec.parse_provider("azure=myres.openai.azure.com") == ec.Provider(
        "azure", "myres.openai.azure.com", 443, True
    )
    assert ec.parse_provider("vllm=http://10.0.0.5:8000") == ec.Provider(
        "vllm", "10.0.0.5", 8000, False
    )
    assert ec.Provider("vllm", "10.0.0.5", 8000, False).authority == "10.0.0.5:8000"


@pytest.fixture(scope="module")
def echo() -> Any:
    seen: list[Request] = []

    def handler(req: Request) -> Response:
        seen.append(req)
        return Response(200, [("content-type", "text/plain")], [(0.02, b"one,"), (0.02, b"two")])

    server = HttpServer(handler).start()
    server.seen = seen  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.mark.parametrize("mode", ec.MODES)
def test_running_envoy_routes_and_fails_open(mode: str, echo: Any) -> None:
    """Envoy on the generated config, llmtap absent: traffic must still flow (and arrive
    rewritten: provider path, provider host)."""
    with tempfile.TemporaryDirectory() as tmp:
        opts = ec.Options(
            mode=mode,
            listen=ec.Address("127.0.0.1", 0),
            admin=ec.Address("127.0.0.1", 0),
            ext_proc=ec.Address(path=str(Path(tmp) / "absent.sock")),
            upstream=ec.Address("127.0.0.1", echo.port),
        )
        with Envoy(opts, Path(tmp)) as envoy:
            cases = [
                ("/openai/v1/chat/completions", {}, "/v1/chat/completions", "api.openai.com"),
                (
                    "/bedrock/model/amazon.nova-lite-v1%3A0/converse-stream",
                    {},
                    "/model/amazon.nova-lite-v1%3A0/converse-stream",
                    "bedrock-runtime.us-east-1.amazonaws.com",
                ),
                (
                    "/gemini/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
                    {},
                    "/v1beta/models/gemini-2.0-flash:streamGenerateContent",
                    "generativelanguage.googleapis.com",
                ),
                (
                    "/v1/messages",
                    {"Host": "api.anthropic.com"},
                    "/v1/messages",
                    "api.anthropic.com",
                ),
            ]
            for path, headers, want_path, want_host in cases:
                req = urllib.request.Request(envoy.url + path, data=b"{}", headers=headers)
                with urllib.request.urlopen(req, timeout=10) as r:
                    assert r.status == 200
                    assert r.read() == b"one,two"
                got = echo.seen[-1]
                assert (got.path, got.header("host")) == (want_path, want_host)
                if mode == "assisted":
                    assert got.header("accept-encoding") == "identity"
            stats = envoy.stats("cluster.provider_openai.ext_proc.llmtap.")
            assert stats["cluster.provider_openai.ext_proc.llmtap.failure_mode_allowed"] >= 1
        assert not envoy.alive
