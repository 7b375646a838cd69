"""Head samplers, decided once per exchange when the request headers arrive.

A sampler has one method, ``decide(randomness, parent) -> threshold | None``:

* ``None`` (``DROP``): not sampled;
* ``UNKNOWN`` (-1): sampled, but with no known probability (rate limiter, a sampled
  parent that carried no threshold) so the outgoing ``ot=th`` must be erased;
* an int in ``[0, 2**56)``: sampled under that rejection threshold, written to the
  outgoing tracestate as ``ot=th:…`` (OpenTelemetry consistent probability sampling,
  "TraceState: Probability Sampling").

``randomness`` is the 56-bit value from ``ot=rv`` or the trace id's low 7 bytes
(:func:`llmtap.gateway.tracecontext.randomness`); a ratio decision is the single
compare ``randomness >= threshold`` with the threshold precomputed.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Protocol

from .tracecontext import (
    FLAG_RANDOM,
    SpanContext,
    ot_get,
    ot_set_threshold,
    randomness,
    threshold_from_th,
    threshold_to_th,
)

__all__ = [
    "DROP",
    "MAX_THRESHOLD",
    "SAMPLER_NAMES",
    "UNKNOWN",
    "AlwaysOff",
    "AlwaysOn",
    "ParentBased",
    "RateLimiting",
    "Sampler",
    "TraceIdRatio",
    "head_sample",
    "ratio_to_threshold",
    "sampler_from_config",
]

log = logging.getLogger("llmtap.sampling")

DROP = None
UNKNOWN = -1
#: 2**56: the number of distinct randomness values; a threshold is below it.
MAX_THRESHOLD = 1 << 56

#: ``OTEL_TRACES_SAMPLER`` values, plus llmtap's rate limiters.
SAMPLER_NAMES = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
    "ratelimiting",
    "parentbased_ratelimiting",
)


class Sampler(Protocol):
    description: str

    def decide(self, rnd: int, parent: SpanContext | None) -> int | None: ...


def ratio_to_threshold(ratio: float, precision: int = 4) -> int:
    """The rejection threshold for a sampling probability, rounded (half up) to
    ``precision`` significant hex digits past any leading ``f`` digits, as the spec
    recommends (4 by default) so ``th`` stays short: 0.1 -> ``e666``, 0.01 -> ``fd70a``.
    """
    if not (2.0**-56 <= ratio <= 1.0):
        raise ValueError(f"sampling ratio must be in [2^-56, 1], got {ratio!r}")
    if ratio == 1.0:
        return 0
    _, exp = math.frexp(ratio)
    digits = max(1, min(12, precision + (-exp) // 4))
    unit = 16 ** (14 - digits)
    exact = Fraction(MAX_THRESHOLD) * (1 - Fraction(ratio)) / unit
    threshold = math.floor(exact + Fraction(1, 2)) * unit
    return min(threshold, MAX_THRESHOLD - 1)


class AlwaysOn:
    description = "AlwaysOnSampler"

    def decide(self, rnd: int, parent: SpanContext | None) -> int | None:
        return 0


class AlwaysOff:
    description = "AlwaysOffSampler"

    def decide(self, rnd: int, parent: SpanContext | None) -> int | None:
        return DROP


class TraceIdRatio:
    """Consistent probability sampler: sampled iff ``randomness >= threshold``."""

    _warned = False

    def __init__(self, ratio: float) -> None:
        self.ratio = ratio
        self.description = f"TraceIdRatioBased{{{ratio}}}"
        # Zero is "never", which is not a probability: no threshold can express it.
        self.threshold = MAX_THRESHOLD if ratio <= 0.0 else ratio_to_threshold(ratio)

    def decide(self, rnd: int, parent: SpanContext | None) -> int | None:
        if (
            parent is not None
            and not parent.flags & FLAG_RANDOM
            and not TraceIdRatio._warned
            and "rv:" not in parent.trace_state
        ):
            TraceIdRatio._warned = True
            log.warning(
                "TraceIdRatioBased is presuming trace ids are random but the caller did "
                "not set the W3C Level 2 random flag; upgrade callers to Trace Context Level 2"
            )
        t = self.threshold
        return t if rnd >= t else DROP


class RateLimiting:
    """At most ``per_second`` sampled exchanges per second (token bucket, burst of
    ``max(1, per_second)``). Its samples have no fixed probability, so ``th`` is erased."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        if per_second < 0 or math.isnan(per_second):
            raise ValueError(f"rate limit must be >= 0 per second, got {per_second!r}")
        self.per_second = per_second
        self.description = f"RateLimitingSampler{{{per_second}}}"
        self._clock = clock
        self._capacity = max(1.0, per_second)
        self._tokens = self._capacity if per_second > 0 else 0.0
        self._last = clock()

    def decide(self, rnd: int, parent: SpanContext | None) -> int | None:
        now = self._clock()
        tokens = self._tokens + (now - self._last) * self.per_second
        self._last = now
        if tokens > self._capacity:
            tokens = self._capacity
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return UNKNOWN
        self._tokens = tokens
        return DROP


class ParentBased:
    """Follow a (remote) parent's decision; ``root`` decides when there is none.

    A sampled parent's threshold is propagated unchanged when it is consistent
    (``randomness >= th``), otherwise erased, per the spec's parent-based rules.
    """

    def __init__(
        self,
        root: Sampler,
        remote_parent_sampled: Sampler | None = None,
        remote_parent_not_sampled: Sampler | None = None,
    ) -> None:
        self.root = root
        self.sampled = remote_parent_sampled
        self.not_sampled = remote_parent_not_sampled
        self.description = f"ParentBased{{root:{root.description}}}"

    def decide(self, rnd: int, parent: SpanContext | None) -> int | None:
        if parent is None:
            return self.root.decide(rnd, parent)
        if parent.flags & 1:
            if self.sampled is not None:
                return self.sampled.decide(rnd, parent)
            ts = parent.trace_state
            if ts and "th:" in ts:
                th = threshold_from_th(ot_get(ts).get("th"))
                if th is not None and rnd >= th:
                    return th
            return UNKNOWN
        if self.not_sampled is not None:
            return self.not_sampled.decide(rnd, parent)
        return DROP


def sampler_from_config(name: str, arg: str | float | None) -> Sampler:
    """Build the sampler named by ``OTEL_TRACES_SAMPLER`` (and llmtap's rate limiters).

    ``arg`` is the ratio for ``*traceidratio`` (default 1.0) and the traces per second
    for ``*ratelimiting`` (default 100). An unknown name raises ``ValueError``; a bad
    ``arg`` warns and uses the default, as the OTel SDK spec asks.
    """
    name = name.strip().lower()
    if name not in SAMPLER_NAMES:
        raise ValueError(f"unknown sampler {name!r}; expected one of {', '.join(SAMPLER_NAMES)}")
    root: Sampler
    if name.endswith("always_on"):
        root = AlwaysOn()
    elif name.endswith("always_off"):
        root = AlwaysOff()
    elif name.endswith("traceidratio"):
        root = TraceIdRatio(_float_arg(arg, 1.0, 0.0, 1.0, name))
    else:
        root = RateLimiting(_float_arg(arg, 100.0, 0.0, math.inf, name))
    return ParentBased(root) if name.startswith("parentbased_") else root


def _float_arg(arg: str | float | None, default: float, lo: float, hi: float, name: str) -> float:
    if arg is None or arg == "":
        return default
    try:
        v = float(arg)
    except ValueError:
        v = math.nan
    if not (lo <= v <= hi):
        log.warning("invalid sampler argument %r for %s; using %s", arg, name, default)
        return default
    return v


_ROOT_TS_CACHE: dict[int, str] = {}


def head_sample(
    sampler: Sampler, trace_id: bytes, parent: SpanContext | None, trace_state: str
) -> tuple[bool, str]:
    """Run ``sampler`` and return ``(sampled, outgoing tracestate)``.

    ``trace_state`` is the incoming one (the parent's, or ``""`` for a new trace). The
    outgoing one carries ``ot=th`` when the decision has a known threshold and never
    carries it otherwise (unsampled, or unknown probability); ``rv`` is never touched.
    """
    th = sampler.decide(randomness(trace_id, trace_state), parent)
    if th is None or th < 0:
        if trace_state and "th:" in trace_state:
            trace_state = ot_set_threshold(trace_state, None)
        return th is not None, trace_state
    if not trace_state:
        ts = _ROOT_TS_CACHE.get(th)
        if ts is None:
            ts = f"ot=th:{threshold_to_th(th)}"
            if len(_ROOT_TS_CACHE) < 64:
                _ROOT_TS_CACHE[th] = ts
        return True, ts
    return True, ot_set_threshold(trace_state, th)
