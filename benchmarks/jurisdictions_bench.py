"""Book N generated trades (one asset, two accounts, buys and sells every few minutes, about half the sales
at a loss) under every jurisdiction's default method: the pooled stages (ca's superficial-loss windows, jp's
yearly averages) against the engine's own methods. ``python benchmarks/jurisdictions_bench.py [N]``."""

from __future__ import annotations

import random
import sys
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from ledger.booking import JURISDICTIONS, Acquisition, Disposal, Settings, book


def events(n: int, seed: int = 1):
    rnd = random.Random(seed)
    t = datetime(2024, 1, 1, tzinfo=timezone.utc)
    held = Decimal(0)
    price = Decimal(100)
    out = []
    for i in range(n):
        t += timedelta(minutes=rnd.randint(1, 20))
        price = max(Decimal(1), price + Decimal(rnd.randint(-200, 200)) / 100)
        q = Decimal(rnd.randint(1, 100)) / 10
        acct = "main" if i % 3 else "sub"
        if held >= q and rnd.random() < 0.5:
            out.append(Disposal(id=f"s{i}", account=acct, asset="X", quantity=q, proceeds=q * price, time=t, source="", kind="trade"))
            held -= q
        else:
            out.append(Acquisition(id=f"b{i}", account=acct, asset="X", quantity=q, cost=q * price, time=t, source="", kind="trade"))
            held += q
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    evs = events(n)
    for name in JURISDICTIONS:
        s = Settings(jurisdiction=name)
        t0 = time.perf_counter()
        r = book(evs, s)
        dt = time.perf_counter() - t0
        sup = sum(1 for g in r.gains if g.term == "superficial-loss")
        print(f"{name:8s} {s.method:15s} {n:>8,} events {dt:6.2f} s  {len(r.gains):>8,} rows  superficial {sup:,}")


if __name__ == "__main__":
    main()
