"""The perpetual lines of the tax exports: one call to ``ledger.perps.stream_perps`` (docs/perps.md).

Perpetual figures never come from spot lots or from the journal's income categories: the realized
P&L, the trading fees, the funding (received and paid apart) and the liquidation-kind settlements of the
tax year are the position engine's per-market totals, in the reporting currency (each amount at the
USDC rate of its UTC day: ``ledger.perps.UsdcRates``). ``PerpSummary.lines`` has the same shape and
category names as ``reports.income.income_summary``'s lines, so every jurisdiction lists them where it
listed the ledger's categories before; ``PerpSummary.totals`` are what the tests compare with
``perp_books`` for the same year.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from reports.income import IncomeLine

__all__ = ["PERP_CATEGORIES", "PerpSummary", "perp_summary"]

#: The income summary's perpetual categories (reports.income.CATEGORIES' names), in the order listed.
PERP_CATEGORIES = ("perp realized P&L", "perp trading fees", "perp funding", "perp liquidation")
ZERO = Decimal(0)


@dataclass
class PerpSummary:
    """A tax year's perpetual figures in the reporting currency (and in USDC), from the position engine."""

    method: str
    currency: str
    lines: list[IncomeLine]
    #: name -> exact amount: realized, fees, funding received / paid / net, other, net (reporting currency; USDC twins as ``usdc ...``)
    totals: dict[str, Decimal]
    markets: int
    notes: list[str] = field(default_factory=list)
    #: Amounts (per market and UTC day) with no USDC rate: in no reporting-currency figure.
    unvalued: int = 0
    fx: str = ""


def perp_summary(conn: Any, settings: Any, year: int, *, venue_account: str | None = None, reporting: Any = None, method: str | None = None) -> PerpSummary:
    """The year's perpetual totals from ``ledger.perps.stream_perps`` (no rows kept: the totals only)."""
    from ledger.perps import stream_perps

    books = stream_perps(conn, settings, year=year, venue_account=venue_account, method=method, reporting=reporting)
    cur = books.currency
    parts = {"realized": ZERO, "fees": ZERO, "funding received": ZERO, "funding paid": ZERO, "other": ZERO}
    usdc = dict(parts)
    unval = dict.fromkeys(("realized", "fees", "funding", "other"), 0)
    closes = fills = payments = 0
    assets: set[str] = set()
    for t in books.totals:
        parts["realized"] += t.realized_reporting
        parts["fees"] += t.fees_reporting
        parts["funding received"] += t.funding_received_reporting
        parts["funding paid"] += t.funding_paid_reporting
        parts["other"] += t.other_reporting
        usdc["realized"] += t.realized
        usdc["fees"] += t.fees
        usdc["funding received"] += t.funding_received
        usdc["funding paid"] += t.funding_paid
        usdc["other"] += t.other
        for k, n in t.unvalued_parts.items():
            unval[k] += n
        closes += t.closes
        fills += t.fills
        assets.add(t.market)
    payments = sum(f.payments for f in books.funding)
    y = year
    lines = [
        IncomeLine(y, "perp realized P&L", parts["realized"], closes, unval["realized"], set(assets)),
        IncomeLine(y, "perp trading fees", -parts["fees"], fills, unval["fees"], set(assets)),  # signed: money out
        IncomeLine(y, "perp funding", parts["funding received"] + parts["funding paid"], payments, unval["funding"], set(assets)),
        IncomeLine(y, "perp liquidation", parts["other"], 0, unval["other"], set(assets)),
    ]
    lines = [l for l in lines if l.entries or l.value or l.unpriced or l.category == "perp realized P&L" and books.totals]
    totals = {
        "perp realized": parts["realized"], "perp fees": parts["fees"], "perp funding received": parts["funding received"],
        "perp funding paid": parts["funding paid"], "perp funding": parts["funding received"] + parts["funding paid"], "perp other": parts["other"],
        "perp net": parts["realized"] - parts["fees"] + parts["funding received"] + parts["funding paid"] + parts["other"],
        **{f"usdc perp {k}": v for k, v in usdc.items()},
    }
    return PerpSummary(method=books.method, currency=cur, lines=lines, totals=totals, markets=len(books.totals), notes=[n for n in books.notes if "unrealized P&L not computed" not in n],  # open positions are not in a tax year's figures

                       unvalued=books.unvalued, fx=books.fx)
