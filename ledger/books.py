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

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection

from . import forked
from .booking import Engine, Finding, Gain, IncomeRow, Lot, OpeningLot, SafeHarborAllocation, Settings, load_opening_lots
from .booking.jurisdictions import Jurisdiction, jurisdiction

__all__ = ["BookSettings", "Books", "resolve_settings", "book_ledger", "stream_gains", "basis_rollforward"]


@dataclass(frozen=True)
class BookSettings:
    """Everything a booking of the ledger depends on, resolved once."""

    booking: Settings
    #: Reporting currency and stablecoin policy (which assets are cash, not lot-tracked).
    currency: str = "USD"
    stablecoin_policy: str = "par"
    opening_lots: tuple[OpeningLot, ...] = ()
    #: Books the ledger's values in ``currency`` when the ledger is valued in another (``ledger.fxconvert``).
    convert: Any = None

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
        unit_cost_rounding=getattr(reporting, "unit_cost_rounding", "exact"),
        tax_timezone=getattr(reporting, "tax_timezone", None) if own else None,
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
    #: ``basis_rollforward``'s lots at the start of its period.
    checkpoint_lots: list[Lot] = field(default_factory=list)

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


def book_ledger(conn: Connection, settings: BookSettings, *, until: datetime | None = None, venue_account: str | None = None,
                lots: bool = True, gains: bool = True) -> Books:
    """Book the valued ledger (its entries up to and including ``until``, if given). ``lots=False``
    skips building the open lots (an export of gains needs none); ``gains=False`` keeps no gain
    (``Books.gains`` empty: the lots at a date, the income and the allocations need none, and a
    million gains held take most of a GiB)."""
    kept: list[Gain] = []
    books = _run(conn, settings, kept.extend if gains else _drop, until=until, venue_account=venue_account, lots=lots)
    books.gains = kept
    return books


def _drop(gains: list[Gain]) -> None:
    """A sink that keeps nothing."""


def stream_gains(conn: Connection, settings: BookSettings, sink: Callable[[list[Gain]], None], *, until: datetime | None = None,
                 venue_account: str | None = None) -> Books:
    """``book_ledger``, handing the gains to ``sink`` a batch at a time, in booking order, as they are
    booked (the returned ``Books.gains`` is empty, and so are its open lots): an export of any size
    holds one batch of gains at a time."""
    return _run(conn, settings, sink, until=until, venue_account=venue_account, lots=False)


def basis_rollforward(conn: Connection, settings: BookSettings, at: datetime):
    """The basis roll-forward from the start of ``at``'s calendar year (UTC) to ``at``, all accounts
    (``ledger.reconcile.basis_rollforward``), from one booking: the lots open at the start are taken
    as the booking passes it."""
    from .reconcile import basis_rollforward as rollforward

    start = datetime(at.year, 1, 1, tzinfo=timezone.utc)
    gains: list[Gain] = []

    def keep(batch: list[Gain]) -> None:  # only the period's disposals enter the roll-forward: no earlier year's gain is held
        gains.extend(g for g in batch if g.disposed > start)

    books = _run(conn, settings, keep, until=at, venue_account=None, lots=True, checkpoint=start)
    return rollforward(start, at, books.checkpoint_lots, books.open_lots, gains)


def _run(conn: Connection, settings: BookSettings, sink: Callable[[list[Gain]], None], *, until: datetime | None, venue_account: str | None,
         lots: bool, checkpoint: datetime | None = None) -> Books:
    """Read -> bridge -> engine, a chunk at a time (``docs/pipeline.md``). With ``checkpoint``, the
    lots open then (every event up to it booked) are kept in ``Books.checkpoint_lots``."""
    from .bridge import events
    from .reader import read_entries

    found: list[Finding] = []
    engine = Engine(settings.booking, opening_lots=settings.opening_lots)
    at_checkpoint: list[Lot] | None = None
    with forked.no_cycle_collection():
        convert = settings.convert
        for batch in events(read_entries(conn, venue_account=venue_account, until=until), settings.cash, found,
                            currency=convert.source if convert is not None else settings.currency):
            if convert is not None:
                batch = convert(batch)
            if checkpoint is not None and at_checkpoint is None:
                cut = bisect_left(batch, (checkpoint, 3))  # the events at or before the checkpoint
                if cut < len(batch):
                    booked = engine.feed(batch[:cut])
                    if booked:
                        sink(booked)
                    at_checkpoint = engine.open_lots()
                    batch = batch[cut:]
            booked = engine.feed(batch)
            if booked:
                sink(booked)
        if checkpoint is not None and at_checkpoint is None:
            at_checkpoint = engine.open_lots()
        result = engine.finish(lots=lots)
        if result.gains:
            sink(result.gains)
    found.sort(key=lambda f: (f.time, f.key))
    return Books(settings=settings, gains=[], open_lots=result.open_lots, income=result.income, findings=found + result.findings,
                 allocations=result.allocations, checkpoint_lots=at_checkpoint or [])
