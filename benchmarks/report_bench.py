"""Report speed: `reconcile report` over a year of 1,000,000 fills, the workbook and the statement each.

    python benchmarks/report_bench.py [--fills 1000000] [--keep DIR] [--no-compare]

Builds a SQLite ledger of N spot and perp fills in 2025 (raw records stored and posted as
``benchmarks/posting_bench.py`` does, then valued offline: USDC-quoted fills price themselves) and
an exchange snapshot taken just after the year (as a synced account has one: the report reconciles
at the period end, the perpetuals' proof included), not timed. Then times, as a user starts them, one process each:

    reconcile report --year 2025 --format xlsx --out DIR --allow-incomplete
    reconcile report --year 2025 --format html --out DIR --allow-incomplete

and prints wall time and the peak RSS of each process. Targets: 60 s and 1.5 GiB each.
``--allow-incomplete`` because the generated account has sells before buys in some markets
(overspend findings); the figures are written marked incomplete, as a user would get them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
try:
    from _results import measure, record  # run as a script: its folder is on sys.path
except ImportError:  # imported as benchmarks.<name> (tests reuse a benchmark's generators)
    from benchmarks._results import measure, record

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))



def build(url: str, n: int) -> None:
    from posting_bench import store_raw

    from importers.sync import repost
    from ledger.db import make_engine, upgrade
    from ledger.prices import unpriced_count, value_ledger
    from ledger.valuation import ValuationSettings

    engine = make_engine(url)
    upgrade(engine)
    t = time.perf_counter()
    store_raw(engine, n)
    repost(engine)
    posted = time.perf_counter() - t
    t = time.perf_counter()
    vr = value_ledger(engine, ValuationSettings())
    with engine.connect() as conn:
        left = unpriced_count(conn)
    engine.dispose()
    print(f"ledger: {n:,} fills stored and posted in {posted:.0f} s, valued in {time.perf_counter() - t:.0f} s "
          f"({vr.priced:,} values; {left:,} unpriced) (not timed)", flush=True)


def snapshot(url: str) -> bool:
    """Give the ledger the exchange snapshot a synced account has, taken just after the year (2026-01-01):
    the ledger's own wallet figures and open perp positions, so the report's period-end check compares
    and proves as on a real account (rolled back to the period end). Returns whether one was added."""
    from datetime import datetime, timezone

    from ledger.books import resolve_settings
    from ledger.db import make_engine
    from ledger.perps import perp_books
    from ledger.reconcile import _ledger_figures
    from ledger.store import SnapshotLineIn, save_snapshot
    from reconcile.config import ReportingConfig

    engine = make_engine(url)
    taken = datetime(2026, 1, 1, tzinfo=timezone.utc)
    with engine.begin() as conn:
        if conn.exec_driver_sql("SELECT COUNT(*) FROM snapshots").scalar_one():
            engine.dispose()
            return False
        figures = _ledger_figures(conn, "main", taken)
        books = perp_books(conn, resolve_settings(ReportingConfig(jurisdiction="us", method="fifo")), end=taken)
        positions = [{"symbol": p.market, "netQuantity": format(p.quantity, "f"), "entryPrice": format(p.exchange_entry, "f"), "positionId": str(i)}
                     for i, p in enumerate(books.positions)]
        balances = {a: {"available": format(q, "f"), "locked": "0", "staked": "0"} for (w, a), q in figures.items() if w == "Spot"}
        save_snapshot(conn, venue_account="main", taken_at=taken, lines=[SnapshotLineIn(w, a, q) for (w, a), q in figures.items()],
                      payload={"balances": balances, "positions": positions, "borrowLendPositions": [], "collateral": {}})
    engine.dispose()
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fills", type=int, default=1_000_000)
    ap.add_argument("--keep", help="directory for the ledger and outputs (default: a temporary one); an existing ledger there is reused")
    ap.add_argument("--no-compare", action="store_true", help="time the report without the method comparison (one booking instead of six)")
    args = ap.parse_args(argv)
    work = Path(args.keep or tempfile.mkdtemp(prefix="report-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / f"ledger-{args.fills}.db"
    url = f"sqlite:///{db}"
    if not db.exists():
        build(url, args.fills)
    if snapshot(url):
        print("ledger: a year-end exchange snapshot added (the ledger's own figures; not timed)", flush=True)
    exe = [sys.executable, "-m", "reconcile.cli"] if False else [str(Path(sys.executable).with_name("reconcile"))]
    if not Path(exe[0]).exists():
        exe = [sys.executable, "-c", "import sys; from reconcile.cli import main; sys.exit(main(sys.argv[1:]))"]
    extra = ["--no-compare"] if args.no_compare else []
    print(f"machine: {os.cpu_count()} cores, shared with other work while measuring", flush=True)
    for fmt in ("html", "xlsx"):
        out = work / f"out-{fmt}"
        code, wall, cpu, rss, tail = measure([*exe, "report", "--db", url, "--year", "2025", "--format", fmt, "--out", str(out), "--allow-incomplete", *extra])
        sizes = ", ".join(f"{p.name} {p.stat().st_size / 2**20:,.1f} MiB" for p in sorted(out.glob("*")))
        verdict = "ok" if wall < 60 and rss < 1536 else "over target"
        print(f"report --format {fmt}{' --no-compare' if extra else ''}: exit {code}, {wall:.1f} s (CPU {cpu:.1f} s on both cores), peak RSS {rss:,.0f} MiB ({verdict}; targets 60 s, 1,536 MiB); {sizes}", flush=True)
        what = f"report --format {fmt}{' --no-compare' if extra else ''}, {args.fills:,} fills in a year"
        record("report", what, round(wall, 1), "s", target="< 60 s", ok=code == 0 and wall < 60)
        record("report", f"{what}: CPU (user+sys)", round(cpu, 1), "s")
        record("report", f"{what}: peak RSS", round(rss), "MiB", target="< 1536 MiB", ok=rss < 1536)
        if code != 0:
            print(tail)
    return 0


if __name__ == "__main__":
    sys.exit(main())
