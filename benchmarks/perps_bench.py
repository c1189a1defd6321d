"""Perpetuals speed: 1,000,000 perp fills, their position lots and the whole proof, as a user runs it.

    python benchmarks/perps_bench.py [--fills 1000000] [--seed 1]

Setup (not timed): generates ``--fills`` perpetual fills on three markets with the exchange's own
rules (``importers.backpack.simulator.book.Book``: entry price, realized P&L at 28 digits), their
``RealizePnl``/``TradingFees`` settlements every 50 fills per market (whole USDC units, the remainder
carried), hourly-style ``FundingPayment`` settlements with their ``history/funding`` rows,
``history/position`` rows, one USDC deposit, and a snapshot of the end state (USDC balance, open
positions with entry, mark and unrealized P&L); stores them as raw records into SQLite and derives
the journal with ``importers.sync.repost``.

Timed: ``reconcile check --db URL --json`` in a fresh process (the balance check, the booking of
every fill by average and fifo, and every equation of the perpetuals' proof), then
``reconcile export perps --year Y --format csv`` and ``--format xlsx`` in others. Prints each process's
wall time, CPU time (user + sys, its children included: the check's cycle child) and peak RSS. Targets:
under 20 s, under 1 GiB. On a loaded machine compare the CPU figures (the load average is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from importers.backpack.endpoints import ENDPOINTS
from importers.backpack.simulator.book import POSITION_CONTEXT, Book
from importers.sync import repost
from ledger.bulk import allocate_ids, bulk_insert
from ledger.types import db_time
from ledger.db import make_engine, upgrade
from ledger.store import SnapshotLineIn, save_snapshot
try:
    from _results import record  # run as a script: its folder is on sys.path
except ImportError:  # imported as benchmarks.<name> (tests reuse a benchmark's generators)
    from benchmarks._results import record

MARKETS = (("SOL_USDC_PERP", 15000, 2, 2), ("BTC_USDC_PERP", 600000, 1, 5), ("ETH_USDC_PERP", 300000, 2, 4))
UNIT = Decimal("0.000001")
T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def _ts(t: datetime, us: int = 0) -> str:
    return (t + timedelta(microseconds=us)).strftime("%Y-%m-%dT%H:%M:%S.%f")


def generate(n: int, seed: int):
    """Yield (endpoint, record) in time order, and return the end state."""
    rng = random.Random(seed)
    book = Book()
    ticks = {m: start for m, start, _pd, _qd in MARKETS}
    pending = {m: Decimal(0) for m, *_ in MARKETS}
    fees = {m: Decimal(0) for m, *_ in MARKETS}
    count = {m: 0 for m, *_ in MARKETS}
    seq = 1
    positions: dict[str, str] = {}
    out = [("deposits", {"id": 1, "toAddress": "a", "fromAddress": "b", "source": "solana", "status": "confirmed", "transactionHash": "0x1",
                         "symbol": "USDC", "quantity": "100000000", "createdAt": _ts(T0), "fiatAmount": None, "fiatCurrency": None,
                         "institutionBic": None, "platformMemo": None})]
    usdc = Decimal(100_000_000)
    t = T0 + timedelta(seconds=1)
    for i in range(n):
        m, _s, pd, qd = MARKETS[rng.randrange(3)]
        ticks[m] = max(10, ticks[m] + rng.randrange(-30, 31))
        price = Decimal(ticks[m]).scaleb(-pd)
        pos = book.positions.get(m)
        net = pos.net if pos is not None else Decimal(0)
        qty = Decimal(rng.randrange(1, 400)).scaleb(-qd)
        if net and rng.random() < 0.45:  # reduce, close or flip
            side = "Ask" if net > 0 else "Bid"
            r = rng.random()
            qty = abs(net) if r < 0.3 else (abs(net) + qty if r < 0.4 else min(qty, abs(net)))
        else:
            side = "Bid" if (net > 0 or (net == 0 and rng.random() < 0.5)) else "Ask"
        system = "LiquidatePositionOnBook" if rng.random() < 0.001 else None
        fee = (qty * price * Decimal("0.0005")).quantize(UNIT)
        t += timedelta(milliseconds=rng.randrange(1, 3000))
        rec = {"clientId": None, "fee": format(fee, "f"), "feeSymbol": "USDC", "isMaker": False, "orderId": str(10**10 + i), "price": format(price, "f"),
               "quantity": format(qty, "f"), "side": side, "symbol": m, "systemOrderType": system, "timestamp": _ts(t)[:-3], "tradeId": i + 1}
        realized = book.fill(rec, 0)
        out.append(("fills", rec))
        p = book.positions[m]
        positions[p.position_id] = m
        pending[m] += realized
        fees[m] += fee
        count[m] += 1
        if count[m] % 50 == 0:  # the market's settlements, a millisecond later
            t += timedelta(milliseconds=1)
            for source, qv in (("RealizePnl", pending[m].quantize(UNIT)), ("TradingFees", -fees[m])):
                if qv:
                    out.append(("settlement", {"quantity": format(qv, "f"), "source": source, "subaccountId": None, "timestamp": _ts(t, 123),
                                               "userId": 1, "positionId": p.position_id, "engineSequence": seq}))
                    seq += 1
                    usdc += qv
            pending[m] -= pending[m].quantize(UNIT)
            fees[m] = Decimal(0)
            if p.net:  # funding at the next whole hour
                hour = (t + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
                if hour > t:
                    rate = Decimal(rng.randrange(-15, 46)).scaleb(-6)
                    fq = (-(p.net * price * rate)).quantize(UNIT)
                    if fq:
                        t = hour
                        out.append(("funding", {"userId": 1, "subaccountId": None, "symbol": m, "fundingRate": format(rate, "f"),
                                                "intervalEndTimestamp": hour.strftime("%Y-%m-%dT%H:%M:%S"), "quantity": format(fq, "f")}))
                        out.append(("settlement", {"quantity": format(fq, "f"), "source": "FundingPayment", "subaccountId": None,
                                                   "timestamp": _ts(hour, 77), "userId": 1, "positionId": p.position_id, "engineSequence": seq}))
                        seq += 1
                        usdc += fq
                        t += timedelta(milliseconds=1)
    for pid, m in positions.items():
        out.append(("positionHistory", {"id": pid, "symbol": m, "state": "Closed", **{k: "0" for k in (
            "netQuantity", "netExposureQuantity", "netExposureNotional", "netCost", "markPrice", "entryPrice", "cumulativePnlRealized", "unrealizedPnl",
            "fundingQuantity", "interest", "liquidated", "imf", "fees", "closedVolume", "liquidationFees")}, "closingPrice": None, "accountLeverage": None,
            "openedAt": _ts(T0), "closedAt": None}))
    open_positions = []
    for m, pos in sorted(book.positions.items()):
        if pos.net:
            mark = Decimal(ticks[m]).scaleb(-dict((a, c) for a, _b, c, _d in MARKETS)[m])
            upnl = POSITION_CONTEXT.multiply(pos.net, POSITION_CONTEXT.subtract(mark, pos.entry))
            open_positions.append({"symbol": m, "netQuantity": format(pos.net, "f"), "entryPrice": format(pos.entry, "f"), "markPrice": format(mark, "f"),
                                   "pnlUnrealized": format(upnl, "f"), "positionId": pos.position_id, "netCost": "0", "pnlRealized": "0"})
    return out, usdc, open_positions, t


def store(url: str, n: int, seed: int) -> datetime:
    records, usdc, open_positions, end = generate(n, seed)
    engine = make_engine(url)
    upgrade(engine)
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
        for start in range(0, len(records), 50_000):
            batch = records[start:start + 50_000]
            ids = allocate_ids(conn, "raw_records", len(batch))
            rows = []
            for i, (name, r) in zip(ids, batch):
                ep = ENDPOINTS[name]
                rows.append((i, "main", name, ep.natural_key(r), json.dumps(r, separators=(",", ":")), db_time(conn, ep.record_time(r)), db_time(conn, now), "posted", None))
            bulk_insert(conn, "raw_records", ("id", "venue_account", "endpoint", "natural_key", "payload", "record_time", "fetched_at", "status", "note"), rows)
    repost(engine)
    taken = end + timedelta(seconds=1)
    lines = [SnapshotLineIn("Spot", "USDC", usdc)] + [SnapshotLineIn("Perp", p["symbol"], Decimal(p["netQuantity"])) for p in open_positions]
    with engine.begin() as conn:
        save_snapshot(conn, venue_account="main", taken_at=taken, payload={"balances": {"USDC": {"available": format(usdc, "f"), "locked": "0", "staked": "0"}},
                                                                            "positions": open_positions, "borrowLendPositions": [], "collateral": {}}, lines=lines)
    engine.dispose()
    return end


def timed(args: list[str], env: dict) -> tuple[float, float, int, str, float]:
    """Run ``reconcile <args>`` as a fresh process: wall time, peak RSS (os.wait4: the process's, or its
    largest waited-for child's), exit code, output, and CPU time (user + sys, its children included)."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "reconcile.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    out = proc.stdout.read()  # type: ignore[union-attr]
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024, proc.returncode, out, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fills", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--reuse", help="a directory holding perps.db from an earlier run (skips the setup)")
    args = ap.parse_args()
    d = Path(args.reuse) if args.reuse else Path(tempfile.mkdtemp())
    url = f"sqlite:///{d}/perps.db"
    if args.reuse:
        from sqlalchemy import text

        engine = make_engine(url)
        with engine.connect() as conn:
            end = datetime.fromisoformat(str(conn.execute(text("SELECT MAX(timestamp) FROM journal_entries")).scalar_one()))
        engine.dispose()
        print(f"setup: reusing {d}/perps.db")
    else:
        t = time.perf_counter()
        end = store(url, args.fills, args.seed)
        print(f"setup: {args.fills:,} perp fills with settlements, funding and a snapshot stored and posted in {time.perf_counter() - t:.0f} s (not timed; {d})",
              flush=True)
        # Time from a fresh, small process: a child forked from this one (grown by the setup) would report
        # this process's peak as its own (Linux keeps the largest RSS across fork and exec).
        os.execv(sys.executable, [sys.executable, str(Path(__file__).resolve()), "--reuse", str(d)])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env.pop("RECONCILE_CONFIG", None)
    cfg = d / "none.toml"
    cfg.write_text("")
    load = os.getloadavg()[0]
    wall, rss, code, out, cpu = timed(["check", "--config", str(cfg), "--db", url, "--json"], env)
    body = json.loads(out[out.index("{"):]) if "{" in out else {}
    perps = (body.get("accounts") or [{}])[0].get("perps") or {}
    print(f"reconcile check (whole process): {wall:.1f} s wall, {cpu:.1f} s CPU (user+sys, the cycle child included), peak RSS {rss:,.0f} MiB, "
          f"exit {code}; perps ok={perps.get('ok')} held={perps.get('held')} (load average before: {load:.1f})")
    record("perpetuals", f"reconcile check, {args.fills:,} perp fills", round(wall, 1), "s", target="< 20 s", ok=code == 0 and wall < 20)
    record("perpetuals", "reconcile check: CPU (user+sys)", round(cpu, 1), "s")
    record("perpetuals", "reconcile check: peak RSS", round(rss), "MiB", target="< 1024 MiB", ok=rss < 1024)
    if code != 0:
        print("  first differences:", [x.get("check") + " " + x.get("market") for x in perps.get("differences", [])[:5]])
    for fmt in ("csv", "xlsx"):
        load = os.getloadavg()[0]
        wall, rss2, code, out, cpu = timed(["export", "perps", "--config", str(cfg), "--db", url, "--year", str(end.year), "--format", fmt,
                                            "--out", str(d / f"perps.{fmt}")], env)
        print(f"reconcile export perps --year {end.year} --format {fmt} (whole process): {wall:.1f} s wall, {cpu:.1f} s CPU, peak RSS {rss2:,.0f} MiB, "
              f"exit {code} (load average before: {load:.1f}): {out.strip().splitlines()[-1] if out.strip() else ''}")
        record("perpetuals", f"export perps --format {fmt}", round(wall, 1), "s")
        record("perpetuals", f"export perps --format {fmt}: peak RSS", round(rss2), "MiB", target="< 1024 MiB", ok=rss2 < 1024)
    print(f"targets: 20 s, 1 GiB. Measured on a 2-core machine shared with 5 other agents (load average now {os.getloadavg()[0]:.1f}): "
          "under load, compare the CPU figures.")


if __name__ == "__main__":
    main()
