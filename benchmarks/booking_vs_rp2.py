"""Our booking engine against RP2's, in process, on the same generated spot history.

    pip install rp2          # benchmark-only dependency, not in pyproject
    python benchmarks/booking_vs_rp2.py [--events 100000] [--method hifo]

Builds the deterministic history of ``booking_bench.generate`` (spread over about three
years so long- and short-term lots both occur), books it with ``ledger.booking.book`` and
with RP2's ``tax_engine.compute_tax`` (generic country, the same method), prints both times
and the ratio, then compares every (disposal, lot) piece: quantity, cost basis and gain to
the cent, and the holding term away from acquisition anniversaries (RP2 counts
``(sell - buy).days >= 365``; we use calendar anniversaries: TAX-RULES §1.3).

RP2 reads its configuration from an INI file and its transactions from an ODS sheet; the
script writes a minimal INI to a temporary directory and builds RP2's transaction objects
directly (no ODS), which is the same in-process path ``rp2_main`` takes after parsing. RP2
also creates ``./log`` at import and sets the *global* decimal context (precision 31), so it
is imported late, from inside the temporary directory.
"""

from __future__ import annotations

from collections.abc import Iterable

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from booking_bench import generate  # noqa: E402

from ledger.booking import Acquisition, BookingResult, Disposal, Settings, book  # noqa: E402

#: Events every 10-22 minutes: 100,000 events span about three years.
STEP_SECONDS = (600, 1300)
RP2_METHODS = ("fifo", "lifo", "hifo", "lofo")
CENT = Decimal("0.01")

_RP2_INI = """\
[general]
assets = BTC
exchanges = Backpack
holders = main

[in_header]
timestamp = 0
asset = 1
exchange = 2
holder = 3
transaction_type = 4
spot_price = 6
crypto_in = 7
fiat_fee = 8
unique_id = 11
notes = 12

[out_header]
timestamp = 0
asset = 1
exchange = 2
holder = 3
transaction_type = 4
spot_price = 6
crypto_out_no_fee = 7
crypto_fee = 8
unique_id = 11
notes = 12

[intra_header]
timestamp = 0
asset = 1
from_exchange = 2
from_holder = 3
to_exchange = 4
to_holder = 5
spot_price = 6
crypto_sent = 7
crypto_received = 8
unique_id = 11
notes = 12
"""


def history(n: int) -> list:
    return generate(n, step_seconds=STEP_SECONDS)


def run_engine_side(n: int, method: str = "hifo", *, events: list | None = None) -> tuple[float, BookingResult]:
    """Book the generated ``n``-event history with our engine: (seconds in ``book``, result)."""
    events = history(n) if events is None else events
    t0 = time.perf_counter()
    result = book(events, Settings(method=method, jurisdiction="generic", scope="universal"))
    return time.perf_counter() - t0, result


def run_rp2_side(events: list, method: str) -> tuple[float, float, list[tuple]]:
    """(seconds building RP2 objects, seconds in compute_tax, rows) for the same events.

    Each row: (disposal id, lot id, quantity, cost basis, gain, is long term)."""
    workdir = tempfile.mkdtemp(prefix="rp2-bench-")
    cwd = os.getcwd()
    os.chdir(workdir)  # RP2 writes ./log on import
    try:
        os.environ.setdefault("CURRENCY_CODE", "USD")
        os.environ.setdefault("LONG_TERM_CAPITAL_GAINS", "365")
        import logging

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
        from importlib import import_module

        LOGGER.setLevel(logging.WARNING)
        ini = Path(workdir) / "bench.ini"
        ini.write_text(_RP2_INI, encoding="utf-8")
        t0 = time.perf_counter()
        config = Configuration(str(ini), Generic())
        zero = RP2Decimal("0")
        ins = TransactionSet(config, "IN", "BTC", MIN_DATE, MAX_DATE)
        outs = TransactionSet(config, "OUT", "BTC", MIN_DATE, MAX_DATE)
        intras = TransactionSet(config, "INTRA", "BTC", MIN_DATE, MAX_DATE)
        for row, e in enumerate(events, start=1):
            price = RP2Decimal(str((e.cost if isinstance(e, Acquisition) else e.proceeds) / e.quantity))
            qty = RP2Decimal(str(e.quantity))
            ts = e.time.isoformat()
            if isinstance(e, Acquisition):
                ins.add_entry(InTransaction(config, ts, "BTC", "Backpack", "main", "BUY", price, qty, fiat_fee=zero, row=row, unique_id=e.id))
            else:
                outs.add_entry(OutTransaction(config, ts, "BTC", "Backpack", "main", "SELL", price, qty, zero, fiat_fee=zero, row=row, unique_id=e.id))
        input_data = InputData("BTC", ins, outs, intras)
        years: AVLTree = AVLTree()
        years.insert_node(MIN_DATE.year, import_module(f"rp2.plugin.accounting_method.{method}").AccountingMethod())
        engine = AccountingEngine(years_2_methods=years)
        build = time.perf_counter() - t0
        t1 = time.perf_counter()
        computed = compute_tax(config, engine, input_data)
        seconds = time.perf_counter() - t1
        rows = []
        for gl in computed.gain_loss_set:
            rows.append(
                (
                    gl.taxable_event.unique_id,
                    gl.acquired_lot.unique_id if gl.acquired_lot else "",
                    Decimal(gl.crypto_amount),
                    Decimal(gl.fiat_cost_basis),
                    Decimal(gl.fiat_gain),
                    gl.is_long_term_capital_gains(),
                )
            )
        return build, seconds, rows
    finally:
        os.chdir(cwd)


#: The outcomes that count as a disagreement (a term difference near an anniversary does not: RP2 counts 365 days).
DISAGREEMENTS = ("missing in rp2", "missing in ours", "quantity differs", "basis differs >= 1c", "gain differs >= 1c", "term differs elsewhere")


def agreement(ours: Iterable[tuple], theirs: Iterable[tuple], events: list) -> dict[str, int]:
    """Match pieces ``(disposal id, lot id, quantity, basis, gain, is long)`` of both engines by
    (disposal id, lot id) and count each outcome (shared by benchmarks/gains_vs_rp2.py)."""
    acquired = {e.id: e.time for e in events if isinstance(e, Acquisition)}
    disposed = {e.id: e.time for e in events if isinstance(e, Disposal)}

    def pieces(rows: Iterable[tuple]) -> dict[tuple[str, str], list]:
        out: dict[tuple[str, str], list] = defaultdict(lambda: [Decimal(0), Decimal(0), Decimal(0), set()])
        for d, lot, q, cost, gain, long in rows:
            p = out[(d, lot)]
            p[0] += q
            p[1] += cost
            p[2] += gain
            p[3].add(long)
        return out

    mine, rp2 = pieces(ours), pieces(theirs)
    counts = {"pieces ours": len(mine), "pieces rp2": len(rp2), "missing in rp2": len(mine.keys() - rp2.keys()),
              "missing in ours": len(rp2.keys() - mine.keys()), "quantity differs": 0, "basis differs >= 1c": 0,
              "gain differs >= 1c": 0, "term agrees": 0, "term differs near anniversary": 0, "term differs elsewhere": 0}
    for key in mine.keys() & rp2.keys():
        a, b = mine[key], rp2[key]
        if a[0].quantize(Decimal("1e-8")) != b[0].quantize(Decimal("1e-8")):
            counts["quantity differs"] += 1
        if abs(a[1] - b[1]) >= CENT:
            counts["basis differs >= 1c"] += 1
        if abs(a[2] - b[2]) >= CENT:
            counts["gain differs >= 1c"] += 1
        if a[3] == b[3]:
            counts["term agrees"] += 1
        else:
            near = abs((disposed[key[0]] - acquired[key[1]]) - timedelta(days=365)) <= timedelta(days=2)
            counts["term differs near anniversary" if near else "term differs elsewhere"] += 1
    return counts


def compare(ours: BookingResult, theirs: list[tuple], events: list) -> dict[str, int]:
    """Our engine's gains against RP2's pieces."""
    return agreement(((g.disposal_id, g.lot_id, g.quantity, g.cost_basis, g.gain, g.term == "long") for g in ours.gains), theirs, events)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--method", default="hifo", choices=RP2_METHODS)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    events = history(args.events)
    print(f"history: {args.events:,} events ({sum(isinstance(e, Disposal) for e in events):,} disposals) from {events[0].time:%Y-%m-%d} "
          f"to {events[-1].time:%Y-%m-%d}, generated in {time.perf_counter() - t0:.2f} s")
    ours_s, ours = run_engine_side(args.events, args.method, events=events)
    print(f"ours   {args.method}: {ours_s:8.2f} s in book()          {len(ours.gains):,} gain pieces")
    try:
        build_s, rp2_s, theirs = run_rp2_side(events, args.method)
    except ImportError as exc:
        print(f"RP2 not importable ({exc}); install it with: pip install rp2")
        return 1
    print(f"rp2    {args.method}: {rp2_s:8.2f} s in compute_tax()   {len(theirs):,} gain pieces  (+{build_s:.2f} s building its transaction objects)")
    print(f"ratio  rp2 / ours: {rp2_s / ours_s:.1f}x  (including RP2's object building: {(rp2_s + build_s) / ours_s:.1f}x)")
    counts = compare(ours, theirs, events)
    width = max(len(k) for k in counts)
    for k, v in counts.items():
        print(f"  {k:<{width}}  {v:,}")
    total_ours = sum((g.gain for g in ours.gains), Decimal(0))
    total_rp2 = sum((r[4] for r in theirs), Decimal(0))
    print(f"total gain ours {total_ours.quantize(CENT)}  rp2 {total_rp2.quantize(CENT)}")
    agree = not any(counts[k] for k in DISAGREEMENTS)
    print("AGREE: every piece matches to the cent; terms differ only within 2 days of 365 days held" if agree else "DISAGREE: see counts above")
    return 0 if agree else 2


if __name__ == "__main__":
    raise SystemExit(main())
