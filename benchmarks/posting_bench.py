"""Posting speed: 1,000,000 fills from raw records already stored, into SQLite and PostgreSQL.

    python benchmarks/posting_bench.py [--fills 1000000] [--db sqlite|postgresql|both] [--processes N]

Stores N raw fill records (not timed), then times ``importers.sync.repost`` which re-derives and
writes every entry and posting from them (rules in ``--processes`` forked workers, default the CPU
count; 0: in-process), and prints fills/s and peak RSS (of this process; the workers are apart).
The timed part includes the end of the rebuild: index builds and whole-table reference checks
(``ledger.bulk.journal_rebuild``) and the commit. Target: 50,000 fills/s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import tempfile
import time
from datetime import datetime, timedelta, timezone

import psycopg

from importers.backpack.endpoints import ENDPOINTS
from importers.sync import repost
from ledger.bulk import allocate_ids, bulk_insert
from ledger.types import db_time
from ledger.db import make_engine, trial_balance, upgrade
try:
    from _results import record  # run as a script: its folder is on sys.path
except ImportError:  # imported as benchmarks.<name> (tests reuse a benchmark's generators)
    from benchmarks._results import record

MARKETS = [("SOL_USDC", "150"), ("BTC_USDC", "60000"), ("ETH_USDC", "3000"), ("SOL_USDC_PERP", "150"), ("BTC_USDC_PERP", "60000")]


def fills(n: int, seed: int = 1):
    rng = random.Random(seed)
    t0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
    for i in range(n):
        sym, base = MARKETS[i % len(MARKETS)]
        side = "Bid" if rng.random() < 0.5 else "Ask"
        price = f"{int(base) * (900 + rng.randrange(200)) // 1000}.{rng.randrange(100):02d}"
        qty = f"0.{rng.randrange(1, 10**6):06d}"
        fee_sym = "USDC" if side == "Ask" or sym.endswith("PERP") else sym.split("_")[0]
        t = t0 + timedelta(milliseconds=i * 30)
        yield {"clientId": None, "fee": "0.0001", "feeSymbol": fee_sym, "isMaker": bool(i % 2), "orderId": str(10**9 + i), "price": price,
               "quantity": qty, "side": side, "symbol": sym, "systemOrderType": None,
               "timestamp": t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3], "tradeId": i + 1}


def store_raw(engine, n: int) -> None:
    ep = ENDPOINTS["fills"]
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
        batch = []
        for rec in fills(n):
            batch.append(rec)
            if len(batch) == 50000:
                _flush(conn, ep, batch, now)
                batch = []
        _flush(conn, ep, batch, now)


def _flush(conn, ep, batch, now):
    ids = allocate_ids(conn, "raw_records", len(batch))
    bulk_insert(conn, "raw_records", ("id", "venue_account", "endpoint", "natural_key", "payload", "record_time", "fetched_at", "status", "note"),
                [(i, "main", "fills", ep.natural_key(r), json.dumps(r, separators=(",", ":")), db_time(conn, ep.record_time(r)), db_time(conn, now), "posted", None)
                 for i, r in zip(ids, batch)])


def run(url: str, n: int, processes: int | None = None) -> None:
    engine = make_engine(url)
    upgrade(engine)
    t = time.perf_counter()
    store_raw(engine, n)
    stored = time.perf_counter() - t
    t = time.perf_counter()
    count = repost(engine, processes=processes)
    posted = time.perf_counter() - t
    with engine.connect() as conn:
        tb = trial_balance(conn)
        entries = conn.exec_driver_sql("SELECT COUNT(*) FROM journal_entries").scalar_one()
        postings = conn.exec_driver_sql("SELECT COUNT(*) FROM postings").scalar_one()
    engine.dispose()
    assert count == n and entries == n and all(v == 0 for v in tb.values())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{engine.dialect.name:10s} fills={n:,} raw-store={stored:.1f}s posting={posted:.1f}s -> {n / posted:,.0f} fills/s "
          f"({postings:,} postings; trial balance zero; peak RSS {rss:,.0f} MiB)")
    record("posting", f"{engine.dialect.name}, {n:,} fills", round(n / posted), "fills/s", target=">= 50,000 fills/s", ok=n / posted >= 50_000)
    record("posting", f"{engine.dialect.name}, peak RSS", round(rss), "MiB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fills", type=int, default=1_000_000)
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--processes", type=int, default=None, help="repost worker processes (default: CPU count; 0 or 1: in-process)")
    args = ap.parse_args()
    if args.db in ("sqlite", "both"):
        d = tempfile.mkdtemp()
        run(f"sqlite:///{d}/bench.db", args.fills, args.processes)
    if args.db in ("postgresql", "both"):
        name = f"reconcile_bench_{os.getpid()}"
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        try:
            run(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", args.fills, args.processes)
        finally:
            with psycopg.connect("host=127.0.0.1 user=postgres dbname=test", autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
