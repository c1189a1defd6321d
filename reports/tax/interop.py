"""Koinly universal, CoinTracker and Awaken (standard and perpetuals) CSVs from the journal's entries.

These files carry the account's raw events so a user can load the same history into the tool they know
and compare its result with ours (EXPORT-FORMATS.md §4-5). Each journal entry becomes at most one
``Event`` (``events``): what left the account (sent), what arrived (received), the fee, a kind and the
entry's key. Trades read their amounts from the ``Equity:Trading`` legs (exactly the trade), the fee
from the ``Expenses:Fees:*`` legs; cash movements from their holding leg. Movements inside the account
(lend, redeem, borrow, repay) move no value between the user and the world and are not written (the
tools would count them as deposits and withdrawals); ``skipped`` counts them.

Direction is the column, never the sign (only Awaken's P&L is signed). Dates: Koinly
``YYYY-MM-DD HH:MM:SS UTC``; CoinTracker and Awaken ``MM/DD/YYYY HH:MM:SS`` (UTC). Awaken allows at most
8 decimals (rounded half-up; the round trip compares at 8 places). Text cells go through ``text_cell``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from ledger.money import EXACT, plain

from .common import Num, add, write_csv

__all__ = ["Event", "events", "perp_closes", "SETTLED_PNL", "KOINLY_COLUMNS", "COINTRACKER_COLUMNS", "AWAKEN_COLUMNS", "AWAKEN_PERP_COLUMNS", "write_koinly", "write_cointracker",
           "write_awaken", "WRITERS", "SKIPPED_KINDS"]

TRADE_KINDS = frozenset({"spot-trade", "rfq-fill", "quote-fill", "dust"})
SKIPPED_KINDS = frozenset({"lend", "redeem", "borrow", "repay"})


@dataclass
class Event:
    key: str
    time: datetime
    kind: str
    account: str
    description: str
    sent: tuple[Decimal, str] | None = None
    received: tuple[Decimal, str] | None = None
    fee: tuple[Decimal, str] | None = None
    #: reporting-currency value of the event (received side if valued, else sent side), or None.
    value: Decimal | None = None
    currency: str | None = None
    #: perp fills: symbol and signed position change.
    symbol: str | None = None
    position_change: Decimal | None = None
    #: perp fills that closed lots: their realized (price) P&L from the position engine (``perp_closes``).
    pnl: Decimal | None = None
    legs: list = field(default_factory=list)


def perp_closes(conn, settings, *, start: datetime | None = None, end: datetime | None = None, venue_account: str | None = None,
                method: str | None = None):
    """The realized P&L of each perpetual fill that closed lots in [start, end), from the position engine
    (``ledger.perps.stream_perps``, ``method`` or the jurisdiction's perp method: ``average``, the exchange's own), keyed by
    the fill's entry key; and the keys of the stored ``RealizePnl`` settlements, whose cash is that same P&L
    settled (so they are not written again). Perpetual P&L rows never come from spot lots or income categories."""
    from ledger.perps import REALIZED_SOURCES, read_perps, stream_perps

    pnl: dict[str, Decimal] = {}

    def sink(rows) -> None:
        for r in rows:
            pnl[r.source] = add((pnl.get(r.source, Decimal(0)), r.pnl))

    stream_perps(conn, settings, start=start, end=end, venue_account=venue_account, method=method, sink=sink)
    settled = {s.key for s in read_perps(conn, venue_account=venue_account, fills=False).settlements if s.source in REALIZED_SOURCES}
    return pnl, settled


def _group(rows) -> Iterator[list]:
    cur: list = []
    for r in rows:
        if cur and r.entry_id != cur[0].entry_id:
            yield cur
            cur = []
        cur.append(r)
    if cur:
        yield cur


def _value(q: Decimal, leg) -> Decimal | None:
    return None if leg is None or leg.unit_price is None else EXACT.multiply(abs(q), leg.unit_price)


SETTLED_PNL = "RealizePnl settlements (their P&L is on the closing fills)"


def events(rows: Iterable, *, skipped: dict | None = None, perps: tuple[dict, set] | None = None) -> Iterator[Event]:
    """The journal rows (``reports.journal.journal_rows``, in their stable order) as events. ``perps``:
    ``perp_closes``' result: each closing perp fill carries its P&L, and the realized-P&L settlements it
    names are left out (counted in ``skipped``)."""
    pnl, settled = perps if perps is not None else ({}, set())
    for legs in _group(rows):
        first = legs[0]
        kind = first.kind
        ev = Event(key=first.entry_id, time=first.time, kind=kind, account=first.venue_account, description=first.description)
        holding = [l for l in legs if l.account.startswith(("Assets:", "Liabilities:"))]
        if kind in SKIPPED_KINDS or (kind == "realized-pnl" and ev.key in settled):
            if skipped is not None:
                name = kind if kind in SKIPPED_KINDS else SETTLED_PNL
                skipped[name] = skipped.get(name, 0) + 1
            continue
        fees: dict[str, Decimal] = {}
        for l in legs:
            if l.account.startswith("Expenses:Fees:"):
                fees[l.asset] = add((fees.get(l.asset, Decimal(0)), l.quantity))
        fees = {a: q for a, q in fees.items() if q}
        if len(fees) == 1:
            (fa, fq), = fees.items()
            ev.fee = (fq, fa)
        elif len(fees) > 1:  # never produced by the posting rules; kept visible
            ev.description += " (several fee assets: " + ", ".join(f"{plain(q)} {a}" for a, q in fees.items()) + ")"
        if kind in TRADE_KINDS:
            trading: dict[str, Decimal] = {}
            for l in legs:
                if l.account == "Equity:Trading":
                    trading[l.asset] = add((trading.get(l.asset, Decimal(0)), l.quantity))
            for asset, q in trading.items():
                leg = next((h for h in holding if h.asset == asset and h.unit_price is not None), None)
                if q < 0:
                    ev.received = (-q, asset)
                    v = _value(q, leg)
                    if v is not None:
                        ev.value, ev.currency = v, leg.currency
                elif q > 0:
                    ev.sent = (q, asset)
                    if ev.value is None:
                        v = _value(q, leg)
                        if v is not None:
                            ev.value, ev.currency = v, leg.currency
            yield ev
            continue
        if kind == "perp-fill":
            (pos,) = [l for l in holding if ":Perp:" in l.account] or [None]
            if pos is None:
                continue
            ev.symbol, ev.position_change = pos.asset, pos.quantity
            ev.pnl = pnl.get(ev.key)
            yield ev
            continue
        # Cash movements: the holding leg(s) net of the fee; the counter leg gives the amount moved.
        counters = [l for l in legs if not l.account.startswith(("Assets:", "Liabilities:", "Expenses:Fees:"))]
        if not counters:  # a fee on its own (perp trading fees): the fee is the event
            counters = [l for l in legs if l.account.startswith("Expenses:Fees:")]
            ev.fee = None
        if not counters:
            continue
        amount = add(-l.quantity for l in counters)  # into the account: positive
        asset = counters[0].asset
        leg = next((h for h in holding if h.asset == asset), None)
        if amount > 0:
            ev.received = (amount, asset)
        elif amount < 0:
            ev.sent = (-amount, asset)
        else:
            continue
        v = _value(amount, leg)
        if v is not None:
            ev.value, ev.currency = v, leg.currency
        yield ev


def _amt(x: tuple[Decimal, str] | None, q: Decimal | None = None):
    if x is None:
        return "", ""
    v = x[0]
    if q is not None:
        v = v.quantize(q, rounding=ROUND_HALF_UP, context=EXACT)
    return Num(v), x[1]


KOINLY_COLUMNS = ("Date", "Sent Amount", "Sent Currency", "Received Amount", "Received Currency", "Fee Amount", "Fee Currency", "Net Worth Amount",
                  "Net Worth Currency", "Label", "Description", "TxHash")
KOINLY_LABELS = {"interest-income": "lending interest", "realized-pnl": "realized gain", "funding": "realized gain", "liquidation": "realized gain",
                 "interest-expense": "margin fee", "perp-fee": "cost"}


def koinly_date(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def mdy_time(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%m/%d/%Y %H:%M:%S")


def _perp_pay(e: Event) -> str:
    return e.symbol.split("_")[1] if e.symbol and e.symbol.count("_") >= 2 else "USDC"


def _koinly_rows(evs: Iterable[Event]):
    for e in evs:
        if e.kind == "perp-fill":
            if e.pnl:  # a close: its P&L from the position lots, as a realized gain in the settlement asset
                pay = _perp_pay(e)
                s, sc, r, rc = ("", "", Num(e.pnl), pay) if e.pnl > 0 else (Num(-e.pnl), pay, "", "")
                yield [koinly_date(e.time), s, sc, r, rc, "", "", "", "", "realized gain", f"Backpack perp close (position lots): {e.description}", e.key]
            continue
        s, sc = _amt(e.sent)
        r, rc = _amt(e.received)
        f, fc = _amt(e.fee)
        yield [koinly_date(e.time), s, sc, r, rc, f, fc, Num(e.value) if e.value is not None else "", e.currency or "", KOINLY_LABELS.get(e.kind, ""),
               f"Backpack {e.kind}: {e.description}", e.key]


def write_koinly(evs: Iterable[Event], out: Path) -> int:
    return write_csv(out, KOINLY_COLUMNS, _koinly_rows(evs))


COINTRACKER_COLUMNS = ("Date", "Received Quantity", "Received Currency", "Sent Quantity", "Sent Currency", "Fee Amount", "Fee Currency", "Tag")


def _cointracker_tag(e: Event) -> str:
    if e.kind == "interest-income":
        return "staking"  # no documented interest tag: income at value when received, the same treatment
    if e.kind in ("realized-pnl", "liquidation", "funding"):
        if e.kind == "funding" and e.sent:
            return "margin fee"
        return "margin gain" if e.received else "margin loss"
    if e.kind in ("perp-fee", "interest-expense"):
        return "margin fee"
    return ""


def _cointracker_rows(evs: Iterable[Event]):
    for e in evs:
        if e.kind == "perp-fill":
            if e.pnl:
                pay = _perp_pay(e)
                r, rc, s, sc = (Num(e.pnl), pay, "", "") if e.pnl > 0 else ("", "", Num(-e.pnl), pay)
                yield [mdy_time(e.time), r, rc, s, sc, "", "", "margin gain" if e.pnl > 0 else "margin loss"]
            continue
        r, rc = _amt(e.received)
        s, sc = _amt(e.sent)
        f, fc = _amt(e.fee)
        yield [mdy_time(e.time), r, rc, s, sc, f, fc, _cointracker_tag(e)]


def write_cointracker(evs: Iterable[Event], out: Path) -> int:
    return write_csv(out, COINTRACKER_COLUMNS, _cointracker_rows(evs))


AWAKEN_COLUMNS = ("Date", "Received Quantity", "Received Currency", "Received Fiat Amount", "Sent Quantity", "Sent Currency", "Sent Fiat Amount", "Fee Amount",
                  "Fee Currency", "Transaction Hash", "Notes", "Tag")
AWAKEN_PERP_COLUMNS = ("Date", "Asset", "Amount", "Fee", "P&L", "Payment Token", "Notes", "Transaction Hash", "Tag")
Q8 = Decimal("0.00000001")
PERP_KINDS = frozenset({"perp-fill", "realized-pnl", "funding", "liquidation"})


def _q8(v: Decimal) -> Num:
    return Num(v.quantize(Q8, rounding=ROUND_HALF_UP, context=EXACT))


def _awaken_rows(evs: Iterable[Event], perps: list):
    """Standard rows; perpetual rows are appended to ``perps`` (position kept per account and symbol)."""
    position: dict[tuple[str, str], Decimal] = {}
    for e in evs:
        if e.kind in PERP_KINDS:
            perps.extend(_awaken_perp(e, position))
            continue
        r, rc = _amt(e.received, Q8)
        s, sc = _amt(e.sent, Q8)
        f, fc = _amt(e.fee, Q8)
        rv = _q8(e.value) if e.value is not None and e.received else ""
        sv = _q8(e.value) if e.value is not None and e.sent and not e.received else ""
        yield [mdy_time(e.time), r, rc, rv, s, sc, sv, f, fc, e.key, f"Backpack {e.kind}: {e.description}", ""]


def _awaken_perp(e: Event, position: dict) -> list:
    if e.kind == "perp-fill":
        k = (e.account, e.symbol)
        before = position.get(k, Decimal(0))
        after = before + e.position_change
        position[k] = after
        underlying = e.symbol.split("_")[0]
        pay = e.symbol.split("_")[1] if e.symbol.count("_") >= 2 else "USDC"
        rows = []
        closing = min(abs(e.position_change), abs(before)) if before and (before > 0) != (e.position_change > 0) else Decimal(0)
        opening = abs(e.position_change) - closing
        for qty, tag in ((closing, "close_position"), (opening, "open_position")):
            if qty:
                if tag == "close_position" and e.pnl is not None:
                    pl, note = _q8(e.pnl), f"close {e.symbol} (P&L of the position lots): {e.description}"
                else:
                    pl, note = Num(Decimal(0)), f"{tag.split('_')[0]} {e.symbol} (P&L settles apart): {e.description}"
                rows.append([mdy_time(e.time), underlying, _q8(qty), "", pl, pay, note, e.key, tag])
        return rows
    amount = e.received[0] if e.received else -e.sent[0]
    asset = (e.received or e.sent)[1]
    tag = "funding_payment" if e.kind == "funding" else "close_position"
    return [[mdy_time(e.time), asset, _q8(abs(amount)), "", _q8(amount), asset, f"Backpack {e.kind}: {e.description}", e.key, tag]]


def write_awaken(evs: Iterable[Event], out: Path) -> tuple[int, int]:
    """The standard CSV at ``out`` and the perpetuals CSV beside it (``<stem>-perps.csv``)."""
    perps: list = []
    n = write_csv(out, AWAKEN_COLUMNS, _awaken_rows(evs, perps))
    m = write_csv(out.with_name(out.stem + "-perps" + out.suffix), AWAKEN_PERP_COLUMNS, perps)
    return n, m


WRITERS = {"koinly": write_koinly, "cointracker": write_cointracker, "awaken": write_awaken}
