"""From journal entries to the cost-basis engine's events (``docs/pipeline.md``).

One small function per entry kind, in the table ``RULES``, turns an entry (``ledger.reader.Entry``:
its postings classified, quantities and reporting-currency unit prices exact) into engine events:

- a conversion (spot fill, RFQ fill, quote fill, dust) disposes of the asset given and acquires the
  asset received. Fees are absorbed once, by the non-cash side: on a purchase they add to the basis
  of what is bought (a fee in the bought asset reduces the quantity received); on a sale (cash
  received) they reduce the proceeds (a fee in the sold asset adds to the quantity disposed, RP2's
  presentation of TAX-RULES US-4). A fee in a third asset is itself a disposal of that asset at its
  market value (kind ``fee``); a rebate in a third asset an acquisition at market value;
- income (lend interest, positive unrealized-PnL interest, realized perp P&L, funding, liquidation
  proceeds paid in a non-cash asset) acquires lots at value; a negative amount is a ``spend``;
- borrowing acquires the borrowed asset at market value; repaying, perp fees and interest paid in
  a non-cash asset dispose of it (``spend``);
- deposits and withdrawals are transfers to and from the user's own outside wallet
  (``EXTERNAL_WALLET``: a withdrawal carries its lots out, a later deposit of the same asset brings
  them back); a deposit beyond what went out is an acquisition of unknown basis (a missing-basis
  finding unless opening lots cover it);
- transfers between sub-accounts (``transfer-out`` / ``transfer-in``) are paired into one transfer
  (``Pairing``): same asset and quantity, other account, within ``TRANSFER_PAIRING_WINDOW`` of each
  other whichever comes first; the transfer is booked at the later leg's time (when both sides have
  happened). A leg unpaired after the window is booked alone: an outgoing one moves its lots to the
  outside wallet, an incoming one is an acquisition of unknown basis;
- lend and redeem move units between wallets of one venue account: no lot effect.

Cash is not lot-tracked (``BookSettings.cash``: the reporting currency and, under the ``par``
stablecoin policy, USDC and USDT). An unpriced value is a finding (``unpriced``), valued at zero.

``events(chunks, cash, findings)`` runs the rules over the reader's chunks and yields event
batches the engine can book at once: sorted, each after the last, never an instant split between
two batches, and nothing at or after an unpaired transfer leg still inside its window.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from .booking import Acquisition, Disposal, Finding, Transfer
from .money import EXACT
from .reader import BORROWED, FEE, SPOT, Entry

__all__ = ["RULES", "TRADE_KINDS", "EXTERNAL_WALLET", "TRANSFER_PAIRING_WINDOW", "State", "Pairing", "events"]

TRADE_KINDS = ("spot-trade", "rfq-fill", "quote-fill", "dust")
INCOME_KINDS = ("interest-income", "realized-pnl", "funding", "liquidation")
SPEND_KINDS = ("borrow", "repay", "perp-fee", "interest-expense")
EXTERNAL_WALLET = "external"
#: An internal transfer's two legs pair within this window of each other, whichever comes first.
TRANSFER_PAIRING_WINDOW = timedelta(days=1)

ZERO = Decimal(0)
_new = tuple.__new__
_mul = EXACT.multiply


def _acq(t, id_, account, asset, q, cost, source, kind) -> Acquisition:
    return _new(Acquisition, (t, 0, id_, account, asset, q, cost, source, kind))


def _disp(t, id_, account, asset, q, proceeds, source, kind) -> Disposal:
    return _new(Disposal, (t, 2, id_, account, asset, q, proceeds, source, kind))


def _xfer(t, id_, frm, to, asset, q, fee, fee_value, source) -> Transfer:
    return _new(Transfer, (t, 1, id_, frm, to, asset, q, fee, fee_value, source))


@dataclass
class State:
    """What the rules carry from one entry to the next."""

    cash: frozenset[str]
    findings: list[Finding]
    currency: str = "USD"
    #: asset -> quantity carried to the user's own outside wallet by withdrawals.
    outside: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    pairing: "Pairing" = field(default_factory=lambda: Pairing())

    def unpriced(self, e: Entry, asset: str, what: str) -> None:
        self.findings.append(_new(Finding, ("unpriced", f"{e.key}: {what} of {asset} has no {self.currency} price; valued at zero", e.key, e.account, asset, e.time)))

    def value(self, e: Entry, q: Decimal, price: Decimal | None, asset: str, what: str) -> Decimal:
        """``q`` at ``price``; unpriced: a finding, and zero."""
        if price is None:
            self.unpriced(e, asset, what)
            return ZERO
        return _mul(q, price)


# --- the rules: one entry in, its events out ---------------------------------------------------

def conversion(e: Entry, st: State) -> list:
    """One asset given for another (fees absorbed by the non-cash side; see the module's text)."""
    # Per asset: [traded quantity (every read posting), fee quantity, unit price of a non-fee posting].
    per: dict[str, list] = {}
    for cls, asset, q, p in e.postings:
        a = per.get(asset)
        if a is None:
            a = per[asset] = [q, q if cls == FEE else ZERO, None if cls == FEE else p]
            continue
        a[0] += q
        if cls == FEE:
            a[1] += q
        elif p is not None:
            a[2] = p
    R = G = None
    for asset, a in per.items():
        if a[0] > 0:
            if R is not None:
                R = ""
                break
            R = asset
        elif a[0] < 0:
            if G is not None:
                G = ""
                break
            G = asset
    if not R or not G:
        st.findings.append(_new(Finding, ("unrecognised-trade", f"entry {e.key} is not a two-asset conversion", e.key, e.account, "", e.time)))
        return []
    cash = st.cash
    out: list = []
    t, key, acct = e.time, e.key, e.account
    third = ZERO  # the value of fees (and rebates) in a third asset
    if len(per) > 2:
        for a, (_, q, p) in per.items():
            if a == R or a == G or not q:
                continue
            v = st.value(e, q, p, a, "trading fee")
            third += v
            if a in cash:
                continue
            if q > 0:  # a fee paid in a third asset is a disposal of it at market value
                out.append(_disp(t, f"{key}#fee:{a}", acct, a, q, v, key, "fee"))
            else:  # a rebate received in a third asset arrives at market value
                out.append(_acq(t, f"{key}#rebate:{a}", acct, a, -q, -v, key, "trade"))
    tR, fR, pR = per[R]
    tG, fG, pG = per[G]
    qR, qG = tR - fR, fG - tG
    if R in cash:  # cash received: a sale of G; fees reduce the proceeds
        proceeds = None if pR is None else _mul(qR, pR) - third
        cost_R = None
    else:  # a purchase of R (for cash or another asset): fees add to its basis
        proceeds = None if pG is None else _mul(qG, pG)
        if proceeds is None and pR is not None:
            proceeds = _mul(tR, pR)
        cost_R = None if proceeds is None else proceeds + third
    if G not in cash and qG > 0:
        if proceeds is None:
            st.unpriced(e, G, "disposal")
        out.append(_new(Disposal, (t, 2, key + "#out", acct, G, qG, proceeds if proceeds is not None else ZERO, key, "dust" if e.kind == "dust" else "trade")))
    if R not in cash and qR > 0:
        if cost_R is None:
            st.unpriced(e, R, "acquisition")
            cost_R = ZERO
        out.append(_new(Acquisition, (t, 0, key + "#in", acct, R, qR, cost_R if cost_R > 0 else ZERO, key, "trade")))
    return out


def _flows(acquired_kind: str, skip: tuple[int, ...]) -> Callable[[Entry, State], list]:
    """A rule for units arriving (an acquisition at value, of ``acquired_kind``) or leaving (a
    ``spend`` at value) a holding, one event per posting not of the classes ``skip``."""

    def rule(e: Entry, st: State) -> list:
        out: list = []
        for cls, asset, q, p in e.postings:
            if cls in skip or asset in st.cash or not q:
                continue
            v = st.value(e, abs(q), p, asset, e.kind)
            if q > 0:
                out.append(_acq(e.time, f"{e.key}#in", e.account, asset, q, v, e.key, acquired_kind))
            else:
                out.append(_disp(e.time, f"{e.key}#out", e.account, asset, -q, v, e.key, "spend"))
        return out

    return rule


#: Income in a non-cash asset acquires lots at value; a negative amount spends units.
income = _flows("income", (FEE,))
#: Borrowing acquires at market value; repaying, perp fees and interest paid dispose (the liability side is skipped).
spend = _flows("trade", (FEE, BORROWED))


def _fee_of(e: Entry, asset: str) -> Decimal:
    return sum((p.quantity for p in e.postings if p.cls == FEE and p.asset == asset), ZERO)


def withdrawal(e: Entry, st: State) -> list:
    """Units to the user's own outside wallet: their lots go with them (the fee is a disposal or adds to basis)."""
    out: list = []
    for cls, asset, q, p in e.postings:
        if cls != SPOT or asset in st.cash or not q:
            continue
        fee_q = _fee_of(e, asset)
        moved = -q - fee_q
        fee_value = None
        if fee_q:
            fee_value = None if p is None else _mul(fee_q, p)
            if fee_value is None:
                st.unpriced(e, asset, "withdrawal fee")
        st.outside[asset] += moved
        out.append(_xfer(e.time, f"{e.key}#xfer", e.account, EXTERNAL_WALLET, asset, moved, fee_q, fee_value, e.key))
    return out


def deposit(e: Entry, st: State) -> list:
    """Units from outside: what went out comes back with its lots; the rest has unknown basis."""
    out: list = []
    for cls, asset, q, p in e.postings:
        if cls != SPOT or asset in st.cash or not q:
            continue
        back = min(st.outside[asset], q)
        if back > 0:
            st.outside[asset] -= back
            out.append(_xfer(e.time, f"{e.key}#back", EXTERNAL_WALLET, e.account, asset, back, ZERO, None, e.key))
        if q - back > 0:
            out.append(_acq(e.time, f"{e.key}#in", e.account, asset, q - back, None, e.key, "deposit"))
    return out


def transfer_out(e: Entry, st: State) -> list:
    """One leg of a transfer to another sub-account (paired by ``Pairing``); its fee is a disposal."""
    out: list = []
    for cls, asset, q, p in e.postings:
        if cls != SPOT or asset in st.cash or not q:
            continue
        fee_q = _fee_of(e, asset)
        if fee_q:
            out.append(_disp(e.time, f"{e.key}#fee", e.account, asset, fee_q, st.value(e, fee_q, p, asset, "transfer fee"), e.key, "fee"))
        out += st.pairing.leg(_Leg(e.time, e.key, e.account, asset, -q - fee_q, True), st)
    return out


def transfer_in(e: Entry, st: State) -> list:
    """The other leg of a transfer between sub-accounts."""
    out: list = []
    for cls, asset, q, p in e.postings:
        if cls != SPOT or asset in st.cash or not q:
            continue
        out += st.pairing.leg(_Leg(e.time, e.key, e.account, asset, q, False), st)
    return out


def conversion_kinds() -> dict[str, Callable[[Entry, State], list]]:
    return {k: conversion for k in TRADE_KINDS}


#: entry kind -> rule. A kind without a rule moves no lots (lend, redeem, and cash-only kinds).
RULES: dict[str, Callable[[Entry, State], list]] = {
    **conversion_kinds(),
    **{k: income for k in INCOME_KINDS},
    **{k: spend for k in SPEND_KINDS},
    "withdrawal": withdrawal,
    "deposit": deposit,
    "transfer-out": transfer_out,
    "transfer-in": transfer_in,
}


# --- pairing internal transfers ------------------------------------------------------------------

class _Leg:
    __slots__ = ("time", "key", "account", "asset", "quantity", "out")

    def __init__(self, time: datetime, key: str, account: str, asset: str, quantity: Decimal, out: bool) -> None:
        self.time, self.key, self.account, self.asset, self.quantity, self.out = time, key, account, asset, quantity, out


class Pairing:
    """Transfer legs waiting for their other side, at most ``window`` (order-independent)."""

    def __init__(self, window: timedelta = TRANSFER_PAIRING_WINDOW) -> None:
        self.window = window
        self.pending: list[_Leg] = []

    def leg(self, leg: _Leg, st: State) -> list:
        for other in self.pending:
            if other.out != leg.out and other.asset == leg.asset and other.quantity == leg.quantity and other.account != leg.account \
                    and leg.time - other.time <= self.window:
                self.pending.remove(other)
                o, i = (other, leg) if other.out else (leg, other)
                return [_xfer(leg.time, f"{o.key}#xfer", o.account, i.account, leg.asset, leg.quantity, ZERO, None, o.key)]
        self.pending.append(leg)
        return []

    def hold_from(self) -> datetime | None:
        """The earliest pending leg's time: nothing at or after it may be booked yet."""
        return self.pending[0].time if self.pending else None

    def expire(self, now: datetime | None, st: State) -> list:
        """The events of legs whose window has passed at ``now`` (all of them with ``None``)."""
        out: list = []
        keep: list[_Leg] = []
        for leg in self.pending:
            if now is not None and now - leg.time <= self.window:
                keep.append(leg)
            elif leg.out:  # the other side was never synced: the lots leave for the outside wallet
                st.outside[leg.asset] += leg.quantity
                out.append(_xfer(leg.time, f"{leg.key}#xfer", leg.account, EXTERNAL_WALLET, leg.asset, leg.quantity, ZERO, None, leg.key))
            else:
                out.append(_acq(leg.time, f"{leg.key}#in", leg.account, leg.asset, leg.quantity, None, leg.key, "deposit"))
        self.pending = keep
        return out


# --- the stage ------------------------------------------------------------------------------------

def events(chunks: Iterable[list[Entry]], cash: frozenset[str], findings: list[Finding], *, currency: str = "USD") -> Iterator[list]:
    """The engine's events for the reader's chunks (in (time, key) order), in batches the engine
    books at once; the bridge's findings are appended to ``findings``."""
    st = State(cash=cash, findings=findings, currency=currency)
    rules = RULES
    pairing = st.pairing
    held: list = []
    window = pairing.window
    for chunk in chunks:
        for e in chunk:
            if pairing.pending and e.time - pairing.pending[0].time > window:  # legs unpaired for good, before this entry's rule
                held += pairing.expire(e.time, st)
            rule = rules.get(e.kind)
            if rule is not None:
                held += rule(e, st)
        if not chunk:
            continue
        bound = chunk[-1].time
        hold = pairing.hold_from()
        if hold is not None and hold < bound:
            bound = hold
        held.sort()
        cut = bisect_left(held, (bound,))  # the events before ``bound``: nothing read later can precede them
        if cut:
            yield held[:cut]
            held = held[cut:]
    held += pairing.expire(None, st)
    held.sort()
    if held:
        yield held


def ledger_events(conn, cash: frozenset[str] = frozenset({"USD", "USDC", "USDT"}), *, venue_account: str | None = None,
                  until: datetime | None = None, currency: str = "USD") -> tuple[list, list[Finding]]:
    """The engine's events for the whole ledger (in processing order) and the bridge's findings
    (in (time, key) order): the bridge alone, for tests and inspection (``ledger.books`` streams)."""
    from .reader import read_entries

    findings: list[Finding] = []
    out: list = []
    for batch in events(read_entries(conn, venue_account=venue_account, until=until), cash, findings, currency=currency):
        out += batch
    findings.sort(key=lambda f: (f.time, f.key))
    return out, findings
