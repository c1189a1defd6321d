"""The whole ``reconcile export gains`` command against RP2's engine, on one 100k-trade history.

    pip install rp2          # benchmark-only dependency, not in pyproject
    python benchmarks/gains_vs_rp2.py [--trades 100000] [--method hifo] [--keep DIR]

Setup (not timed): the deterministic spot history of ``booking_bench.generate`` (one BTC buy or
sell every 10-22 minutes from 2022-01-01, about three years) becomes USDC-quoted ``spot-trade``
journal entries (``ledger.posting.trade``) in a fresh SQLite ledger, with the unit prices
valuation would attach (BTC at the fill price, USDC at par).

Timed, in this process:

- ours: ``reconcile.cli.main(["export", "gains", "--all-years", "--method", M, "--format",
  "csv", ...])``: configuration, the schema-revision check, the ledger read, the bridge, the
  engine, and the CSV of every year's rows. The first run is reported apart (it also imports the
  modules the command loads lazily: SQLAlchemy, alembic, the engine); then ``--repeat`` runs
  (default 5), each its own complete command with nothing carried over, half of them before
  RP2's run and half after it (the speed of a shared machine drifts; this way a drift moves both
  sides alike), reported as best and median, wall clock and CPU time (this process's and its
  reader child's: the figure load from other processes on the machine moves least; on two cores
  it can exceed the wall clock). ``--all-years`` exports every tax year in one file;
  the command would otherwise be run once per year, reading and booking the whole ledger each
  time (the per-year figures are printed too, with ``--per-year``).
- RP2: ``rp2.tax_engine.compute_tax`` on the same trades (its transaction objects are built
  beforehand and reported separately; no spreadsheet I/O), in a child Python process of its own,
  so that neither side runs in a heap the other left behind.

The ratio is RP2's ``compute_tax`` wall time over our best and our median run, and its CPU time
over our median CPU time (the figure load from other processes moves least); the exit code is 0
only if the pieces agree and the median wall-clock ratio reaches 20. The load average is printed with
each side. Then every (disposal, lot) piece of the CSV is compared with RP2's: quantity, cost basis and
gain to the cent; the holding term away from acquisition anniversaries (RP2 counts
``(sell - buy).days >= 365``, TAX-RULES §1.3). Our command runs in this process, its modules
imported before the timed runs (loaded once, as by the console script before it parses its
arguments).
"""

from __future__ import annotations

import argparse
import csv
import gc
import os
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from booking_vs_rp2 import DISAGREEMENTS, RP2_METHODS, agreement, history, run_rp2_side  # noqa: E402

from ledger.booking import Acquisition, Disposal  # noqa: E402

CENT = Decimal("0.01")
ACCOUNT = "main"


def load_ledger(events: list, url: str) -> None:
    """Write ``events`` as spot-trade entries with unit prices into the ledger at ``url``."""
    from ledger.db import make_engine, upgrade
    from ledger.journal import Journal
    from ledger.money import EXACT
    from ledger.posting import Source, trade

    engine = make_engine(url)
    upgrade(engine)
    usd, one = "USD", Decimal(1)
    entries = []
    for e in events:
        buy = isinstance(e, Acquisition)
        value = e.cost if buy else e.proceeds
        price = EXACT.divide(value, e.quantity)
        entry = trade(Source(ACCOUNT, "history/fills", e.id, e.time), kind="spot-trade", base="BTC", quote="USDC",
                      side="buy" if buy else "sell", quantity=e.quantity, quote_quantity=value)
        legs = tuple(
            leg._replace(unit_price=price if leg.asset == "BTC" else one, price_currency=usd) if leg.account.startswith("Assets:") else leg
            for leg in entry.legs
        )
        entries.append(entry._replace(legs=legs))
    with engine.begin() as conn:
        Journal(conn).post(entries)
    engine.dispose()


def run_command(url: str, out: Path, method: str, year: int | None, *, cpu: bool = False) -> float | tuple[float, float]:
    """Seconds of one whole command (wall clock; with ``cpu``, also this process's CPU time)."""
    from reconcile.cli import main

    argv = ["export", "gains", "--method", method, "--jurisdiction", "generic", "--format", "csv", "--out", str(out), "--db", url]
    argv += ["--all-years"] if year is None else ["--year", str(year)]
    gc.collect()
    c0 = time.process_time() + _children_cpu()
    t0 = time.perf_counter()
    code = main(argv)
    seconds = time.perf_counter() - t0
    cpu_s = time.process_time() + _children_cpu() - c0  # with the child that reads the ledger (ledger/sqlite_reader.py)
    if code != 0:
        raise SystemExit(f"reconcile export gains exited {code}")
    return (seconds, cpu_s) if cpu else seconds


def _children_cpu() -> float:
    """CPU seconds of this process's finished children (the command's reader child among them)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _rp2_with_cpu(events: list, method: str) -> tuple[float, float, list[tuple], float]:
    """``run_rp2_side``, plus the CPU time of ``compute_tax``: its clock reads (build start and end,
    compute start and end) also record this process's CPU time."""
    import booking_vs_rp2

    cpu: list[float] = []

    class _Clock:
        @staticmethod
        def perf_counter() -> float:
            cpu.append(time.process_time())
            return time.perf_counter()

    real = booking_vs_rp2.time
    booking_vs_rp2.time = _Clock  # type: ignore[assignment]
    try:
        build_s, rp2_s, theirs = run_rp2_side(events, method)
    finally:
        booking_vs_rp2.time = real
    return build_s, rp2_s, theirs, cpu[3] - cpu[2]


def _rp2_in_own_process(trades: int, method: str, work: Path):
    """``_rp2_with_cpu`` on the same generated history, in a child Python process: each side runs in
    a heap of its own (RP2's hundreds of thousands of objects, once freed, leave this process's heap
    fragmented, which slowed our later runs by a tenth). None if RP2 is not importable."""
    import pickle
    import subprocess

    out = work / "rp2-result.pickle"
    code = subprocess.call([sys.executable, __file__, "--rp2-only", "--trades", str(trades), "--method", method, "--rp2-out", str(out)])
    if code == 3:
        return None
    if code != 0:
        raise SystemExit(f"the RP2 process exited {code}")
    with out.open("rb") as fh:
        return pickle.load(fh)


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def compare_csv(path: Path, theirs: list[tuple], events: list) -> dict[str, int]:
    """Match the CSV's pieces with RP2's by (disposal id, lot id)."""
    prefix = f"{ACCOUNT}:"

    def bare(ref: str) -> str:
        return ref[len(prefix):].split("#", 1)[0] if ref else ""

    with path.open(newline="", encoding="utf-8") as fh:
        ours = [(bare(r["disposal_id"]), bare(r["lot_id"]), Decimal(r["quantity"]), Decimal(r["cost_basis"]), Decimal(r["gain"]), r["term"] == "long")
                for r in csv.DictReader(fh)]
    return agreement(ours, theirs, events)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--method", default="hifo", choices=RP2_METHODS)
    parser.add_argument("--keep", help="directory for the ledger and the CSV (default: a temporary one)")
    parser.add_argument("--per-year", action="store_true", help="also time one --year run per tax year")
    parser.add_argument("--no-rp2", action="store_true", help="time our command only")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of our command after the first (default 5)")
    parser.add_argument("--rp2-only", action="store_true", help=argparse.SUPPRESS)  # the RP2 side's own process
    parser.add_argument("--rp2-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rp2_only:
        import pickle

        try:
            result = _rp2_with_cpu(history(args.trades), args.method)
        except ImportError as exc:
            print(f"RP2 not importable ({exc})", file=sys.stderr)
            return 3
        with open(args.rp2_out, "wb") as fh:
            pickle.dump(result, fh)
        return 0
    work = Path(args.keep or tempfile.mkdtemp(prefix="gains-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "ledger.db"
    url = f"sqlite:///{db}"
    out = work / "gains.csv"

    t0 = time.perf_counter()
    events = history(args.trades)
    if db.exists():
        db.unlink()
    load_ledger(events, url)
    print(f"setup: {args.trades:,} trades ({sum(isinstance(e, Disposal) for e in events):,} sells), {events[0].time:%Y-%m-%d} to "
          f"{events[-1].time:%Y-%m-%d}, ledger {db} ({db.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s", flush=True)
    import reconcile.cli  # noqa: F401 - imported before timing, as the console script does

    os.environ.pop("RECONCILE_CONFIG", None)
    first = run_command(url, out, args.method, None)
    with out.open(encoding="utf-8") as fh:
        rows = sum(1 for _ in fh) - 1
    print(f"ours  {args.method}: {first:7.2f} s  first run, with the command's lazy imports ({rows:,} rows in {out}; {load()})", flush=True)
    repeat = max(args.repeat, 1)
    # The machine's speed drifts (other tenants of the host): half our runs go before RP2's and half
    # after it, so that a drift during the run moves both sides alike.
    before = repeat if args.no_rp2 else (repeat + 1) // 2
    runs = [run_command(url, out, args.method, None, cpu=True) for _ in range(before)]
    print(f"ours  {args.method}: {len(runs)} runs before RP2's: {', '.join(f'{w:.2f}' for w, _ in runs)} s; {load()}", flush=True)
    if args.per_year:
        years = range(events[0].time.year, events[-1].time.year + 1)
        total = 0.0
        for y in years:
            s = run_command(url, work / f"gains-{y}.csv", args.method, y)
            total += s
            print(f"        --year {y}: {s:6.2f} s")
        print(f"        per-year runs together: {total:.2f} s")
    rp2 = None
    if not args.no_rp2:
        rp2 = _rp2_in_own_process(args.trades, args.method, work)
        if rp2 is None:
            print("RP2 not importable; install it with: pip install rp2")
            return 1
        build_s, rp2_s, theirs, rp2_cpu = rp2
        print(f"rp2   {args.method}: {rp2_s:7.2f} s  compute_tax() ({len(theirs):,} pieces; +{build_s:.2f} s building its transaction objects; {load()})")
        print(f"rp2   {args.method}: {rp2_cpu:7.2f} s  CPU time of compute_tax()", flush=True)
        after = [run_command(url, out, args.method, None, cpu=True) for _ in range(repeat - before)]
        print(f"ours  {args.method}: {len(after)} runs after RP2's: {', '.join(f'{w:.2f}' for w, _ in after)} s; {load()}", flush=True)
        runs += after
    walls = sorted(w for w, _ in runs)
    cpus = sorted(c for _, c in runs)
    ours, ours_median = walls[0], statistics.median(walls)
    print(f"ours  {args.method}: {ours:7.2f} s  best, {ours_median:.2f} s median of {len(runs)} runs of the whole `reconcile export gains --all-years`"
          f"; CPU best {cpus[0]:.2f} s, median {statistics.median(cpus):.2f} s", flush=True)
    if rp2 is None:
        return 0
    print(f"ratio rp2 / ours: {rp2_s / ours:.1f}x best, {rp2_s / ours_median:.1f}x median, {rp2_s / first:.1f}x first run (wall clock); "
          f"{rp2_cpu / statistics.median(cpus):.1f}x median CPU time  (target >= 20x)")
    counts = compare_csv(out, theirs, events)
    width = max(len(k) for k in counts)
    for k, v in counts.items():
        print(f"  {k:<{width}}  {v:,}")
    agree = not any(counts[k] for k in DISAGREEMENTS)
    print("AGREE: every piece matches to the cent; terms differ only within 2 days of 365 days held" if agree else "DISAGREE: see counts above")
    return 0 if agree and rp2_s / ours_median >= 20 else 2


if __name__ == "__main__":
    raise SystemExit(main())
