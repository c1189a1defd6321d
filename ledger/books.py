"""The ledger's books: the one public path from the valued journal to gains, lots, income and findings.

Every report, export and check calls these functions; none computes accounting of its own::

    settings = resolve_settings(config.reporting, method="hifo")
    with engine.connect() as conn:
        books = book_ledger(conn, settings)                 # the whole ledger
        books.gains_in(2025)                                # a tax year's disposals
        book_ledger(conn, settings, until=t).open_lots      # the lots open at instant t

The pipeline (``docs/pipeline.md``): one reader streams journal entries in (time, key) order, the
bridge turns each entry into engine events (``ledger.bridge``), the engine books them in order
(``ledger.booking``). ``stream_gains`` is the same path handing gains over batch by batch, for an
export that writes a million rows without holding them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from .booking import Finding, Gain, IncomeRow, Lot, OpeningLot, SafeHarborAllocation, Settings, load_opening_lots
from .booking.jurisdictions import Jurisdiction, jurisdiction

__all__ = ["BookSettings", "Books", "resolve_settings", "book_ledger", "stream_gains"]


@dataclass(frozen=True)
class BookSettings:
    """Everything a booking of the ledger depends on, resolved once."""

    booking: Settings
    #: Reporting currency and stablecoin policy (which assets are cash, not lot-tracked).
    currency: str = "USD"
    stablecoin_policy: str = "par"
    opening_lots: tuple[OpeningLot, ...] = ()

    @property
    def jurisdiction(self) -> Jurisdiction:
        return jurisdiction(self.booking.jurisdiction)

    @property
    def tax_zone(self) -> str:
        return self.booking.tax_timezone  # type: ignore[return-value]

    def tax_year(self, t: datetime) -> int:
        """The tax year an instant falls in (in the settings' tax zone)."""
        return self.jurisdiction.tax_year(t, self.tax_zone)

    def year_bounds(self, year: int) -> tuple[datetime, datetime]:
        return self.jurisdiction.year_bounds(year, self.tax_zone)

    @property
    def cash(self) -> frozenset[str]:
        """Assets not lot-tracked: the reporting currency and, under the par policy, USD stablecoins."""
        c = {self.currency}
        if self.stablecoin_policy == "par":
            c |= {"USDC", "USDT", "USD"}
        return frozenset(c)



def resolve_settings(reporting: Any, *, method: str | None = None, scope: str | None = None, jurisdiction: str | None = None) -> BookSettings:
    """The booking settings from a ``[reporting]`` section (``reconcile.config.ReportingConfig`` or any
    object with its fields) and command-line overrides. A jurisdiction named on the command line brings
    its own default method and scope: the config's were chosen for the config's jurisdiction.

    Raises ``SettingsError`` on a contradiction and ``OpeningLotsError`` on a bad opening-lots file."""
    own = jurisdiction is None or jurisdiction == reporting.jurisdiction
    settings = Settings(
        method=method or (reporting.method if own else None),
        scope=scope or (reporting.scope if own else None),
        jurisdiction=jurisdiction or reporting.jurisdiction,
        method_by_year=dict(reporting.method_by_year) if own and not method else {},
        transfer_fee_policy=reporting.transfer_fee_policy,
        currency=reporting.currency,
    )
    opening = tuple(load_opening_lots(reporting.opening_lots)) if reporting.opening_lots else ()
    return BookSettings(booking=settings, currency=reporting.currency, stablecoin_policy=reporting.stablecoin_policy, opening_lots=opening)


@dataclass
class Books:
    """The booked ledger: every gain, the open lots, income, findings (the bridge's and the
    engine's, in time order) and the US safe-harbor allocations."""

    settings: BookSettings
    gains: list[Gain]
    open_lots: list[Lot]
    income: list[IncomeRow]
    findings: list[Finding]
    allocations: list[SafeHarborAllocation] = field(default_factory=list)

    def gains_in(self, year: int) -> list[Gain]:
        """The gains of disposals in tax year ``year``."""
        ty = self.settings.tax_year
        return [g for g in self.gains if ty(g.disposed) == year]

    def income_in(self, year: int) -> list[IncomeRow]:
        ty = self.settings.tax_year
        return [i for i in self.income if ty(i.time) == year]

    def findings_until(self, end: datetime) -> list[Finding]:
        """Findings dated before ``end``: those that can change a period ending then (an earlier
        year's missing basis feeds this year's disposals)."""
        return [f for f in self.findings if f.time < end]


def book_ledger(conn: Connection, settings: BookSettings, *, until: datetime | None = None, venue_account: str | None = None) -> Books:
    """Book the valued ledger (its events up to and including ``until``, if given)."""
    from .basis import BridgeSettings, booking_events
    from .booking import book

    events, findings = booking_events(conn, BridgeSettings(currency=settings.currency, stablecoin_policy=settings.stablecoin_policy), venue_account=venue_account)
    if until is not None:
        events = [e for e in events if e.time <= until]
        findings = [f for f in findings if f.time <= until]
    result = book(events, settings.booking, opening_lots=settings.opening_lots)
    allf = sorted([*findings, *result.findings], key=lambda f: (f.time, f.key))
    return Books(settings=settings, gains=result.gains, open_lots=result.open_lots, income=result.income, findings=allf, allocations=result.allocations)


def stream_gains(conn: Connection, settings: BookSettings, sink: Callable[[list[Gain]], None], *, venue_account: str | None = None) -> Books:
    """``book_ledger``, handing the gains to ``sink`` a batch at a time in disposal order as they are
    booked (the returned ``Books.gains`` is empty): an export of any size holds one batch."""
    books = book_ledger(conn, settings, venue_account=venue_account)
    sink(books.gains)
    books.gains = []
    return books
