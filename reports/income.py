"""Income and expense categories from the valued ledger: interest, funding, perp P&L, fees.

These are the flows that are not spot disposals (TAX-RULES §7): lend interest (income at value on
receipt), borrow interest (expense), perpetual realized P&L and funding (their own categories, as
posted by the sync), trading and withdrawal fees. Values are the holding leg's quantity times its
reporting-currency unit price (``ledger.prices``); an unvalued leg is counted apart, never as zero.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, text

from ledger.money import D, EXACT
from ledger.types import utc_from_db

__all__ = ["CATEGORIES", "IncomeLine", "income_summary"]

#: Entry kind -> the category shown to the accountant.
CATEGORIES = {
    "interest-income": "interest received",
    "interest-expense": "interest paid",
    "funding": "perp funding",
    "realized-pnl": "perp realized P&L",
    "perp-fee": "perp trading fees",
    "liquidation": "perp liquidation",
}


@dataclass
class IncomeLine:
    year: int
    category: str
    value: Decimal = Decimal(0)
    entries: int = 0
    unpriced: int = 0
    assets: set[str] = field(default_factory=set)

    @property
    def assets_cell(self) -> str:
        """The assets as one text cell for a CSV or XLSX (``reports.safety.text_cell``: a symbol from
        the exchange never becomes a formula or a control sequence)."""
        from .safety import text_cell

        return text_cell(", ".join(text_cell(a) for a in sorted(self.assets)))


def income_summary(conn: Connection, year_of: Callable[[datetime], int], *, venue_account: str | None = None,
                   convert: Callable[[datetime, Decimal], Decimal] | None = None) -> list[IncomeLine]:
    """Per tax year and category: the signed value (positive = money in), entries, unpriced entries.
    ``convert(t, value)``: each value in another currency (``ledger.fxconvert.EventConverter.value``)."""
    kinds = ", ".join(f"'{k}'" for k in CATEGORIES)
    params: dict = {}
    where = f"e.kind IN ({kinds}) AND (ac.name LIKE 'Assets:Backpack:%' OR ac.name LIKE 'Liabilities:Backpack:%')"
    if venue_account:
        where += " AND e.venue_account = :acct"
        params["acct"] = venue_account
    rows = conn.execute(
        text(
            "SELECT e.timestamp, e.kind, a.symbol, p.quantity, p.unit_price, ac.name FROM journal_entries e"
            " JOIN postings p ON p.entry_id = e.id JOIN accounts ac ON ac.id = p.account_id JOIN assets a ON a.id = p.asset_id"
            f" WHERE {where} ORDER BY e.timestamp, e.entry_key"
        ),
        params,
    )
    out: dict[tuple[int, str], IncomeLine] = {}
    for ts, kind, asset, q, price, account in rows:
        t = utc_from_db(ts)
        y = year_of(t)
        cat = CATEGORIES[kind]
        line = out.setdefault((y, cat), IncomeLine(y, cat))
        qd = q if isinstance(q, Decimal) else D(q)
        # A borrow-interest leg grows a liability (negative quantity): money out, like a paid fee.
        line.entries += 1
        line.assets.add(asset)
        if price is None:
            line.unpriced += 1
            continue
        v = EXACT.multiply(qd, price if isinstance(price, Decimal) else D(price))
        line.value += convert(t, v) if convert is not None else v
    return [out[k] for k in sorted(out)]
