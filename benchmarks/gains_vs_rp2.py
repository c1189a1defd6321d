"""The gains race: the whole `reconcile export gains` process against a whole RP2 process, per shape.

    pip install rp2          # benchmark-only dependency, not in pyproject
    python benchmarks/gains_vs_rp2.py [--trades 100000] [--method hifo] [--shapes simple,realistic]
                                      [--repeat 5] [--keep DIR] [--no-rp2]

For each shape, setup (not timed) writes a SQLite ledger of valued journal entries (the unit prices
valuation would attach) and a config file, then times, each as a whole process started as a user
starts it (interpreter start-up and imports included):

- ours: ``reconcile export gains --all-years --method M --config C --out F`` (the console script's
  module run by this interpreter), the first run reported on its own, then ``--repeat`` runs
  (median and best), half before RP2's run and half after it, so that a drift of the shared
  machine's speed moves both sides alike; and ``--year 2025`` the same way (it must cost no more
  than ``--all-years``). Peak RSS of each run (``wait4``).
- on the realistic shape, the other commands on the same booking path (whole processes, median of
  half the ``--repeat`` runs):
  ``export lots --at 2025-12-31``, ``check --at 2025-12-31`` (against the exchange's snapshot, which
  setup stores a minute after the last entry, before the year end: nothing to roll between it and
  the date; with the basis roll-forward)
  and ``statement --year 2025 --format html`` (which books the compared methods too).
- RP2: a child process that imports RP2, builds its transaction objects for every asset from the
  same trades (read from a pickle) and runs ``rp2.tax_engine.compute_tax`` per asset (RP2's
  generic country, the same method): the whole process is timed, like ours.

Shapes:

- ``simple``: one asset (BTC), one account, no deposit, jurisdiction ``generic``.
- ``realistic``: BTC, ETH and SOL traded for USDC on two sub-accounts (``main`` and ``sub``, 9:1),
  an opening USDC deposit, an opening BTC deposit of unknown basis covered by an opening-lots file,
  withdrawals of BTC to the user's own wallet (with a fee in BTC) each deposited back three days
  later, transfers of ETH from ``main`` to ``sub`` (the deposit stamped a few seconds before the
  withdrawal, and account names on both sides of the alphabet), jurisdiction ``us`` with trades from
  2022 to 2025 (both sides of the per-account boundary on 2025-01-01). RP2 gets the same trades and
  the opening deposit; the handful of transfers are not given to it (they are not trades, and it
  would need its own per-wallet setup), so the agreement check runs on the simple shape only.

The exit code is 0 only if the simple shape's pieces agree with RP2's to the cent and every
shape's median ratio reaches 20.
"""

from __future__ import annotations

import argparse
import csv
import os
import pickle
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
try:
    from _results import record  # run as a script: its folder is on sys.path
except ImportError:  # imported as benchmarks.<name> (tests reuse a benchmark's generators)
    from benchmarks._results import record

UTC = timezone.utc
START = datetime(2022, 1, 1, tzinfo=UTC)
END = datetime(2025, 12, 31, tzinfo=UTC)
CENT = Decimal("0.01")
UNIT = Decimal("0.0001")
RP2_METHODS = ("fifo", "lifo", "hifo", "lofo")
#: CPU seconds of each timed process, in order (the machine may be shared: CPU time moves least).
CPU: list[float] = []


# --- histories -------------------------------------------------------------------------------------

def trades(n: int, assets: tuple[str, ...], accounts: tuple[tuple[str, int], ...], seed: int = 2024) -> list[tuple]:
    """``n`` spot trades (time, id, account, asset, side, quantity, usdc), prices a random walk in
    cents, sells never exceeding the account's holding, spread evenly from 2022 to the end of 2025."""
    rnd = random.Random(seed)
    step = (END - START) / n
    price = {a: 20_000_00 for a in assets}
    held = {(acct, a): 0 for acct, _ in accounts for a in assets}
    names = [acct for acct, w in accounts for _ in range(w)]
    out = []
    for i in range(n):
        t = START + step * i + timedelta(microseconds=rnd.randrange(1_000_000))
        acct = names[rnd.randrange(len(names))]
        asset = assets[rnd.randrange(len(assets))]
        price[asset] = max(100_00, price[asset] + rnd.randint(-300_00, 300_00))
        q = rnd.randint(1, 20_000)
        if held[acct, asset] > 0 and rnd.random() < 0.45:
            q = min(q, held[acct, asset])
            held[acct, asset] -= q
            side = "sell"
        else:
            held[acct, asset] += q
            side = "buy"
        qty = Decimal(q) * UNIT
        out.append((t, f"t{i:07d}", acct, asset, side, qty, Decimal(price[asset]) * CENT * qty))
    return out


def write_ledger(shape: str, n: int, work: Path) -> tuple[Path, list[tuple]]:
    """The shape's ledger and config in ``work``; returns the config and the trades (for RP2)."""
    from ledger.db import make_engine, upgrade
    from ledger.journal import Journal
    from ledger.money import EXACT
    from ledger.posting import Source, deposit, trade, withdrawal
    from ledger.db import balances
    from ledger.reconcile import WALLET_PREFIX
    from ledger.store import SnapshotLineIn, save_snapshot

    realistic = shape == "realistic"
    assets = ("BTC", "ETH", "SOL") if realistic else ("BTC",)
    accounts = (("main", 9), ("sub", 1)) if realistic else (("main", 1),)
    history = trades(n, assets, accounts)
    db = work / f"{shape}.db"
    if db.exists():
        db.unlink()
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    usd, one = "USD", Decimal(1)
    last_price: dict[str, Decimal] = {}

    def priced(entry, prices):
        legs = tuple(leg._replace(unit_price=prices.get(leg.asset, one), price_currency=usd) if leg.account.startswith("Assets:") else leg for leg in entry.legs)
        return entry._replace(legs=legs)

    entries = []
    if realistic:
        entries.append(priced(deposit(Source("main", "capital/deposits", "usdc-open", START - timedelta(days=1)), asset="USDC", quantity=Decimal(10**9), internal=False), {}))
        entries.append(priced(deposit(Source("main", "capital/deposits", "btc-open", START - timedelta(hours=12)), asset="BTC", quantity=Decimal(5), internal=False),
                              {"BTC": Decimal(20_000)}))
        entries.append(priced(deposit(Source("sub", "capital/deposits", "usdc-open-sub", START - timedelta(days=1)), asset="USDC", quantity=Decimal(10**8), internal=False), {}))
    every = max(n // 40, 1)
    for k, (t, id_, acct, asset, side, qty, usdc) in enumerate(history):
        price = EXACT.divide(usdc, qty)
        last_price[asset] = price
        fee = (usdc * Decimal("0.001")).quantize(CENT) if realistic and k % 3 == 0 else Decimal(0)  # RP2 gets no fees: none in the simple shape
        e = trade(Source(acct, "history/fills", id_, t), kind="spot-trade", base=asset, quote="USDC", side=side, quantity=qty, quote_quantity=usdc,
                  fee=fee, fee_asset="USDC" if fee else None)
        entries.append(priced(e, {asset: price}))
        if realistic and k % every == every // 2 and "BTC" in last_price:
            p = last_price["BTC"]
            out_at = t + timedelta(seconds=1)
            back_at = t + timedelta(days=3)
            entries.append(priced(withdrawal(Source("main", "capital/withdrawals", f"w{k}", out_at), asset="BTC", quantity=Decimal("0.05"), fee=Decimal("0.0001"),
                                             internal=False), {"BTC": p}))
            entries.append(priced(deposit(Source("main", "capital/deposits", f"d{k}", back_at), asset="BTC", quantity=Decimal("0.05"), internal=False), {"BTC": p}))
        if realistic and k % (every * 4) == every and "ETH" in last_price:  # ETH main -> sub: the deposit stamped 3 s before the withdrawal
            p = last_price["ETH"]
            out_at = t + timedelta(seconds=5)
            entries.append(priced(deposit(Source("sub", "capital/deposits", f"ti{k}", out_at - timedelta(seconds=3)), asset="ETH", quantity=Decimal("0.01"), internal=True), {"ETH": p}))
            entries.append(priced(withdrawal(Source("main", "capital/withdrawals", f"to{k}", out_at), asset="ETH", quantity=Decimal("0.01"), fee=Decimal(0), internal=True),
                                  {"ETH": p}))
    entries.sort(key=lambda e: e.time)
    with engine.begin() as conn:
        Journal(conn).post(entries)
        if realistic:  # the exchange's balances a minute after the last entry, as a sync's snapshot: the ledger reconciles
            taken = entries[-1].time + timedelta(minutes=1)
            held = balances(conn)
            for acct, _ in accounts:
                lines = [SnapshotLineIn(wallet, asset, q) for wallet, prefix in WALLET_PREFIX.items() for (name, asset), q in sorted(held.items())
                         if q and name.startswith(prefix.format(acct=acct))]
                save_snapshot(conn, venue_account=acct, taken_at=taken, payload={"benchmark": True}, lines=lines)
    engine.dispose()
    cfg = work / f"{shape}.toml"
    lines = ["[database]", f'url = "sqlite:///{db}"', "", "[reporting]", 'currency = "USD"', f'jurisdiction = "{"us" if realistic else "generic"}"', 'method = "fifo"']
    if realistic:
        (work / "opening-lots.csv").write_text("account,asset,quantity,acquired,basis\nmain,BTC,5,2021-06-01T00:00:00Z,150000\n")
        lines.append(f'opening_lots = "{work / "opening-lots.csv"}"')
    cfg.write_text("\n".join(lines) + "\n")
    return cfg, history


# --- timing ----------------------------------------------------------------------------------------

#: Runs one command and reports its wall clock, CPU time and peak RSS: a small fresh interpreter of its
#: own, so that the command's process is not forked from this one (a child forked from a large parent
#: reports the parent's resident pages as its own peak until it execs).
_LAUNCH = """
import os, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
_, status, usage = os.wait4(p.pid, 0)
seconds = time.perf_counter() - t0
err = p.stderr.read().decode(errors="replace")
print(os.waitstatus_to_exitcode(status), seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)
sys.stderr.write(err[-400:])
"""


def run(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one whole process; its CPU seconds are added to ``CPU``."""
    done = subprocess.run([sys.executable, "-I", "-c", _LAUNCH, *argv], capture_output=True, text=True, check=True)
    code, seconds, cpu, rss_kb = done.stdout.split()
    if int(code) != 0:
        raise SystemExit(f"{' '.join(argv[:6])} exited {code}: {done.stderr.strip()}")
    CPU.append(float(cpu))
    return float(seconds), int(rss_kb) / 1024


def ours(cfg: Path, out: Path, method: str, year: int | None) -> tuple[float, float]:
    argv = [sys.executable, "-m", "reconcile.cli", "export", "gains", "--method", method, "--config", str(cfg), "--out", str(out), "--quiet"]
    argv += ["--all-years"] if year is None else ["--year", str(year)]
    return run(argv)


def other_commands(cfg: Path, work: Path, method: str, repeat: int) -> dict[str, tuple[float, float]]:
    """The other commands on the same booking path, each a whole process as a user starts it, the
    median wall clock and the peak RSS of ``repeat`` runs: the lots at the year end, the check at the
    year end (against the snapshot, the basis roll-forward booked; the config's method), and the
    year's statement (which books the configured method and, for its comparison, the others too)."""
    base = [sys.executable, "-m", "reconcile.cli"]
    at = ["--at", "2025-12-31"]
    commands = {
        "export lots --at": [*base, "export", "lots", *at, "--method", method, "--config", str(cfg), "--out", str(work / "lots-2025.csv")],
        "check --at": [*base, "check", *at, "--config", str(cfg)],
        "statement --year 2025": [*base, "statement", "--year", "2025", "--format", "html", "--method", method, "--config", str(cfg),
                                  "--out", str(work / "statement-2025.html")],
    }
    out = {}
    for name, argv in commands.items():
        runs = [run(argv) for _ in range(repeat)]
        out[name] = (statistics.median(w for w, _ in runs), max(r for _, r in runs))
    return out


def rp2_process(history_file: Path, method: str, out: Path) -> tuple[float, float]:
    return run([sys.executable, __file__, "--rp2-only", str(history_file), "--method", method, "--rp2-out", str(out)])


def rp2_main(history_file: str, method: str, out: str) -> int:
    """The RP2 side, in its own process: every asset's trades through ``compute_tax``."""
    with open(history_file, "rb") as fh:
        history, opening = pickle.load(fh)
    workdir = tempfile.mkdtemp(prefix="rp2-bench-")
    os.chdir(workdir)  # RP2 writes ./log on import
    os.environ.setdefault("CURRENCY_CODE", "USD")
    os.environ.setdefault("LONG_TERM_CAPITAL_GAINS", "365")
    import logging
    from importlib import import_module

    from prezzemolo.avl_tree import AVLTree
    from rp2.accounting_engine import AccountingEngine
    from rp2.configuration import MAX_DATE, MIN_DATE, Configuration
    from rp2.in_transaction import InTransaction
    from rp2.input_data import InputData
    from rp2.logger import LOGGER
    from rp2.out_transaction import OutTransaction
    from rp2.plugin.country.generic import Generic
    from rp2.rp2_decimal import RP2Decimal
    from rp2.tax_engine import compute_tax
    from rp2.transaction_set import TransactionSet

    LOGGER.setLevel(logging.WARNING)
    assets = sorted({h[3] for h in history})
    holders = sorted({h[2] for h in history})
    ini = Path(workdir) / "bench.ini"
    from booking_vs_rp2 import _RP2_INI

    ini.write_text(_RP2_INI.replace("assets = BTC", f"assets = {', '.join(assets)}").replace("holders = main", f"holders = {', '.join(holders)}"), encoding="utf-8")
    config = Configuration(str(ini), Generic())
    zero = RP2Decimal("0")
    rows = []
    for asset in assets:
        ins = TransactionSet(config, "IN", asset, MIN_DATE, MAX_DATE)
        outs = TransactionSet(config, "OUT", asset, MIN_DATE, MAX_DATE)
        intras = TransactionSet(config, "INTRA", asset, MIN_DATE, MAX_DATE)
        row = 0
        for t, qty, cost, holder in opening.get(asset, ()):
            row += 1
            ins.add_entry(InTransaction(config, t.isoformat(), asset, "Backpack", holder, "BUY", RP2Decimal(str(cost / qty)), RP2Decimal(str(qty)), fiat_fee=zero,
                                        row=row, unique_id=f"opening-{row}"))
        for t, id_, acct, a, side, qty, usdc in history:
            if a != asset:
                continue
            row += 1
            price, q = RP2Decimal(str(usdc / qty)), RP2Decimal(str(qty))
            if side == "buy":
                ins.add_entry(InTransaction(config, t.isoformat(), asset, "Backpack", acct, "BUY", price, q, fiat_fee=zero, row=row, unique_id=id_))
            else:
                outs.add_entry(OutTransaction(config, t.isoformat(), asset, "Backpack", acct, "SELL", price, q, zero, fiat_fee=zero, row=row, unique_id=id_))
        years: AVLTree = AVLTree()
        years.insert_node(MIN_DATE.year, import_module(f"rp2.plugin.accounting_method.{method}").AccountingMethod())
        computed = compute_tax(config, AccountingEngine(years_2_methods=years), InputData(asset, ins, outs, intras))
        for gl in computed.gain_loss_set:
            rows.append((gl.taxable_event.unique_id, gl.acquired_lot.unique_id if gl.acquired_lot else "", Decimal(gl.crypto_amount),
                         Decimal(gl.fiat_cost_basis), Decimal(gl.fiat_gain), gl.is_long_term_capital_gains()))
    with open(out, "wb") as fh:
        pickle.dump(rows, fh)
    return 0


def agreement_simple(path: Path, theirs: list[tuple], history: list[tuple]) -> dict[str, int]:
    """The simple shape's CSV pieces against RP2's, by (trade id, lot trade id)."""
    from booking_vs_rp2 import agreement

    from ledger.booking import Acquisition, Disposal

    def bare(ref: str) -> str:
        return ref.split(":")[-1].split("#", 1)[0] if ref else ""

    with path.open(newline="", encoding="utf-8") as fh:
        mine = [(bare(r["disposal_id"]), bare(r["lot_id"]), Decimal(r["quantity"]), Decimal(r["cost_basis"]), Decimal(r["gain"]), r["term"] == "long")
                for r in csv.DictReader(fh)]
    events = [Acquisition(id=i, account=a, asset=s, quantity=q, cost=u, time=t, source="", kind="trade") if side == "buy" else
              Disposal(id=i, account=a, asset=s, quantity=q, proceeds=u, time=t, source="", kind="trade") for t, i, a, s, side, q, u in history]
    return agreement(mine, theirs, events)


def load() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def race(shape: str, args, work: Path) -> tuple[float, bool | None]:
    t0 = time.perf_counter()
    cfg, history = write_ledger(shape, args.trades, work)
    print(f"[{shape}] setup: {args.trades:,} trades, ledger {work / (shape + '.db')} in {time.perf_counter() - t0:.1f} s", flush=True)
    out = work / f"gains-{shape}.csv"
    first, first_rss = ours(cfg, out, args.method, None)
    with out.open(encoding="utf-8") as fh:
        n_rows = sum(1 for _ in fh) - 1
    print(f"[{shape}] ours first run: {first:.2f} s, peak {first_rss:.0f} MiB ({n_rows:,} rows; {load()})", flush=True)
    before = (args.repeat + 1) // 2
    mark = len(CPU)
    runs = [ours(cfg, out, args.method, None) for _ in range(before)]
    ours_cpu = CPU[mark:]
    year_runs = [ours(cfg, work / f"gains-{shape}-2025.csv", args.method, 2025) for _ in range(before)]
    rp2_s = None
    agree = None
    if not args.no_rp2:
        hist_file = work / f"{shape}-history.pickle"
        opening = {"BTC": [(START - timedelta(hours=12), Decimal(5), Decimal(150000), "main")]} if shape == "realistic" else {}
        with hist_file.open("wb") as fh:
            pickle.dump((history, opening), fh)
        rp2_out = work / f"rp2-{shape}.pickle"
        rp2_s, rp2_rss = rp2_process(hist_file, args.method, rp2_out)
        rp2_cpu = CPU[-1]
        print(f"[{shape}] rp2 whole process: {rp2_s:.2f} s (CPU {rp2_cpu:.2f} s), peak {rp2_rss:.0f} MiB ({load()})", flush=True)
        mark = len(CPU)
        runs += [ours(cfg, out, args.method, None) for _ in range(args.repeat - before)]
        ours_cpu += CPU[mark:]
        year_runs += [ours(cfg, work / f"gains-{shape}-2025.csv", args.method, 2025) for _ in range(args.repeat - before)]
        if shape == "simple":
            with rp2_out.open("rb") as fh:
                theirs = pickle.load(fh)
            counts = agreement_simple(out, theirs, history)
            from booking_vs_rp2 import DISAGREEMENTS

            agree = not any(counts[k] for k in DISAGREEMENTS)
            print(f"[{shape}] agreement with RP2: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    others = other_commands(cfg, work, args.method, max(1, (args.repeat + 1) // 2)) if shape == "realistic" else {}
    walls = sorted(w for w, _ in runs)
    median = statistics.median(walls)
    ymed = statistics.median(sorted(w for w, _ in year_runs))
    peak = max(r for _, r in runs)
    line = (f"[{shape}] ours --all-years: best {walls[0]:.2f} s, median {median:.2f} s of {len(runs)}; --year 2025: median {ymed:.2f} s; peak {peak:.0f} MiB")
    cpu_median = statistics.median(ours_cpu)
    line += f"; CPU median {cpu_median:.2f} s"
    if rp2_s is not None:
        line += (f"; ratio rp2/ours: {rp2_s / median:.1f}x median, {rp2_s / walls[0]:.1f}x best, {rp2_s / first:.1f}x first run (target >= 20x), "
                 f"{rp2_cpu / cpu_median:.1f}x CPU time")
    print(line, flush=True)
    what = f"{shape}, {args.method}, {args.trades:,} trades"
    record("gains export", f"{what}: first run", round(first, 2), "s")
    record("gains export", f"{what}: median --all-years", round(median, 2), "s",
           target="< 15 s at 1M" if args.trades >= 1_000_000 else "", ok=median < 15 if args.trades >= 1_000_000 else None)
    record("gains export", f"{what}: median --year 2025", round(ymed, 2), "s", target="<= --all-years", ok=ymed <= median * 1.05)
    record("gains export", f"{what}: peak RSS", round(peak), "MiB", target="< 1024 MiB", ok=peak < 1024)
    for name, (wall, rss) in others.items():
        print(f"[{shape}] {name}: median {wall:.2f} s ({wall / median:.2f}x export gains), peak {rss:.0f} MiB", flush=True)
        same = name != "statement --year 2025"  # the statement also books the compared methods (docs/reports.md)
        record("gains export", f"{what}: {name}", round(wall, 2), "s", target="<= 1.3x export gains" if same else "",
               ok=wall <= 1.3 * median if same else None)
        record("gains export", f"{what}: {name}: peak RSS", round(rss), "MiB", target="< 1024 MiB", ok=rss < 1024)
    if rp2_s is not None:
        record("gains export", f"{what}: RP2 whole process", round(rp2_s, 2), "s")
        record("gains export", f"{what}: RP2 / ours (median)", round(rp2_s / median, 1), "x", target=">= 20x", ok=rp2_s / median >= 20)
    return median, (agree if rp2_s is None else (agree is not False and rp2_s / median >= 20))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--method", default="hifo", choices=RP2_METHODS)
    parser.add_argument("--shapes", default="simple,realistic")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", help="directory for the ledgers and CSVs (default: a temporary one)")
    parser.add_argument("--no-rp2", action="store_true")
    parser.add_argument("--rp2-only", help=argparse.SUPPRESS)
    parser.add_argument("--rp2-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rp2_only:
        return rp2_main(args.rp2_only, args.method, args.rp2_out)
    work = Path(args.keep or tempfile.mkdtemp(prefix="gains-race-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.pop("RECONCILE_CONFIG", None)
    os.environ.pop("RECONCILE_DB", None)
    results = {shape: race(shape, args, work) for shape in args.shapes.split(",")}
    simplest = min(m for m, _ in results.values())
    print("shape        median   vs simplest")
    for shape, (m, _) in results.items():
        print(f"{shape:<12} {m:6.2f} s  {m / simplest:.2f}x (target <= 1.3x)")
        if len(results) > 1:
            record("gains export", f"{shape} / simplest shape", round(m / simplest, 2), "x", target="<= 1.3x", ok=m / simplest <= 1.3)
    ok = all(ok is not False for _, ok in results.values()) and all(m / simplest <= 1.3 for m, _ in results.values())
    return 0 if ok else 2


if __name__ == "__main__":
    raise SystemExit(main())
