"""Deterministic fault injection: ``429=0.05,500=0.02,502=0.01,503=0.01,slow=0.01,drop=0.01,malformed=0.01,seed=7``.

Each request draws once from a ``random.Random(seed)``; the fault kinds partition [0, 1) in the fixed
order below, so a sequential client sees the same faults on every run. Extra keys: ``seed`` (int,
default 0) and ``slow_s`` (seconds a ``slow`` response sleeps before answering, default 10).

The kinds (docs/simulator.md): ``429``, ``500``, ``502``, ``503`` the error answers; ``slow`` the
answer after ``slow_s`` (beyond a client's timeout: a timeout); ``drop`` the connection closed without
an answer; ``malformed`` a 200 whose body is cut in half (truncated); ``nonjson`` a 200 that is an
HTML page (a proxy's or captive portal's); ``wrongshape`` a 200 of valid JSON in the wrong shape (an
object where an array belongs, an array where an object does); ``shift`` one row inserted ahead of the reader of a
history listing (that listing's later pages start one row earlier, for good: rows read twice, none
skipped, as when rows land at the head of a newest-first listing); ``insert`` a USDC deposit
arriving on the main account now (its newest history row, the balance with it) before the request
is served. New kinds go at the end, so the
draws of an existing spec never change.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["FaultPlan", "FaultSpecError", "KINDS", "parse_spec", "draw"]

KINDS = ("429", "500", "502", "503", "slow", "drop", "malformed", "nonjson", "wrongshape", "shift", "insert")


class FaultSpecError(ValueError):
    """A malformed ``--faults`` string; the message names the bad item."""


@dataclass
class FaultPlan:
    rates: dict[str, float]
    seed: int = 0
    slow_s: float = 10.0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @classmethod
    def parse(cls, spec: str | None) -> "FaultPlan | None":
        parsed = parse_spec(spec, KINDS, {"slow_s": 10.0}, FaultSpecError, "fault")
        if parsed is None:
            return None
        rates, seed, extra = parsed
        return cls(rates=rates, seed=seed, slow_s=extra["slow_s"])

    def draw(self) -> str | None:
        return draw(self._rng, KINDS, self.rates)


def parse_spec(spec: str | None, kinds: tuple[str, ...], extras: dict[str, float], error: type[ValueError], what: str):
    """``name=rate,...,seed=N`` with ``extras`` (name -> default, float values): ``(rates, seed,
    extras)``, or None for an empty spec. Every problem is ``error`` naming the item (``what``
    prefixes the messages: ``fault``, ``ws fault``)."""
    if not spec or not spec.strip():
        return None
    rates: dict[str, float] = {}
    seed = 0
    values = dict(extras)
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise error(f"{what} item {item!r} is not name=value")
        try:
            if name == "seed":
                seed = int(value)
            elif name in values:
                values[name] = float(value)
            elif name in kinds:
                rate = float(value)
                if not 0.0 <= rate <= 1.0:
                    raise error(f"{what} rate {name}={value} is outside 0..1")
                rates[name] = rate
            else:
                raise error(f"unknown {what} {name!r} (known: {', '.join(kinds)}, seed, {', '.join(extras)})")
        except ValueError as exc:
            if isinstance(exc, error):
                raise
            raise error(f"{what} item {item!r} has a value that is not a number") from None
    if sum(rates.values()) > 1.0 + 1e-9:
        raise error(f"{what} rates add up to more than 1")
    return rates, seed, values


def draw(rng: random.Random, kinds: tuple[str, ...], rates: dict[str, float]) -> str | None:
    """One draw: the kinds partition [0, 1) in their fixed order; None for no fault."""
    u = rng.random()
    acc = 0.0
    for kind in kinds:
        acc += rates.get(kind, 0.0)
        if u < acc:
            return kind
    return None
