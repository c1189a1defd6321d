"""Posting rules: economic events -> balanced journal entries (pure; docs/posting-rules.md).

The account tree (``<acct>`` is the venue account's configured name):

    Assets:Backpack:<acct>:Spot:<asset>        spot holdings (what /api/v1/capital shows, A-BAL-1)
    Assets:Backpack:<acct>:Lent:<asset>        amounts lent out (borrowLend positions, + side)
    Assets:Backpack:<acct>:Perp:<symbol>       open perpetual position, in contracts of <symbol>
    Liabilities:Backpack:<acct>:Borrowed:<asset>  amounts borrowed (borrowLend positions, - side)
    Equity:Trading                             the exchange leg of conversions (trading-account method)
    Equity:External                            deposits from and withdrawals to the outside world
    Equity:Transfers                           transfers between the user's own sub-accounts (nets to 0)
    Income:Interest | Income:Funding | Income:Perp:RealizedPnl | Income:Perp:<settlement source>
    Expenses:Fees:Trading | Expenses:Fees:Withdrawal | Expenses:Interest

Every entry balances per asset: a conversion (a trade, dust) is booked through ``Equity:Trading``
so that each asset's legs sum to zero on their own (Selinger's trading accounts, as beancount's
"conversions"). Quantities are exact; ``quantity * price`` uses the wide local context.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from .journal import Entry, Leg
from .money import EXACT, ZERO

__all__ = [
    "spot",
    "lent",
    "borrowed",
    "perp",
    "TRADING",
    "EXTERNAL",
    "TRANSFERS",
    "Source",
    "trade",
    "perp_fill",
    "cash",
    "move",
    "deposit",
    "withdrawal",
]

TRADING = "Equity:Trading"
EXTERNAL = "Equity:External"
TRANSFERS = "Equity:Transfers"
FEES_TRADING = "Expenses:Fees:Trading"
FEES_WITHDRAWAL = "Expenses:Fees:Withdrawal"

# The builders run once per record of a million-fill repost: records are built positionally
# (``tuple.__new__`` skips the NamedTuple constructor's keyword handling) and constants are shared.
_new = tuple.__new__
_ONE = Decimal(1)
_MINUS_ONE = Decimal(-1)


def spot(acct: str, asset: str) -> str:
    return f"Assets:Backpack:{acct}:Spot:{asset}"


def lent(acct: str, asset: str) -> str:
    return f"Assets:Backpack:{acct}:Lent:{asset}"


def borrowed(acct: str, asset: str) -> str:
    return f"Liabilities:Backpack:{acct}:Borrowed:{asset}"


def perp(acct: str, symbol: str) -> str:
    return f"Assets:Backpack:{acct}:Perp:{symbol}"


class Source:
    """Where an entry comes from: venue account, endpoint, the record's natural key and time."""

    __slots__ = ("acct", "endpoint", "key", "time", "raw_id")

    def __init__(self, acct: str, endpoint: str, key: str, time: datetime, raw_id: int | None = None):
        self.acct, self.endpoint, self.key, self.time, self.raw_id = acct, endpoint, key, time, raw_id

    def entry(self, kind: str, description: str, legs: list[Leg], suffix: str = "") -> Entry:
        acct, key = self.acct, self.key
        # Entry(key, time, kind, description, legs, venue_account, endpoint, source_key, raw_record_id)
        return _new(Entry, (f"{acct}:{key}{suffix}", self.time, kind, description, tuple(legs), acct, self.endpoint, key, self.raw_id))


def _fee_legs(acct: str, fee: Decimal, fee_asset: str | None) -> list[Leg]:
    if not fee or not fee_asset:
        return []
    # A-FEE-2: positive fee paid, negative a rebate received; either way it leaves/enters spot.
    return [
        _new(Leg, (f"Assets:Backpack:{acct}:Spot:{fee_asset}", fee_asset, -fee, None, None)),  # spot(acct, fee_asset)
        _new(Leg, (FEES_TRADING, fee_asset, fee, None, None)),
    ]


def trade(
    src: Source,
    *,
    kind: str,
    base: str,
    quote: str,
    side: str,
    quantity: Decimal,
    quote_quantity: Decimal | None = None,
    price: Decimal | None = None,
    fee: Decimal = ZERO,
    fee_asset: str | None = None,
    description: str = "",
) -> Entry:
    """A conversion between two assets in spot: ``side`` 'buy' receives base, 'sell' gives it.

    ``quote_quantity`` defaults to ``quantity * price`` (exact). The fee leaves the spot balance of
    ``fee_asset`` on top of the trade legs (A-FEE-1).
    """
    if quote_quantity is None:
        if price is None:
            raise ValueError("trade needs price or quote_quantity")
        quote_quantity = EXACT.multiply(quantity, price)
    sign, neg = (_ONE, _MINUS_ONE) if side == "buy" else (_MINUS_ONE, _ONE)
    a = src.acct
    legs = [
        _new(Leg, (f"Assets:Backpack:{a}:Spot:{base}", base, sign * quantity, None, None)),  # spot(a, base)
        _new(Leg, (TRADING, base, neg * quantity, None, None)),
        _new(Leg, (f"Assets:Backpack:{a}:Spot:{quote}", quote, neg * quote_quantity, None, None)),  # spot(a, quote)
        _new(Leg, (TRADING, quote, sign * quote_quantity, None, None)),
    ]
    if fee and fee_asset:
        legs += _fee_legs(a, fee, fee_asset)
    return src.entry(kind, description or f"{side} {quantity} {base} for {quote_quantity} {quote}", legs)


def perp_fill(src: Source, *, symbol: str, side: str, quantity: Decimal, price: Decimal, description: str = "") -> Entry:
    """A perpetual fill changes the position only; its cash moves through settlements (A-PERP-1)."""
    signed = quantity if side == "buy" else -quantity
    legs = [
        _new(Leg, (f"Assets:Backpack:{src.acct}:Perp:{symbol}", symbol, signed, None, None)),  # perp(src.acct, symbol)
        _new(Leg, (TRADING, symbol, -signed, None, None)),
    ]
    return src.entry("perp-fill", description or f"perp {side} {quantity} {symbol} @ {price}", legs)


def cash(src: Source, *, kind: str, asset: str, quantity: Decimal, counter: str, wallet: str | None = None, description: str = "") -> Entry:
    """Money arriving in (positive) or leaving (negative) a wallet, against an income/expense/equity account."""
    holding = wallet or spot(src.acct, asset)
    legs = [
        Leg(account=holding, asset=asset, quantity=quantity),
        Leg(account=counter, asset=asset, quantity=-quantity),
    ]
    return src.entry(kind, description or f"{kind} {quantity} {asset}", legs)


def move(src: Source, *, kind: str, asset: str, quantity: Decimal, from_account: str, to_account: str, description: str = "") -> Entry:
    """A quantity moving between two of the user's own accounts."""
    legs = [
        Leg(account=from_account, asset=asset, quantity=-quantity),
        Leg(account=to_account, asset=asset, quantity=quantity),
    ]
    return src.entry(kind, description or f"{kind} {quantity} {asset}", legs)


def deposit(src: Source, *, asset: str, quantity: Decimal, internal: bool, description: str = "") -> Entry:
    counter = TRANSFERS if internal else EXTERNAL
    return cash(src, kind="transfer-in" if internal else "deposit", asset=asset, quantity=quantity, counter=counter, description=description)


def withdrawal(src: Source, *, asset: str, quantity: Decimal, fee: Decimal, internal: bool, description: str = "") -> Entry:
    """A-WD-1: the balance falls by ``quantity + fee``; the fee is an expense."""
    a = src.acct
    counter = TRANSFERS if internal else EXTERNAL
    legs = [
        Leg(account=spot(a, asset), asset=asset, quantity=-(quantity + fee)),
        Leg(account=counter, asset=asset, quantity=quantity),
    ]
    if fee:
        legs.append(Leg(account=FEES_WITHDRAWAL, asset=asset, quantity=fee))
    kind = "transfer-out" if internal else "withdrawal"
    return src.entry(kind, description or f"{kind} {quantity} {asset} (fee {fee})", legs)
