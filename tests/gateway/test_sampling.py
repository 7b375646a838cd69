"""Head samplers: consistent probability thresholds, parent-based rules, rate limiting."""

from __future__ import annotations

import logging
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmtap.gateway import sampling as sm
from llmtap.gateway.sampling import (
    DROP,
    UNKNOWN,
    AlwaysOff,
    AlwaysOn,
    ParentBased,
    RateLimiting,
    TraceIdRatio,
    head_sample,
    ratio_to_threshold,
    sampler_from_config,
)
from llmtap.gateway.tracecontext import (
    FLAG_RANDOM,
    SpanContext,
    ot_get,
    threshold_from_th,
    threshold_to_th,
)

# The spec's table ("TraceState: Probability Sampling", Algorithms): 1-in-N at
# precision 3, 4 and 5.
SPEC_TABLE = [
    (1, ("0", "0", "0")),
    (0.5, ("8", "8", "8")),
    (1 / 3, ("aab", "aaab", "aaaab")),
    (0.25, ("c", "c", "c")),
    (0.2, ("ccd", "cccd", "ccccd")),
    (0.125, ("e", "e", "e")),
    (0.1, ("e66", "e666", "e6666")),
    (0.0625, ("f", "f", "f")),
    (0.01, ("fd71", "fd70a", "fd70a4")),
    (0.001, ("ffbe7", "ffbe77", "ffbe76d")),
    (0.0001, ("fff972", "fff9724", "fff97247")),
    (0.00001, ("ffff584", "ffff583a", "ffff583a5")),
    (0.000001, ("ffffef4", "ffffef39", "ffffef391")),
]


@pytest.mark.parametrize(("ratio", "ths"), SPEC_TABLE)
def test_ratio_to_threshold_matches_spec_table(ratio: float, ths: tuple[str, ...]) -> None:
    for precision, th in zip((3, 4, 5), ths, strict=True):
        assert threshold_to_th(ratio_to_threshold(ratio, precision)) == th


def test_ratio_bounds() -> None:
    assert ratio_to_threshold(2.0**-56) == (1 << 56) - 1
    with pytest.raises(ValueError, match="sampling ratio"):
        ratio_to_threshold(1.5)
    with pytest.raises(ValueError, match="sampling ratio"):
        ratio_to_threshold(0.0)


def tid_with_randomness(r: int) -> bytes:
    return random.randbytes(9) + r.to_bytes(7, "big")


def test_ratio_decision_is_randomness_ge_threshold() -> None:
    s = TraceIdRatio(0.25)
    t = s.threshold
    assert t == 0xC << 52
    assert s.decide(t, None) == t
    assert s.decide(t - 1, None) is DROP
    assert s.decide((1 << 56) - 1, None) == t
    assert TraceIdRatio(0.0).decide((1 << 56) - 1, None) is DROP


def test_ratio_samples_about_the_ratio() -> None:
    rng = random.Random(7)
    s = TraceIdRatio(0.1)
    n = 20000
    hits = sum(s.decide(rng.getrandbits(56), None) is not DROP for _ in range(n))
    assert abs(hits / n - 0.1) < 0.01


@given(st.integers(0, (1 << 56) - 1), st.floats(1e-6, 1.0), st.floats(1e-6, 1.0))
@settings(max_examples=200)
def test_consistency_lower_probability_implies_higher(rnd: int, p1: float, p2: float) -> None:
    lo, hi = sorted((p1, p2))
    if TraceIdRatio(lo).decide(rnd, None) is not DROP:
        assert TraceIdRatio(hi).decide(rnd, None) is not DROP


def test_head_sample_root_writes_threshold() -> None:
    tid = tid_with_randomness((1 << 56) - 1)
    assert head_sample(TraceIdRatio(0.1), tid, None, "") == (True, "ot=th:e666")
    assert head_sample(AlwaysOn(), tid, None, "") == (True, "ot=th:0")
    assert head_sample(AlwaysOff(), tid, None, "") == (False, "")


def test_head_sample_uses_explicit_rv_and_keeps_it() -> None:
    tid = tid_with_randomness(0)  # trace id says "never"; rv says "always"
    parent = SpanContext(tid, b"\x01" * 8, 1, "ot=rv:ffffffffffffff")
    sampled, ts = head_sample(TraceIdRatio(0.5), tid, parent, parent.trace_state)
    assert sampled
    assert ot_get(ts) == {"th": "8", "rv": "ffffffffffffff"}


def test_head_sample_erases_threshold_when_not_sampled() -> None:
    tid = tid_with_randomness(0)
    parent = SpanContext(tid, b"\x01" * 8, 1, "vendor=x,ot=th:8")
    sampled, ts = head_sample(TraceIdRatio(0.5), tid, parent, parent.trace_state)
    assert not sampled and ts == "vendor=x"


def test_parent_based_propagates_consistent_parent_threshold() -> None:
    s = ParentBased(TraceIdRatio(0.001))
    tid = tid_with_randomness(0xC0000000000000)
    parent = SpanContext(tid, b"\x01" * 8, 1, "ot=th:8")  # 0xC0.. >= 0x80..: consistent
    assert head_sample(s, tid, parent, parent.trace_state) == (True, "ot=th:8")


def test_parent_based_erases_inconsistent_parent_threshold() -> None:
    s = ParentBased(AlwaysOff())
    tid = tid_with_randomness(0x10000000000000)
    parent = SpanContext(tid, b"\x01" * 8, 1, "ot=th:8;rv:01000000000000,x=1")
    # rv 0x01.. < th 0x80..: a sampled parent with this threshold is inconsistent.
    sampled, ts = head_sample(s, tid, parent, parent.trace_state)
    assert sampled and ot_get(ts) == {"rv": "01000000000000"}


def test_parent_based_sampled_parent_without_threshold_gives_unknown() -> None:
    s = ParentBased(AlwaysOff())
    tid = tid_with_randomness(5)
    parent = SpanContext(tid, b"\x01" * 8, 1, "")
    assert s.decide(5, parent) == UNKNOWN
    assert head_sample(s, tid, parent, "") == (True, "")


def test_parent_based_unsampled_parent_drops() -> None:
    s = ParentBased(AlwaysOn())
    tid = tid_with_randomness((1 << 56) - 1)
    parent = SpanContext(tid, b"\x01" * 8, 0, "ot=th:0")
    assert head_sample(s, tid, parent, parent.trace_state) == (False, "")


def test_parent_based_root_uses_root_sampler() -> None:
    assert ParentBased(AlwaysOff()).decide(123, None) is DROP
    assert ParentBased(AlwaysOn()).decide(123, None) == 0


def test_ratio_ignores_parent_flag() -> None:
    tid = tid_with_randomness((1 << 56) - 1)
    unsampled_parent = SpanContext(tid, b"\x01" * 8, FLAG_RANDOM, "")
    assert TraceIdRatio(0.5).decide((1 << 56) - 1, unsampled_parent) == 1 << 55


def test_ratio_warns_once_about_missing_random_flag(caplog: pytest.LogCaptureFixture) -> None:
    TraceIdRatio._warned = False
    parent = SpanContext(bytes(15) + b"\x01", b"\x01" * 8, 1, "")
    with caplog.at_level(logging.WARNING, logger="llmtap.sampling"):
        TraceIdRatio(0.5).decide(1, parent)
        TraceIdRatio(0.5).decide(1, parent)
    assert len([r for r in caplog.records if "random flag" in r.message]) == 1


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_rate_limiter_bursts_then_limits() -> None:
    clock = FakeClock()
    s = RateLimiting(10, clock=clock)
    got = [s.decide(0, None) for _ in range(15)]
    assert got.count(UNKNOWN) == 10 and got[10:] == [DROP] * 5
    clock.t += 0.1  # one token refilled
    assert s.decide(0, None) == UNKNOWN
    assert s.decide(0, None) is DROP
    clock.t += 100  # bucket never holds more than one second's worth
    assert [s.decide(0, None) for _ in range(12)].count(UNKNOWN) == 10


def test_rate_limiter_over_time_is_at_most_n_per_second() -> None:
    clock = FakeClock()
    s = RateLimiting(5, clock=clock)
    sampled = 0
    for _ in range(10_000):  # 10 s at 1000 exchanges/s
        clock.t += 0.001
        sampled += s.decide(0, None) is not DROP
    assert 50 <= sampled <= 55  # 5/s for 10 s plus the initial burst


def test_rate_limiter_zero_never_samples_and_erases_threshold() -> None:
    assert RateLimiting(0).decide(0, None) is DROP
    tid = tid_with_randomness(0)
    parent = SpanContext(tid, b"\x01" * 8, 1, "ot=th:0")
    assert head_sample(RateLimiting(100), tid, parent, parent.trace_state) == (True, "")
    with pytest.raises(ValueError, match="rate limit"):
        RateLimiting(-1)


@pytest.mark.parametrize(
    ("name", "arg", "description"),
    [
        ("always_on", None, "AlwaysOnSampler"),
        ("always_off", None, "AlwaysOffSampler"),
        ("traceidratio", "0.25", "TraceIdRatioBased{0.25}"),
        ("parentbased_always_on", None, "ParentBased{root:AlwaysOnSampler}"),
        ("parentbased_always_off", None, "ParentBased{root:AlwaysOffSampler}"),
        ("parentbased_traceidratio", 0.5, "ParentBased{root:TraceIdRatioBased{0.5}}"),
        ("ratelimiting", "3", "RateLimitingSampler{3.0}"),
        ("parentbased_ratelimiting", None, "ParentBased{root:RateLimitingSampler{100.0}}"),
        ("TraceIdRatio", None, "TraceIdRatioBased{1.0}"),
    ],
)
def test_sampler_from_config(name: str, arg: object, description: str) -> None:
    assert sampler_from_config(name, arg).description == description  # type: ignore[arg-type]


def test_sampler_from_config_errors(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ValueError, match="unknown sampler 'jaeger_remote'"):
        sampler_from_config("jaeger_remote", None)
    with caplog.at_level(logging.WARNING, logger="llmtap.sampling"):
        s = sampler_from_config("traceidratio", "1.5")
    assert s.description == "TraceIdRatioBased{1.0}"
    assert "invalid sampler argument '1.5'" in caplog.text


def test_sampler_names_match_otel_spec() -> None:
    otel = {
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    }
    assert otel <= set(sm.SAMPLER_NAMES)


def test_th_from_head_sample_decodes_to_the_sampler_threshold() -> None:
    for ratio in (0.9, 0.5, 0.1, 0.01, 1e-5):
        s = TraceIdRatio(ratio)
        tid = tid_with_randomness((1 << 56) - 1)
        _, ts = head_sample(s, tid, None, "")
        assert threshold_from_th(ot_get(ts)["th"]) == s.threshold
