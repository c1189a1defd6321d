"""The exchange's own bookkeeping: history records in, account state out (docs/assumptions.md).

One rule per stream, exactly the contract the ledger's posting rules implement independently:

- spot fill (A-FEE-1/2): ``Bid`` base +q, quote -q*p; ``Ask`` the reverse; ``fee`` leaves ``feeSymbol``.
- perp fill (A-PERP-1): moves no balance; it moves the position (net quantity and entry price).
- settlement (A-PERP-1/2): USDC += quantity (signed).
- funding: no balance (the ``FundingPayment`` settlement moves the cash); kept for the position figures.
- interest (A-INT-1): ``Lend`` compounds into the lend; ``Borrow``/``EntryFee`` grow the liability;
  ``UnrealizedPositivePnl``/``UnrealizedNegativePnl`` move USDC spot.
- borrowLend (A-BL-1): ``Lend`` spot->lent, ``LendRedeem`` lent->spot, ``Borrow`` spot+ liability+,
  ``BorrowRepay`` spot- liability-; rows with ``source=Interest`` are not posted.
- dust (A-DUST-1), deposits (A-DEP-1, confirmed only), withdrawals (A-WD-1, quantity+fee, confirmed only).
- rfq fills (A-RFQ-1): taker, no fee; quote fills: maker, with fee.

Entry price (docs/assumptions.md A-PERP-3): a fresh position (or the rest of a flip) opens at the
fill's price; an increase moves it to ``(|net| * entry + q * p) / (|net| + q)``; a reduction leaves it
unchanged. Each operation is rounded to 28 significant digits, half-even (the precision of the
exchange's own ``entryPrice`` sample). A reduction realizes ``closing * (p - entry)`` (long) or
``closing * (entry - p)`` (short), also at 28 digits; the generator settles it as ``RealizePnl`` in
whole USDC units (6 decimals), the remainder carried to the next settlement.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass, field
from decimal import Decimal

__all__ = ["Book", "Position", "split_symbol", "is_perp"]

ZERO = Decimal(0)
USDC = "USDC"
#: A-PERP-3: the exchange's position arithmetic (entry price, realized and unrealized P&L).
POSITION_CONTEXT = decimal.Context(prec=28, rounding=decimal.ROUND_HALF_EVEN)


def split_symbol(symbol: str) -> tuple[str, str]:
    parts = symbol.split("_")
    if len(parts) < 2:
        raise ValueError(f"symbol {symbol!r} is not BASE_QUOTE[_KIND]")
    return parts[0], parts[1]


def is_perp(symbol: str) -> bool:
    return symbol.endswith("_PERP")


@dataclass(slots=True)
class Position:
    symbol: str
    position_id: str
    net: Decimal = ZERO
    entry_price: Decimal = ZERO
    realized: Decimal = ZERO  # since the position was opened
    funding: Decimal = ZERO  # funding rows since opened
    fees: Decimal = ZERO
    opened_ms: int = 0
    last_price: Decimal = ZERO

    @property
    def entry(self) -> Decimal:
        return self.entry_price if self.net else ZERO


@dataclass
class Book:
    spot: dict[str, Decimal] = field(default_factory=dict)
    lent: dict[str, Decimal] = field(default_factory=dict)
    borrowed: dict[str, Decimal] = field(default_factory=dict)
    interest_total: dict[str, Decimal] = field(default_factory=dict)  # + lend income, - borrow cost
    bl_position_ids: dict[str, str] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    #: Every perpetual position id handed out: ids are unique per account, as the exchange's are.
    position_ids: set[str] = field(default_factory=set)

    # ---- helpers
    def _add(self, asset: str, amount: Decimal) -> None:
        self.spot[asset] = self.spot.get(asset, ZERO) + amount

    def _add_to(self, table: dict[str, Decimal], asset: str, amount: Decimal) -> None:
        table[asset] = table.get(asset, ZERO) + amount

    # ---- one method per stream
    def fill(self, r: dict, ms: int = 0) -> Decimal:
        """Apply a fill; returns the realized PnL of a perp fill (0 for spot)."""
        symbol = r["symbol"]
        q = Decimal(r["quantity"])
        p = Decimal(r["price"])
        fee = Decimal(r["fee"])
        if is_perp(symbol):
            return self._perp(symbol, r["side"], q, p, fee, ms, r.get("orderId") or "")
        base, quote = split_symbol(symbol)
        if r["side"] == "Bid":
            self._add(base, q)
            self._add(quote, -(q * p))
        else:
            self._add(base, -q)
            self._add(quote, q * p)
        if fee:
            self._add(r["feeSymbol"], -fee)
        return ZERO

    def _perp(self, symbol: str, side: str, q: Decimal, p: Decimal, fee: Decimal, ms: int, oid: str) -> Decimal:
        pos = self.positions.get(symbol)
        if pos is None or pos.net == 0:
            pos = Position(symbol=symbol, position_id=_position_id(symbol, ms, oid, self.position_ids), opened_ms=ms)
            self.positions[symbol] = pos
        d = q if side == "Bid" else -q
        realized = ZERO
        pos.fees += fee
        pos.last_price = p
        c = POSITION_CONTEXT
        if pos.net == 0:
            pos.net = d
            pos.entry_price = p
        elif (pos.net > 0) == (d > 0):
            size = abs(pos.net)
            pos.entry_price = c.divide(c.add(c.multiply(size, pos.entry_price), c.multiply(q, p)), c.add(size, q))
            pos.net += d
        else:
            closing = min(q, abs(pos.net))
            entry = pos.entry_price
            realized = c.multiply(closing, c.subtract(p, entry)) if pos.net > 0 else c.multiply(closing, c.subtract(entry, p))
            pos.realized += realized
            pos.net += d
            if pos.net == 0:
                pos.entry_price = ZERO
            elif (pos.net > 0) == (d > 0):  # flipped: the remainder opens at this price
                pos.entry_price = p
        return realized

    def settlement(self, r: dict) -> None:
        self._add(USDC, Decimal(r["quantity"]))

    def funding(self, r: dict) -> None:
        pos = self.positions.get(r["symbol"])
        if pos is not None and pos.net != 0:
            pos.funding += Decimal(r["quantity"])

    def interest(self, r: dict) -> None:
        q = Decimal(r["quantity"])
        asset = r["symbol"]
        kind = r["paymentType"]
        if kind == "Lend":
            self._add_to(self.lent, asset, q)
            self._add_to(self.interest_total, asset, q)
        elif kind in ("Borrow", "EntryFee"):
            self._add_to(self.borrowed, asset, q)
            self._add_to(self.interest_total, asset, -q)
        elif kind == "UnrealizedPositivePnl":
            self._add(USDC, q)
        elif kind == "UnrealizedNegativePnl":
            self._add(USDC, -q)

    def borrow_lend(self, r: dict) -> None:
        if r.get("source") == "Interest":
            return
        q = Decimal(r["quantity"])
        asset = r["symbol"]
        kind = r["eventType"]
        self.bl_position_ids[asset] = r["positionId"]
        if kind == "Lend":
            self._add(asset, -q)
            self._add_to(self.lent, asset, q)
        elif kind == "LendRedeem":
            self._add(asset, q)
            self._add_to(self.lent, asset, -q)
        elif kind == "Borrow":
            self._add(asset, q)
            self._add_to(self.borrowed, asset, q)
        elif kind == "BorrowRepay":
            self._add(asset, -q)
            self._add_to(self.borrowed, asset, -q)
        if not self.lent.get(asset) and not self.borrowed.get(asset):
            self.interest_total.pop(asset, None)  # a closed position's interest is history

    def dust(self, r: dict) -> None:
        self._add(r["symbol"], -Decimal(r["quantity"]))
        self._add(USDC, Decimal(r["usdcReceived"]))

    def deposit(self, r: dict) -> None:
        if r.get("status") == "confirmed":
            self._add(r["symbol"], Decimal(r["quantity"]))

    def withdrawal(self, r: dict) -> None:
        if r.get("status") == "confirmed":
            self._add(r["symbol"], -(Decimal(r["quantity"]) + Decimal(r["fee"])))

    def rfq_fill(self, r: dict) -> None:
        base, quote = split_symbol(r["symbol"])
        q = Decimal(r["quantity"])
        notional = q * Decimal(r["fillPrice"])
        sign = 1 if r["side"] == "Bid" else -1
        self._add(base, sign * q)
        self._add(quote, -sign * notional)

    def quote_fill(self, r: dict) -> None:
        self.rfq_fill(r)
        fee = Decimal(r["fee"])
        if fee:
            self._add(r["feeSymbol"], -fee)

    # ---- dispatch by stream name (scenario keys)
    def apply(self, stream: str, r: dict, ms: int = 0) -> None:
        handler = _DISPATCH.get(stream)
        if handler is not None:
            if stream == "fills":
                self.fill(r, ms)
            else:
                handler(self, r)


def _position_id(symbol: str, ms: int, oid: str, taken: set[str]) -> str:
    """A deterministic id for the position opened by order ``oid`` at ``ms``, never one already
    ``taken`` (a 32-bit hash of ~150,000 positions collides a few times: the exchange's ids never do,
    and a settlement naming a shared id would be attributed to the wrong market). The replay of the
    same history hands out the same ids, in the same order."""
    import zlib

    salt = 0
    while True:
        pid = str(zlib.crc32(f"{symbol}:{ms}:{oid}{':' + str(salt) if salt else ''}".encode()) + 1_000_000_000)
        if pid not in taken:
            taken.add(pid)
            return pid
        salt += 1


_DISPATCH = {
    "fills": Book.fill, "settlements": Book.settlement, "funding": Book.funding, "interest": Book.interest,
    "borrowLendHistory": Book.borrow_lend, "dust": Book.dust, "deposits": Book.deposit,
    "withdrawals": Book.withdrawal, "rfqFills": Book.rfq_fill, "quoteFills": Book.quote_fill,
}
