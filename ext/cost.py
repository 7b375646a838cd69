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

    When all four are plain Decimals (no tiers) the cost is computed with integers:
    each rate as coefficient * 10**exponent, scaled to the smallest exponent. While
    the sum stays under 28 digits the Decimal computation is exact too, so both give
    the same rational and its correctly rounded float: the same number, without
    Decimal arithmetic per call.
    """

    __slots__ = ("denominator", "prices", "scaled")

    def __init__(self, prices: tuple[Any, Any, Any, Any]) -> None:
        self.prices = prices
        self.scaled: tuple[int, int, int, int] | None = None
        self.denominator = 0
        parts: list[tuple[int, int]] = []
        for p in prices:
            if p is None:  # not priced: counts as 0, as in _rate
                parts.append((0, 0))
                continue
            if not isinstance(p, Decimal) or not p.is_finite():
                return  # tiers or an unusual value: the Decimal path below
            sign, digits, exp = p.as_tuple()
            coef = int("".join(map(str, digits)) or "0")
            parts.append((-coef if sign else coef, int(exp)))
        low = min(e for _, e in parts)
        if low > 6:  # > 10**7 USD per MTok is no price; keep the general path
            return
        self.scaled = tuple(c * 10 ** (e - low) for c, e in parts)
        self.denominator = 10 ** (6 - low)

    def exact(self, uncached: int, read: int, write: int, output: int) -> float | None:
        scaled = self.scaled
        if scaled is None or read < 0 or write < 0 or output < 0:
            return None
        s_in, s_read, s_write, s_out = scaled
        if s_in < 0 or s_read < 0 or s_write < 0 or s_out < 0:
            return None
        total = uncached * s_in + read * s_read + write * s_write + output * s_out
        if total >= _EXACT_BELOW:
            return None
        return total / self.denominator


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
        fast = prices.exact(uncached, read, write, out)
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
