"""Booking engine timings on a deterministic generated spot history.

    python benchmarks/booking_bench.py                      # 10k, 100k, 1M events; every method
    python benchmarks/booking_bench.py --sizes 10000 100000 --methods hifo fifo

Prints, per method and size, the seconds ``book()`` takes (generation not included), the
rate, and the growth ratio of time from one size to the next (10x events: ~10x for
O(n log n), ~100x for O(n^2)).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.booking import Acquisition, Disposal, Settings, book  # noqa: E402
try:
    from _results import record  # run as a script: its folder is on sys.path
except ImportError:  # imported as benchmarks.<name> (tests reuse a benchmark's generators)
    from benchmarks._results import record

SIZES = (10_000, 100_000, 1_000_000)
METHODS = ("fifo", "lifo", "hifo", "lofo", "average", "uk")
START = datetime(2022, 1, 1, tzinfo=timezone.utc)


def generate(n: int, *, seed: int = 2024, assets: tuple[str, ...] = ("BTC",), account: str = "main", step_seconds: tuple[int, int] = (30, 90)) -> list:
    """``n`` spot events (about 55 % buys, 45 % sells never exceeding the balance) on one
    account, one every ``step_seconds`` (30-90 s) from 2022-01-01, prices a random walk in
    whole cents."""
    rnd = random.Random(seed)
    events: list = []
    t = START
    price = {a: 20_000_00 for a in assets}  # cents
    held = {a: 0 for a in assets}  # in 1e-4 units
    cent = Decimal("0.01")
    unit = Decimal("0.0001")
    for i in range(n):
        t += timedelta(seconds=rnd.randint(*step_seconds))
        asset = assets[rnd.randrange(len(assets))] if len(assets) > 1 else assets[0]
        price[asset] = max(100_00, price[asset] + rnd.randint(-300_00, 300_00))
        q = rnd.randint(1, 20_000)
        if held[asset] > 0 and rnd.random() < 0.45:
            q = min(q, held[asset])
            held[asset] -= q
            qty = Decimal(q) * unit
            events.append(Disposal(id=f"s{i:07d}", account=account, asset=asset, quantity=qty, proceeds=(Decimal(price[asset]) * cent * qty), time=t, source="bench", kind="trade"))
        else:
            held[asset] += q
            qty = Decimal(q) * unit
            events.append(Acquisition(id=f"b{i:07d}", account=account, asset=asset, quantity=qty, cost=(Decimal(price[asset]) * cent * qty), time=t, source="bench", kind="trade"))
    return events


def time_book(events: list, method: str) -> tuple[float, int]:
    settings = Settings(method=method, scope="universal") if method == "uk" else Settings(method=method)
    t0 = time.perf_counter()
    result = book(events, settings)
    return time.perf_counter() - t0, len(result.gains)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    args = parser.parse_args(argv)
    timings: dict[str, list[float]] = {m: [] for m in args.methods}
    for n in args.sizes:
        t0 = time.perf_counter()
        events = generate(n)
        print(f"generated {n:>9,} events in {time.perf_counter() - t0:6.2f} s", flush=True)
        for method in args.methods:
            seconds, gains = time_book(events, method)
            timings[method].append(seconds)
            print(f"  {method:<8} {n:>9,} events  {seconds:7.2f} s  {n / seconds:>10,.0f} ev/s  {gains:>9,} gain rows", flush=True)
            record("booking (in process)", f"{method}, {n:,} events", round(seconds, 2), "s")
        del events
    print()
    header = "method    " + "".join(f"{n:>12,}" for n in args.sizes) + "".join(f"   x{b // a} growth" for a, b in zip(args.sizes, args.sizes[1:]))
    print(header)
    for method, ts in timings.items():
        growth = "".join(f"{b / a:>14.1f}" for a, b in zip(ts, ts[1:]))
        print(f"{method:<10}" + "".join(f"{t:>11.2f}s" for t in ts) + growth)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
