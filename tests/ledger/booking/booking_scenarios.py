"""Small builders for booking scenarios written as data (test helpers, not a test module)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from decimal import Decimal

from ledger.booking import Acquisition, BookingResult, Disposal, Transfer
from ledger.money import EXACT, D


def at(text: str) -> datetime:
    """'2024-01-10' is noon UTC that day (clear of every zone's midnight); a full ISO string
    with an offset is taken as written."""
    if len(text) == 10:
        return datetime.fromisoformat(text + "T12:00:00+00:00")
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def buy(id: str, when: str, qty: str, cost: str | None, *, account: str = "main", asset: str = "BTC", kind: str = "trade") -> Acquisition:
    return Acquisition(id=id, account=account, asset=asset, quantity=D(qty), cost=None if cost is None else D(cost), time=at(when), source=f"test:{id}", kind=kind)


def sell(id: str, when: str, qty: str, proceeds: str, *, account: str = "main", asset: str = "BTC", kind: str = "trade") -> Disposal:
    return Disposal(id=id, account=account, asset=asset, quantity=D(qty), proceeds=D(proceeds), time=at(when), source=f"test:{id}", kind=kind)


def move(id: str, when: str, qty: str, frm: str, to: str, *, fee: str = "0", fee_value: str | None = None, asset: str = "BTC") -> Transfer:
    return Transfer(
        id=id, from_account=frm, to_account=to, asset=asset, quantity=D(qty), fee=D(fee),
        fee_value=None if fee_value is None else D(fee_value), time=at(when), source=f"test:{id}",
    )


def rows(result: BookingResult) -> list[tuple[str, str, Decimal, Decimal, Decimal, str]]:
    """(disposal id, lot id, quantity, cost basis, gain, term) per gain row, in order."""
    return [(g.disposal_id, g.lot_id, g.quantity, g.cost_basis, g.gain, g.term) for g in result.gains]


def dsum(values) -> Decimal:
    """Exact sum (the engine's 60-digit context: parts carry up to 28 decimals)."""
    total = Decimal(0)
    for v in values:
        total = EXACT.add(total, v)
    return total


def total_gain(result: BookingResult) -> Decimal:
    return dsum(g.gain for g in result.gains)


def by_term(result: BookingResult) -> dict[str, Decimal]:
    out: dict[str, Decimal] = defaultdict(Decimal)
    for g in result.gains:
        out[g.term] = EXACT.add(out[g.term], g.gain)
    return dict(out)


def cents(value: Decimal) -> Decimal:
    """Presentation rounding to the cent (half-even), for comparison with published figures."""
    return value.quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")


def lots(result: BookingResult) -> list[tuple[str, str, Decimal, Decimal]]:
    """(account, lot id, quantity, cost) per open lot."""
    return [(lot.account, lot.id, lot.quantity, lot.cost) for lot in result.open_lots]
