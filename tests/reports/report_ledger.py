"""A small valued ledger with gains of both terms, income, fees and a snapshot: the reports' tests share it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from ledger.journal import Entry, Journal
from ledger.money import D
from ledger.posting import Source, cash, deposit, lent, trade
from ledger.reconcile import _ledger_figures, check
from ledger.store import SnapshotLineIn, save_snapshot

UTC = timezone.utc
T0 = datetime(2024, 1, 2, 12, tzinfo=UTC)

#: BTC price at each entry (USD); USDC is 1 under the par policy.
PRICES = {"d1": D(1), "b1": D(100), "b2": D(150), "i1": D(1), "s1": D(300), "s2": D(400), "b3": D(420), "i2": D(1)}


def valued(e: Entry, btc: Decimal) -> Entry:
    legs = tuple(
        l._replace(unit_price=(btc if l.asset == "BTC" else D(1)), price_currency="USD") if l.account.startswith(("Assets:", "Liabilities:")) else l
        for l in e.legs
    )
    return e._replace(legs=legs)


def entries(acct: str = "main") -> list[Entry]:
    s = lambda ep, k, t: Source(acct, ep, k, t)  # noqa: E731
    return [
        valued(deposit(s("deposits", "d1", T0), asset="USDC", quantity=D("2000"), internal=False), PRICES["d1"]),
        valued(trade(s("fills", "b1", datetime(2024, 3, 1, 12, tzinfo=UTC)), kind="spot-trade", base="BTC", quote="USDC", side="buy",
                     quantity=D("2"), quote_quantity=D("200"), fee=D("0.5"), fee_asset="USDC"), PRICES["b1"]),
        valued(trade(s("fills", "b2", datetime(2024, 9, 1, 12, tzinfo=UTC)), kind="spot-trade", base="BTC", quote="USDC", side="buy",
                     quantity=D("1"), quote_quantity=D("150"), fee=D("0.25"), fee_asset="USDC"), PRICES["b2"]),
        valued(cash(s("interest", "i1", datetime(2024, 10, 1, tzinfo=UTC)), kind="interest-income", asset="USDC", quantity=D("1.25"),
                    counter="Income:Interest", wallet=lent(acct, "USDC")), PRICES["i1"]),
        valued(trade(s("fills", "s1", datetime(2025, 3, 5, 12, tzinfo=UTC)), kind="spot-trade", base="BTC", quote="USDC", side="sell",
                     quantity=D("1"), quote_quantity=D("300"), fee=D("0.3"), fee_asset="USDC"), PRICES["s1"]),
        valued(trade(s("fills", "s2", datetime(2025, 6, 1, 12, tzinfo=UTC)), kind="spot-trade", base="BTC", quote="USDC", side="sell",
                     quantity=D("1.5"), quote_quantity=D("600"), fee=D("0.6"), fee_asset="USDC"), PRICES["s2"]),
        valued(trade(s("fills", "b3", datetime(2025, 8, 1, 12, tzinfo=UTC)), kind="spot-trade", base="BTC", quote="USDC", side="buy",
                     quantity=D("0.25"), quote_quantity=D("105"), fee=D("0.1"), fee_asset="USDC"), PRICES["b3"]),
        valued(cash(s("interest", "i2", datetime(2025, 4, 1, tzinfo=UTC)), kind="interest-income", asset="USDC", quantity=D("2.5"),
                    counter="Income:Interest", wallet=lent(acct, "USDC")), PRICES["i2"]),
    ]


def snapshot_as_ledger(engine, *accounts: str, taken_at: datetime = datetime(2026, 1, 10, tzinfo=UTC),
                       short: dict[tuple[str, str], Decimal] | None = None) -> None:
    """A snapshot of each venue account equal to the ledger at ``taken_at`` (the exchange agrees with it: a report
    over the ledger reconciles at its period end), less ``short`` per (wallet, asset) (an exchange that disagrees)."""
    with engine.begin() as conn:
        for acct in accounts:
            figures = _ledger_figures(conn, acct, taken_at)
            for k, q in (short or {}).items():
                figures[k] = figures.get(k, Decimal(0)) - q
            save_snapshot(conn, venue_account=acct, taken_at=taken_at, payload={},
                          lines=[SnapshotLineIn(w, a, q) for (w, a), q in sorted(figures.items())])


def build(engine, *, snapshot_at: datetime = datetime(2026, 1, 10, tzinfo=UTC), acct: str = "main") -> None:
    """Post the ledger and a snapshot equal to it (taken ``snapshot_at``); keep a check."""
    with engine.begin() as conn:
        Journal(conn).post(entries(acct))
    snapshot_as_ledger(engine, acct, taken_at=snapshot_at)
    with engine.begin() as conn:
        check(conn, acct)


def later(days: int) -> datetime:
    return T0 + timedelta(days=days)
