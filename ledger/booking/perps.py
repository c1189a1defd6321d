"""The perpetual position engine: perp fills in, position lots, realized rows and cycles out (pure).

Fed the fills of each (venue account, market) in time order, it keeps the open position as lots,
long or short, and turns every reducing fill into one ``Realized`` row per lot fraction closed
(``docs/perps.md``). One rule covers every fill:

- a fill on the side of the position (or on a flat book) **opens or increases**: a new lot;
- a fill against it **reduces**: lot fractions are relieved by the matching method, each a row;
- a fill larger than the position **flips** it: the position's quantity closes (rows), the rest
  opens a lot on the other side at the fill's price; the fee is split by quantity;
- system fills are the same rule, named by ``systemOrderType`` (``CLOSE_KINDS``): a liquidation,
  an ADL, an expiry.

Matching methods (``PERP_METHODS``): ``average`` (one pooled entry cost per position, the exchange's
own average entry: its ``RealizePnl`` settlements come from it; lot dates relieved first in, first
out) and ``fifo`` (each lot its own entry price, oldest first). Cost and opening fees are relieved
with ``ledger.booking.methods.share`` (the last piece takes the rest), so over every flat-to-flat
cycle of a market, whatever the method, ``sum(pnl) == sum of signed notionals`` and
``sum(net) == sum of signed notionals - fees`` exactly (``Cycle``).

Beside the lots each book also keeps the exchange's own figures (``exchange_entry``): the average
entry price the exchange displays, ``(|net| * entry + q * p) / (|net| + q)`` at 28 significant
digits on an increase, unchanged on a reduction, the fill's price for a fresh or flipped position
(docs/assumptions.md A-PERP-3). The proof compares it with ``/api/v1/position`` ``entryPrice``.

No ORM, no clock: records in, records out. Money is ``Decimal``; arithmetic on costs runs in
``ledger.money.EXACT``.
"""

from __future__ import annotations

import decimal
from collections import deque
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal, localcontext
from types import MappingProxyType
from typing import NamedTuple

from ledger.booking.methods import QUANTUM, share
from ledger.money import EXACT

__all__ = [
    "PERP_METHODS",
    "DEFAULT_PERP_METHOD",
    "CLOSE_KINDS",
    "EXCHANGE_CONTEXT",
    "perp_method_for",
    "close_kind",
    "PerpFill",
    "Realized",
    "OpenLot",
    "OpenPosition",
    "Cycle",
    "PerpBook",
    "PerpEngine",
    "PerpResult",
    "book_perps",
    "exchange_unrealized",
]

ZERO = Decimal(0)
PERP_METHODS = ("average", "fifo")
#: The perpetual matching method per jurisdiction when the config names none (docs/perps.md):
#: ``average`` everywhere, the exchange's own figure (what it settles as ``RealizePnl``).
DEFAULT_PERP_METHOD: Mapping[str, str] = MappingProxyType({"us": "average", "uk": "average", "de": "average", "generic": "average"})
#: ``systemOrderType`` -> close kind of the rows a fill yields (None: the user's own order).
CLOSE_KINDS: Mapping[str | None, str] = MappingProxyType(
    {
        None: "user",
        "LiquidatePositionOnBook": "liquidation",
        "LiquidatePositionOnBackstop": "liquidation",
        "LiquidatePositionOnAdl": "adl",
        "FutureExpiry": "expiry",
        "OrderBookClosed": "market-closed",
        "CollateralConversion": "collateral-conversion",
    }
)
#: A-PERP-3: the exchange's displayed entry price and unrealized P&L: 28 significant digits, half-even
#: (the precision of the reference's sample ``entryPrice`` "3826.8888888888888888888888889").
EXCHANGE_CONTEXT = decimal.Context(prec=28, rounding=decimal.ROUND_HALF_EVEN, traps=[decimal.InvalidOperation, decimal.FloatOperation])


def perp_method_for(jurisdiction: str, configured: str | None = None) -> str:
    """The matching method: the configured one, else the jurisdiction's default. ValueError if unknown."""
    method = configured or DEFAULT_PERP_METHOD.get(jurisdiction, "average")
    if method not in PERP_METHODS:
        raise ValueError(f"unknown perpetual matching method {method!r}; expected one of {list(PERP_METHODS)}")
    return method


def close_kind(system_order_type: str | None) -> str:
    """``user``, ``liquidation``, ``adl``, ... for a fill's ``systemOrderType`` (unknown ones: ``system``)."""
    return CLOSE_KINDS.get(system_order_type, "system")


class PerpFill(NamedTuple):
    """One perpetual fill: ``side`` 'buy' or 'sell', ``quantity`` > 0 contracts at ``price``;
    ``fee`` in the settlement asset (positive paid, negative a rebate); ``system`` the
    ``systemOrderType`` (None for the user's own order); ``id`` the source record id."""

    id: str
    account: str
    market: str
    time: datetime
    side: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    system: str | None = None


class Realized(NamedTuple):
    """One lot fraction closed by one fill. ``pnl`` is the price P&L (long: exit notional - entry
    cost; short: entry proceeds - exit notional), ``fees`` the opening and closing fees apportioned to
    the fraction by quantity, ``net = pnl - fees``."""

    account: str
    market: str
    side: str  # long | short: the side of the lot closed
    quantity: Decimal
    opened: datetime
    closed: datetime
    entry_price: Decimal  # entry_cost / quantity, to 18 places
    exit_price: Decimal
    entry_cost: Decimal  # quantity x entry price, as relieved (exact)
    fees: Decimal
    pnl: Decimal
    net: Decimal
    close_kind: str
    method: str
    lot_id: str  # the opening fill's record id
    source: str  # the closing fill's record id


class OpenLot(NamedTuple):
    quantity: Decimal
    cost: Decimal  # entry notional (average: the lot's share of the pooled cost)
    fee: Decimal  # opening fees not yet relieved
    opened: datetime
    lot_id: str


class OpenPosition(NamedTuple):
    """An open position: ``quantity`` signed (+ long, - short), the exact ``cost`` of the open
    quantity, ``average_entry`` = cost / |quantity| (to 18 places), and ``exchange_entry`` the exchange's own."""

    account: str
    market: str
    side: str
    quantity: Decimal
    cost: Decimal
    average_entry: Decimal
    exchange_entry: Decimal
    opened: datetime
    lots: tuple[OpenLot, ...]


class Cycle(NamedTuple):
    """One flat-to-flat cycle of a market: from the fill that opened it to the one that made it flat.
    ``cash_flow`` is the sum of the fills' signed notionals (sell +, buy -; a flip's quantity split),
    ``fees`` their fees; ``pnl``/``net`` the sums of the cycle's realized rows."""

    account: str
    market: str
    start: datetime
    end: datetime
    fills: int
    cash_flow: Decimal
    fees: Decimal
    pnl: Decimal
    net: Decimal

    @property
    def difference(self) -> Decimal:
        """``net - (cash_flow - fees)``: zero when the lots conserve cost."""
        return self.net - (self.cash_flow - self.fees)


class PerpBook:
    """One (account, market) position: lots on one side, running exchange figures, the open cycle."""

    __slots__ = ("account", "market", "method", "dated", "side", "qty", "cost", "fee", "lots", "ex_entry", "ex_pnl", "c_start", "c_fills", "c_cash", "c_fees", "c_pnl", "c_net")

    def __init__(self, account: str, market: str, method: str, dated: bool = True) -> None:
        if method not in PERP_METHODS:
            raise ValueError(f"unknown perpetual matching method {method!r}; expected one of {list(PERP_METHODS)}")
        self.account, self.market, self.method = account, market, method
        #: Keep the dated lots (False only for ``average`` when no rows are built: the pooled figures suffice).
        self.dated = dated or method != "average"
        self.side = 0  # +1 long, -1 short, 0 flat
        self.qty = ZERO  # open quantity (magnitude)
        self.cost = ZERO  # entry notional of the open quantity
        self.fee = ZERO  # opening fees of the open quantity not yet relieved
        self.lots: deque[list] = deque()  # [qty, cost, fee, opened, lot_id]; average: cost/fee unused (pooled)
        self.ex_entry = ZERO
        #: The exchange's realized P&L of the last fill (A-PERP-3): ``closing x (p - entry)`` at 28 digits.
        self.ex_pnl = ZERO
        self.c_start: datetime | None = None
        self.c_fills = 0
        self.c_cash = self.c_fees = self.c_pnl = self.c_net = ZERO

    @property
    def net(self) -> Decimal:
        return self.qty if self.side > 0 else -self.qty

    # -- the one rule -----------------------------------------------------------------------------
    def apply(self, f: PerpFill, out: list | None, cycles: list) -> None:
        """Apply one fill: realized rows are appended to ``out`` (None: not built), a cycle closed by it
        to ``cycles``."""
        with localcontext(EXACT):
            self.apply_exact(f, out, cycles)

    def apply_exact(self, f: PerpFill, out: list | None, cycles: list) -> None:
        """``apply`` for a caller that already runs in ``ledger.money.EXACT`` (a loop over many fills)."""
        q, p, fee = f.quantity, f.price, f.fee
        d = 1 if f.side == "buy" else -1
        if True:
            if self.side == 0 or self.side == d:
                self.ex_pnl = ZERO
                self._open(d, q, p, fee, f)
                self.c_cash += -d * q * p
                self.c_fees += fee
                self.c_fills += 1
                return
            closing = q if q <= self.qty else self.qty
            c = EXCHANGE_CONTEXT
            self.ex_pnl = c.multiply(closing, c.subtract(p, self.ex_entry) if self.side > 0 else c.subtract(self.ex_entry, p))
            close_fee = fee if closing == q else share(fee, closing, q)
            self.c_fills += 1
            self.c_cash += -d * closing * p
            self.c_fees += close_fee
            self._close(closing, p, close_fee, f, out)
            if self.qty == 0:
                cycles.append(Cycle(self.account, self.market, self.c_start, f.time, self.c_fills, self.c_cash, self.c_fees, self.c_pnl, self.c_net))  # type: ignore[arg-type]
                self.side = 0
                self.cost = self.fee = ZERO
                self.c_start = None
                self.c_fills = 0
                self.c_cash = self.c_fees = self.c_pnl = self.c_net = ZERO
            rest = q - closing
            if rest:  # a flip: the rest opens the other side at this price
                self._open(d, rest, p, fee - close_fee, f)
                self.c_cash += -d * rest * p
                self.c_fees += fee - close_fee
                self.c_fills += 1

    def _open(self, d: int, q: Decimal, p: Decimal, fee: Decimal, f: PerpFill) -> None:
        notional = q * p
        if self.side == 0:
            self.side = d
            self.ex_entry = p
            self.c_start = f.time
        else:
            c = EXCHANGE_CONTEXT
            self.ex_entry = c.divide(c.add(c.multiply(self.qty, self.ex_entry), c.multiply(q, p)), c.add(self.qty, q))
        self.qty += q
        self.cost += notional
        self.fee += fee
        if self.dated:
            self.lots.append([q, notional, fee, f.time, f.id])

    def _close(self, closing: Decimal, p: Decimal, close_fee: Decimal, f: PerpFill, out: list | None) -> None:
        if not self.dated:  # average, no rows: relieve the pooled cost and fees in one piece
            cost = share(self.cost, closing, self.qty)
            ofee = share(self.fee, closing, self.qty)
            self.cost -= cost
            self.fee -= ofee
            exit_notional = closing * p
            pnl = exit_notional - cost if self.side > 0 else cost - exit_notional
            self.c_pnl += pnl
            self.c_net += pnl - ofee - close_fee
            self.qty -= closing
            return
        kind = CLOSE_KINDS.get(f.system, "system")
        long = self.side > 0
        side = "long" if long else "short"
        lots = self.lots
        average = self.method == "average"
        if average:  # the pooled cost and fees relieved by quantity, then spread over the dated pieces
            cost_left = share(self.cost, closing, self.qty)
            open_fee_left = share(self.fee, closing, self.qty)
            self.cost -= cost_left
            self.fee -= open_fee_left
        need = closing
        fee_left = close_fee
        account, market, method, closed = self.account, self.market, self.method, f.time
        while need:
            lot = lots[0]
            lq = lot[0]
            part = lq if lq <= need else need
            if average:
                if part == need:
                    cost, ofee = cost_left, open_fee_left
                else:
                    cost = share(cost_left, part, need)
                    ofee = share(open_fee_left, part, need)
                    cost_left -= cost
                    open_fee_left -= ofee
            else:
                if part == lq:
                    cost, ofee = lot[1], lot[2]
                else:
                    cost = share(lot[1], part, lq)
                    ofee = share(lot[2], part, lq)
                self.cost -= cost
                self.fee -= ofee
            if part == lq:
                lots.popleft()
            else:
                lot[0] = lq - part
                if not average:
                    lot[1] -= cost
                    lot[2] -= ofee
            cfee = fee_left if part == need else share(fee_left, part, need)
            fee_left -= cfee
            exit_notional = part * p
            pnl = exit_notional - cost if long else cost - exit_notional
            fees = ofee + cfee
            net = pnl - fees
            if out is not None:
                out.append(Realized(account, market, side, part, lot[3], closed, (cost / part).quantize(QUANTUM), p, cost, fees, pnl, net, kind, method, lot[4], f.id))
            self.c_pnl += pnl
            self.c_net += net
            need -= part
        self.qty -= closing

    # -- figures ----------------------------------------------------------------------------------
    def position(self) -> OpenPosition | None:
        if self.side == 0:
            return None
        with localcontext(EXACT):
            if not self.dated:
                lots = [OpenLot(self.qty, self.cost, self.fee, self.c_start, "")]  # type: ignore[arg-type]
            elif self.method == "average":
                lots = []
                cost_left, fee_left, q_left = self.cost, self.fee, self.qty
                for lq, _c, _f, opened, lot_id in self.lots:
                    c = share(cost_left, lq, q_left)
                    fe = share(fee_left, lq, q_left)
                    lots.append(OpenLot(lq, c, fe, opened, lot_id))
                    cost_left -= c
                    fee_left -= fe
                    q_left -= lq
            else:
                lots = [OpenLot(*lot) for lot in self.lots]
            avg = (self.cost / self.qty).quantize(QUANTUM)
        return OpenPosition(self.account, self.market, "long" if self.side > 0 else "short", self.net, self.cost, avg, self.ex_entry, lots[0].opened, tuple(lots))


def exchange_unrealized(net: Decimal, mark: Decimal, entry: Decimal) -> Decimal:
    """Unrealized P&L as the exchange computes it (A-PERP-3): ``net * (mark - entry)`` at 28 digits."""
    c = EXCHANGE_CONTEXT
    return c.multiply(net, c.subtract(mark, entry))


class PerpResult(NamedTuple):
    realized: list[Realized]
    positions: list[OpenPosition]
    cycles: list[Cycle]


class PerpEngine:
    """Books perp fills as they come (in time order per account and market)."""

    __slots__ = ("method", "books", "realized", "cycles", "_out", "_dated")

    def __init__(self, method: str = "average", *, rows: bool = True) -> None:
        if method not in PERP_METHODS:
            raise ValueError(f"unknown perpetual matching method {method!r}; expected one of {list(PERP_METHODS)}")
        self.method = method
        self.books: dict[tuple[str, str], PerpBook] = {}
        self.realized: list[Realized] = []
        self.cycles: list[Cycle] = []
        self._out = self.realized if rows else None  # rows=False: figures and cycles only (the proof)
        self._dated = rows

    def book(self, account: str, market: str) -> PerpBook:
        b = self.books.get((account, market))
        if b is None:
            b = self.books[(account, market)] = PerpBook(account, market, self.method, self._dated)
        return b

    def feed(self, fill: PerpFill) -> None:
        if not (type(fill.quantity) is Decimal and fill.quantity > 0 and type(fill.price) is Decimal and type(fill.fee) is Decimal):
            raise ValueError(f"perp fill {fill.id}: quantity must be a Decimal > 0, price and fee Decimals")
        if fill.side not in ("buy", "sell"):
            raise ValueError(f"perp fill {fill.id}: side must be 'buy' or 'sell', got {fill.side!r}")
        b = self.books.get((fill.account, fill.market))
        if b is None:
            b = self.book(fill.account, fill.market)
        b.apply(fill, self._out, self.cycles)

    def feed_exact(self, fill: PerpFill) -> PerpBook:
        """``feed`` inside a caller's ``localcontext(EXACT)``, for fills the reader built (checked there);
        returns the fill's book."""
        b = self.books.get((fill.account, fill.market))
        if b is None:
            if not (fill.quantity > 0 and fill.side in ("buy", "sell")):
                raise ValueError(f"perp fill {fill.id}: quantity must be > 0 and side 'buy' or 'sell'")
            b = self.book(fill.account, fill.market)
        elif not fill.quantity > 0:
            raise ValueError(f"perp fill {fill.id}: quantity must be > 0")
        b.apply_exact(fill, self._out, self.cycles)
        return b

    def positions(self) -> list[OpenPosition]:
        out = [b.position() for _k, b in sorted(self.books.items())]
        return [p for p in out if p is not None]

    def result(self) -> PerpResult:
        return PerpResult(self.realized, self.positions(), self.cycles)


def book_perps(fills: Iterable[PerpFill], method: str = "average") -> PerpResult:
    """Book ``fills`` (in time order) with ``method``: realized rows, open positions, closed cycles."""
    engine = PerpEngine(method)
    feed = engine.feed
    for f in fills:
        feed(f)
    return engine.result()
