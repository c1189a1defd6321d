"""Valuation speed and kline request counts.

    python benchmarks/valuation_bench.py [--fills 1000000] [--db sqlite|postgresql|both]

1. Posts N spot fills (not timed; 1 in 100 pays its fee in BPX, valued from one cached kline per
   minute), then times :func:`ledger.prices.value_ledger` over the whole ledger and a second,
   incremental run (nothing to do), and prints fills/s and peak RSS.
2. Prints how many klines requests :func:`importers.prices.plan_windows` needs for a year of typical
   event patterns (docs/pricing.md quotes these numbers).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

from importers.prices import plan_windows
from ledger.db import make_engine, upgrade
from ledger.journal import Journal
from ledger.money import D
from ledger.posting import Source, trade
from ledger.prices import Bar, store_bars, unpriced_count, value_ledger
from ledger.valuation import ValuationSettings, bar_start
try:
    from _results import record  # run as a script: its folder is on sys.path
except ImportError:  # imported as benchmarks.<name> (tests reuse a benchmark's generators)
    from benchmarks._results import record

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
MARKETS = [("SOL", 150), ("BTC", 60000), ("ETH", 3000)]


def post_fills(engine, n: int) -> None:
    rng = random.Random(1)
    with engine.begin() as conn:
        j = Journal(conn)
        batch = []
        for i in range(n):
            base, px = MARKETS[i % 3]
            t = T0 + timedelta(milliseconds=i * 30)
            fee_asset = "BPX" if i % 100 == 0 else "USDC"
            batch.append(trade(Source("main", "fills", f"f{i}", t), kind="spot-trade", base=base, quote="USDC",
                               side="buy" if rng.random() < 0.5 else "sell", quantity=D(f"0.{rng.randrange(1, 10**6):06d}"),
                               price=D(f"{px * (900 + rng.randrange(200)) // 1000}.{rng.randrange(100):02d}"),
                               fee=D("0.0001"), fee_asset=fee_asset))
            if len(batch) == 50_000:
                j.post(batch)
                batch = []
        j.post(batch)
        last = T0 + timedelta(milliseconds=n * 30)
        first_s, last_s = bar_start(T0, "1m"), bar_start(last, "1m") + 60
        store_bars(conn, symbol="BPX_USDC", interval="1m", span=(first_s, last_s),
                   bars=[Bar(s, None, None, None, D("0.25")) for s in range(first_s, last_s, 60)],
                   fetched_at=datetime.now(timezone.utc))


def run(url: str, n: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    post_fills(engine, n)
    t = time.perf_counter()
    report = value_ledger(engine, ValuationSettings())
    full = time.perf_counter() - t
    t = time.perf_counter()
    again = value_ledger(engine, ValuationSettings())
    incremental = time.perf_counter() - t
    with engine.connect() as conn:
        left = unpriced_count(conn)
    engine.dispose()
    assert report.entries == n and report.unpriced == 0 and left == 0 and again.entries == 0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{url.split(':')[0]:10s} {n} fills valued in {full:.1f}s ({n / full:,.0f} fills/s, {report.priced} values); "
          f"second run {incremental:.2f}s; peak RSS {rss:.0f} MiB")
    record("valuation", f"{url.split(':')[0]}, {n:,} fills", round(n / full), "fills/s")
    record("valuation", f"{url.split(':')[0]}, peak RSS", round(rss), "MiB")


def requests_per_year() -> None:
    start = int(T0.timestamp())
    until = start + 366 * 86400
    year = range(start, start + 365 * 86400)
    patterns = {
        "weekly deposit": [start + d * 86400 + 36000 for d in range(0, 365, 7)],
        "daily fee in a third asset": [start + d * 86400 + 50000 for d in range(365)],
        "hourly lend interest": list(range(year.start, year.stop, 3600)),
    }
    print("klines requests for one asset and one year (1000 bars per request):")
    for name, times in patterns.items():
        counts = {iv: len(plan_windows(times, iv, until_s=until)) for iv in ("1m", "1h", "1d")}
        print(f"  {name:28s} {len(times):5d} events: 1m {counts['1m']:4d}, 1h {counts['1h']:3d}, 1d {counts['1d']:2d} "
              f"(1m at 30/min: {counts['1m'] / 30:.1f} min)")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fills", type=int, default=1_000_000)
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    args = ap.parse_args(argv)
    requests_per_year()
    if args.db in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as d:
            run(f"sqlite:///{os.path.join(d, 'bench.db')}", args.fills)
    if args.db in ("postgresql", "both"):
        import psycopg

        name = f"valuation_bench_{os.getpid()}"
        admin = "host=127.0.0.1 port=5432 user=postgres dbname=test"
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        try:
            run(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", args.fills)
        finally:
            with psycopg.connect(admin, autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
