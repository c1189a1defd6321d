"""Deterministic fault injection: ``429=0.05,500=0.02,502=0.01,503=0.01,slow=0.01,drop=0.01,malformed=0.01,seed=7``.

Each request draws once from a ``random.Random(seed)``; the fault kinds partition [0, 1) in the fixed
order below, so a sequential client sees the same faults on every run. Extra keys: ``seed`` (int,
default 0) and ``slow_s`` (seconds a ``slow`` response sleeps before answering, default 10).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["FaultPlan", "FaultSpecError", "KINDS"]

KINDS = ("429", "500", "502", "503", "slow", "drop", "malformed")


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
        if not spec or not spec.strip():
            return None
        rates: dict[str, float] = {}
        seed = 0
        slow_s = 10.0
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            name, sep, value = item.partition("=")
            name = name.strip()
            if not sep:
                raise FaultSpecError(f"fault item {item!r} is not name=value")
            try:
                if name == "seed":
                    seed = int(value)
                elif name == "slow_s":
                    slow_s = float(value)
                elif name in KINDS:
                    rate = float(value)
                    if not 0.0 <= rate <= 1.0:
                        raise FaultSpecError(f"fault rate {name}={value} is outside 0..1")
                    rates[name] = rate
                else:
                    raise FaultSpecError(f"unknown fault {name!r} (known: {', '.join(KINDS)}, seed, slow_s)")
            except ValueError as exc:
                if isinstance(exc, FaultSpecError):
                    raise
                raise FaultSpecError(f"fault item {item!r} has a value that is not a number") from None
        if sum(rates.values()) > 1.0 + 1e-9:
            raise FaultSpecError("fault rates add up to more than 1")
        return cls(rates=rates, seed=seed, slow_s=slow_s)

    def draw(self) -> str | None:
        u = self._rng.random()
        acc = 0.0
        for kind in KINDS:
            acc += self.rates.get(kind, 0.0)
            if u < acc:
                return kind
        return None
