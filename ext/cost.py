"""USD cost of a call from the ``genai-prices`` tables, looked up once per model.

Input tokens are split into uncached, cache read and cache write and each part is
priced at its own rate (falling back to the input rate when the model has no
separate cache price); output tokens (reasoning included) at the output rate.
Threshold tiers (e.g. prompts over 200k tokens) follow genai-prices: the tier is
chosen by the total input. Units other than tokens (searches, audio seconds) are
not priced. Nothing here may fail a call: any genai-prices error means no cost.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

__all__ = ["cost_usd"]

#: gen_ai.provider.name -> genai-prices provider id. Providers not listed (local
#: Ollama, unknown endpoints) are not priced rather than guessed.
PRICE_PROVIDERS = {
    "openai": "openai",
    "azure.ai.openai": "azure",
    "anthropic": "anthropic",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "aws.bedrock": "aws",
    "cohere": "cohere",
    "mistral_ai": "mistral",
    "groq": "groq",
    "deepseek": "deepseek",
    "x_ai": "x-ai",
    "together_ai": "together",
    "openrouter": "openrouter",
    "perplexity": "perplexity",
    "fireworks": "fireworks",
}

_MAX_CACHED = 4096
_MTOK = Decimal(1_000_000)
# Decimal keeps 28 significant digits: below this the Decimal sum is exact, and so is
# the integer one that replaces it (see _Prices.exact).
_EXACT_BELOW = 10**28
_DAY = 86400
# (provider id, model) -> (end of the UTC day it was looked up on, prices or None when
# genai-prices does not know the model). Prices carry start dates: a new day looks up
# again.
_cache: dict[tuple[str, str], tuple[float, _Prices | None]] = {}


class _Prices:
    """A model's (input, cache read, cache write, output) prices per MTok, looked up once.

    The cost is computed with integers: every rate (and tier rate) as coefficient *
    10**exponent, scaled to the smallest exponent. While the sum stays under 28 digits
    the Decimal computation is exact too, so both give the same rational and its
    correctly rounded float: the same number, without Decimal arithmetic per call.
    Anything else (a huge sum, a rate that is not a finite number) takes the Decimal
    path, :func:`_rate`.
    """

    __slots__ = ("denominator", "flat", "prices", "rates")

    def __init__(self, prices: tuple[Any, Any, Any, Any]) -> None:
        self.prices = prices
        # per kind: the scaled coefficient, or (base, ((tier start, coefficient), ...))
        self.rates: tuple[Any, ...] | None = None
        self.flat: tuple[int, int, int, int] | None = None  # the rates, when none is tiered
        self.denominator = 1
        try:
            kinds = [_rate_parts(p) for p in prices]
        except (TypeError, ValueError, ArithmeticError):
            return
        exps = [e for base, tiers in kinds for _, e in (base, *(t for _, t in tiers))]
        low = min(exps)
        if low > 6:  # > 10**7 USD per MTok is no price; keep the general path
            return

        def scale(ce: tuple[int, int]) -> int:
            return ce[0] * 10 ** (ce[1] - low)

        self.rates = tuple(
            scale(base) if not tiers else (scale(base), tuple((s, scale(t)) for s, t in tiers))
            for base, tiers in kinds
        )
        self.denominator = 10 ** (6 - low)
        if all(r.__class__ is int and r >= 0 for r in self.rates):
            self.flat = self.rates

    def exact(self, total_in: int, uncached: int, read: int, write: int, out: int) -> float | None:
        if read < 0 or write < 0 or out < 0:
            return None
        flat = self.flat
        if flat is not None:  # the usual price: no tiers, nothing negative
            total = uncached * flat[0] + read * flat[1] + write * flat[2] + out * flat[3]
            return total / self.denominator if total < _EXACT_BELOW else None
        rates = self.rates
        if rates is None:
            return None
        r_in, r_read, r_write, r_out = rates
        if r_in.__class__ is not int:
            r_in = _tier(r_in, total_in)
        if r_read.__class__ is not int:
            r_read = _tier(r_read, total_in)
        if r_write.__class__ is not int:
            r_write = _tier(r_write, total_in)
        if r_out.__class__ is not int:
            r_out = _tier(r_out, total_in)
        if r_in < 0 or r_read < 0 or r_write < 0 or r_out < 0:
            return None
        total = uncached * r_in + read * r_read + write * r_write + out * r_out
        if total >= _EXACT_BELOW:
            return None
        return total / self.denominator


def _tier(rate: tuple[int, tuple[tuple[Any, int], ...]], total_in: int) -> int:
    coef, tiers = rate
    for start, tier_coef in tiers:  # ascending by start, as _rate walks them
        if total_in > start:
            coef = tier_coef
    return coef


def _coef_exp(value: Any) -> tuple[int, int]:
    """A rate as (coefficient, exponent), the way ``Decimal(value)`` holds it."""
    d = Decimal(value)
    if not d.is_finite():
        raise ValueError(d)
    sign, digits, exp = d.as_tuple()
    coef = int("".join(map(str, digits)) or "0")
    return (-coef if sign else coef), int(exp)


def _rate_parts(price: Any) -> tuple[tuple[int, int], list[tuple[Any, tuple[int, int]]]]:
    """(base, [(tier start, rate)]) of a price, mirroring :func:`_rate`."""
    if price is None or isinstance(price, Decimal):
        return _coef_exp(price or 0), []
    base = getattr(price, "base", None)
    if base is None:
        return (0, 0), []
    return _coef_exp(base), [(t.start, _coef_exp(t.price)) for t in getattr(price, "tiers", ())]


def _lookup(provider_id: str, model: str, now: float) -> _Prices | None:
    key = (provider_id, model)
    hit = _cache.get(key)
    if hit is not None and now < hit[0]:
        return hit[1]
    prices: _Prices | None
    try:
        from datetime import UTC, datetime

        from genai_prices import data_snapshot

        _, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider_id, None)
        mp = info.get_prices(datetime.now(tz=UTC))
        inp = getattr(mp, "input_mtok", None)
        out = getattr(mp, "output_mtok", None)
        if inp is None and out is None:
            prices = None
        else:
            read = getattr(mp, "cache_read_mtok", None)
            write = getattr(mp, "cache_write_mtok", None)
            prices = _Prices(
                (
                    inp,
                    read if read is not None else inp,
                    write if write is not None else inp,
                    out,
                )
            )
    except Exception:  # unknown model or a genai-prices failure: never fail the call
        prices = None
    if len(_cache) >= _MAX_CACHED:
        _cache.clear()
    _cache[key] = ((now // _DAY + 1) * _DAY, prices)
    return prices


def _rate(price: Any, total_input: int) -> Decimal:
    if price is None:
        return Decimal(0)
    if isinstance(price, Decimal):
        return price
    base = getattr(price, "base", None)
    if base is None:
        return Decimal(0)
    rate = base
    for tier in getattr(price, "tiers", ()):  # ascending by start
        if total_input > tier.start:
            rate = tier.price
    return Decimal(rate)


def cost_usd(
    provider: str,
    model: str | None,
    input_tokens: int | None,
    output_tokens: int | None,
    cache_read: int | None = None,
    cache_write: int | None = None,
) -> float | None:
    """USD cost, or None when the provider/model is not priced or no tokens are known."""
    pid = PRICE_PROVIDERS.get(provider)
    if pid is None or not model or (input_tokens is None and output_tokens is None):
        return None
    now = time.time()
    hit = _cache.get((pid, model))
    prices = hit[1] if hit is not None and now < hit[0] else _lookup(pid, model, now)
    if prices is None:
        return None
    try:
        total_in = input_tokens or 0
        read = cache_read or 0
        write = cache_write or 0
        uncached = total_in - read - write
        if uncached < 0:
            uncached = 0
        out = output_tokens or 0
        fast = prices.exact(total_in, uncached, read, write, out)
        if fast is not None:
            return fast
        p_in, p_read, p_write, p_out = prices.prices
        cost = (
            uncached * _rate(p_in, total_in)
            + read * _rate(p_read, total_in)
            + write * _rate(p_write, total_in)
            + out * _rate(p_out, total_in)
        ) / _MTOK
        return float(cost)
    except Exception:  # a price shape we do not understand: no cost rather than a failure
        return None
