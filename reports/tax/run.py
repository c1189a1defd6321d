"""``export tax``: one folder per run, a projection of ``Books`` for one tax year.

``prepare`` books the ledger once (``ledger.books.book_ledger``), selects the year's gains, income and
the findings that can change them; each jurisdiction's module (``us``, ``uk``, ``de``, ``ca``, ``au``, ``jp``, ``generic``)
writes its files into the run folder and returns its totals; ``README.txt`` names every file.
No figure is computed here or in the modules that the engine did not compute: the modules group,
sum and round the engine's rows.
"""

from __future__ import annotations

import dataclasses

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from ledger import forked

from ledger.books import BookSettings, Books, book_ledger
from ledger.booking import Finding, Gain, IncomeRow

from .common import EXIT_INCOMPLETE, Quantize, RunFolder, write_csv

__all__ = ["TaxRun", "TaxResult", "prepare", "export_tax", "INCOMPLETE_KINDS", "FORMATS", "IncompleteData", "JURISDICTION_MODULES"]

FORMATS = ("csv", "xlsx", "pdf", "txf")
#: Findings that change a year's figures: a missing or zero basis, units sold that were never held,
#: a value that could not be found, a conversion that was skipped.
INCOMPLETE_KINDS = frozenset({"missing-basis", "overspend", "unpriced", "unrecognised-trade", "missing-fee-value"})


class IncompleteData(Exception):
    """Findings change the year's figures and ``--allow-incomplete`` was not given (exit 4)."""

    code = EXIT_INCOMPLETE


@dataclass
class TaxRun:
    """Everything one year's export needs, read once."""

    settings: BookSettings
    year: int
    books: Books
    gains: list[Gain]
    income: list[IncomeRow]
    #: reports.income.IncomeLine rows of this year (interest, funding, perp P&L, fees), by category.
    income_lines: list
    findings: list[Finding]
    rounding: Quantize
    formats: tuple[str, ...]
    #: US: (account, year) -> what the 1099-DA says: 'basis-reported', 'basis-not-reported' or 'none'.
    form_1099da: Mapping[tuple[str, int], str] = field(default_factory=dict)
    #: The open lots at the start and the end of the year (uk S104 pools), filled by the module that needs them.
    lots_at: Callable[[datetime], list] | None = None
    exported_on: date = field(default_factory=date.today)
    scope_label: str = "all accounts"
    #: len(gains) as prepared (a module may release ``gains`` once it has its rows, on a large year).
    gain_count: int = 0
    #: The year's perpetual figures (``reports.tax.perps.PerpSummary``, from ``ledger.perps``): the perp lines of ``income_lines``.
    perps: Any = None
    #: The module's streamed sink, when it has one (``us.Spool``): it took the year's gains as they were
    #: booked, so ``gains`` is empty; ``gain_count`` is its count.
    spool: Any = None
    #: Why the ledger's values are stale (``ledger.completeness.stale_valuation``), when written anyway
    #: (``--allow-incomplete``): every README and file says so first.
    stale: list[str] = field(default_factory=list)
    #: Venue accounts not reconciled with the exchange at the end of the year, one line each
    #: (``ledger.completeness.Completeness.with_reconciliation``); filled when ``prepare`` checks them.
    unreconciled: list[str] = field(default_factory=list)

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        return self.settings.year_bounds(self.year)

    @property
    def label(self) -> str:
        return self.settings.jurisdiction.year_label(self.year)

    @property
    def currency(self) -> str:
        return self.settings.currency

    @property
    def incomplete(self) -> list[Finding]:
        return [f for f in self.findings if f.kind in INCOMPLETE_KINDS]

    @property
    def unpriced_income(self) -> int:
        return sum(l.unpriced for l in self.income_lines)

    def warnings(self) -> list[str]:
        """The warning lines every README and the top of every human-facing file carry."""
        out = [f"WARNING: INCOMPLETE DATA - stale valuation: {why}" for why in self.stale]
        inc = self.incomplete
        if inc:
            by: dict[str, int] = {}
            for f in inc:
                by[f.kind] = by.get(f.kind, 0) + 1
            out.append("WARNING: INCOMPLETE DATA - these figures are computed from incomplete data: "
                       + ", ".join(f"{n} {k}" for k, n in sorted(by.items()))
                       + f" finding(s) dated before the end of tax year {self.label}; see findings.csv")
        if self.unpriced_income:
            out.append(f"WARNING: INCOMPLETE DATA - {self.unpriced_income} income/expense entries of {self.label} have no "
                       f"{self.currency} value and are not in the income totals")
        if self.unreconciled:
            out.append(f"WARNING: INCOMPLETE DATA - not reconciled with the exchange at the end of tax year {self.label}: " + "; ".join(self.unreconciled))
        if self.perps is not None:
            out += [f"NOTE: perpetuals: {n}" for n in self.perps.notes]
        return out


@dataclass
class TaxResult:
    folder: Path
    files: list[tuple[str, str]]
    #: Named totals of the exported figures (exact), per module: what the tests compare with ``Books``.
    totals: dict[str, Decimal]
    warnings: list[str]


def prepare(conn: Connection, settings: BookSettings, year: int, *, formats=("csv",), rounding: str = "cents", form_1099da=None,
            venue_account: str | None = None, exported_on: date | None = None, reporting: Any = None, streamed: bool = True,
            reconcile: bool = False) -> TaxRun:
    """The year's booked figures for the tax modules. ``streamed``: a module with a streamed sink takes the gains as they
    are booked (``run.gains`` stays empty); ``False`` keeps them in ``run.gains`` (the side-by-side comparison reads them).
    ``reconcile``: check every venue account (or ``venue_account``) against the exchange at the year end, as the statement
    does; one not reconciled, or no snapshot, makes the year incomplete (``TaxRun.unreconciled``). The tax export asks for
    it; the statement's side-by-side columns do not (the statement checks the accounts itself)."""
    from reports.income import income_summary

    from ledger.books import stream_gains

    # The gains arrive a batch at a time: only the year's are kept (a large ledger's biggest list).
    start, end = settings.year_bounds(year)
    gains: list[Gain] = []

    def keep(batch: list[Gain]) -> None:
        gains.extend(g for g in batch if start <= g.disposed < end)

    names: list[str] = []

    def year_end_checks(c: Connection) -> list:
        from ledger.db import balances
        from ledger.reconcile import check

        whole = balances(c) if names else None  # one scan of the postings for every account checked
        return [check(c, n, at=end - timedelta(microseconds=1), keep=False, perps=False, whole=whole) for n in names]

    checking = None
    if reconcile:  # on a large ledger the checks' balance scan runs in a forked process while this one books
        from ledger.reconcile import venue_accounts
        from ledger.report_books import large_ledger

        names = [venue_account] if venue_account else venue_accounts(conn)
        checking = forked.call(conn, year_end_checks) if names and large_ledger(conn) else None
    # A module with a streamed sink (``spool``) takes the gains as they are booked and never holds them.
    make_spool = getattr(_module(settings.jurisdiction.name), "spool", None) if streamed else None
    spool = make_spool(settings, year, Quantize(rounding), form_1099da, formats) if make_spool is not None else None
    try:
        books = stream_gains(conn, settings, spool.add if spool is not None else keep, venue_account=venue_account)
        if spool is not None:
            spool.finish()
    except BaseException:
        if spool is not None:
            spool.cleanup()
        if checking is not None:
            forked.stop(checking)
        raise
    # Perpetual lines come from the position engine (ledger.perps), never from the journal's categories.
    from .perps import PERP_CATEGORIES, perp_summary

    # Booked in the jurisdiction's own currency through the FX file (settings.convert): the perpetual figures too.
    convert = settings.convert.value if settings.convert is not None else None
    perp_reporting = reporting
    if settings.convert is not None and reporting is not None and getattr(reporting, "currency", None) != settings.currency:
        perp_reporting = dataclasses.replace(reporting, currency=settings.currency)
    perps = perp_summary(conn, settings, year, venue_account=venue_account, reporting=perp_reporting, method=getattr(reporting, "perp_method", None))
    lines = [l for l in income_summary(conn, settings.tax_year, venue_account=venue_account, convert=convert)
             if l.year == year and l.category not in PERP_CATEGORIES]
    lines += perps.lines

    def lots_at(t: datetime):
        return book_ledger(conn, settings, until=t, venue_account=venue_account, gains=False).open_lots

    unreconciled: list[str] = []
    if reconcile:
        from ledger.completeness import Completeness

        got = forked.join(checking) if checking is not None else None
        checks = got["result"] if got is not None else year_end_checks(conn)  # not forked, or that process failed: here
        unreconciled = Completeness(start=start, end=end, currency=settings.currency).with_reconciliation(checks).unreconciled

    return TaxRun(
        settings=settings, year=year, books=books, unreconciled=unreconciled, gains=gains, gain_count=spool.pieces if spool is not None else len(gains), spool=spool, income=books.income_in(year), income_lines=lines,
        findings=books.findings_until(end), rounding=Quantize(rounding), formats=tuple(formats), form_1099da=dict(form_1099da or {}),
        lots_at=lots_at, exported_on=exported_on or date.today(), scope_label=f"venue account {venue_account}" if venue_account else "all accounts",
        perps=perps,
    )


def _module(name: str):
    from . import au, ca, de, generic, jp, uk, us

    return {"us": us, "uk": uk, "de": de, "ca": ca, "au": au, "jp": jp, "generic": generic}[name]


JURISDICTION_MODULES = ("us", "uk", "de", "ca", "au", "jp", "generic")

FINDINGS_COLUMNS = ("kind", "time", "account", "asset", "key", "message")


def export_tax(run: TaxRun, out: Path, *, allow_incomplete: bool = False) -> TaxResult:
    """Write the year's folder. Raises ``IncompleteData`` (nothing written) when findings change the figures
    and ``allow_incomplete`` is false."""
    warnings = run.warnings()
    if warnings and not allow_incomplete:
        if run.spool is not None:
            run.spool.cleanup()
        raise IncompleteData(warnings[0].replace("WARNING: ", "") + " (exit 4; --allow-incomplete writes the files with this warning)")
    folder = RunFolder(out)
    try:
        mod = _module(run.settings.jurisdiction.name)
        totals = mod.write(run, folder, warnings)
        p = folder.path("findings.csv", "every finding dated before the end of the tax year (kind, time, account, asset, record key, message)")
        from ledger.booking.jurisdictions import iso_utc

        write_csv(p, FINDINGS_COLUMNS, ([f.kind, iso_utc(f.time), f.account, f.asset, f.key, f.message] for f in run.findings), bom=True, preamble=warnings)
        _readme(run, folder, warnings, mod)
        folder.commit()
    except BaseException:
        folder.abort()
        raise
    finally:
        if run.spool is not None:
            run.spool.cleanup()
    return TaxResult(folder=out, files=list(folder.files), totals=totals, warnings=warnings)


def table(run: TaxRun, folder: RunFolder, stem: str, what: str, header, rows, *, human: bool = True, warnings=(), sheet: str | None = None) -> int:
    """A table as ``<stem>.csv`` (always) and ``<stem>.xlsx`` when xlsx is asked for, in one pass over ``rows``;
    human-facing files carry the warnings above their header and a BOM."""
    from .common import write_table

    pre = list(warnings) if human else []
    csv_path = folder.path(f"{stem}.csv", what)
    xlsx = folder.path(f"{stem}.xlsx", what + " (XLSX, same cells)") if "xlsx" in run.formats else None
    return write_table(csv_path, header, rows, xlsx_path=xlsx, sheet=sheet or stem, bom=human, preamble=pre)


def _readme(run: TaxRun, folder: RunFolder, warnings: list[str], mod) -> None:
    s = run.settings
    start, end = run.bounds
    lines = [
        f"backpack-reconcile tax export: {s.jurisdiction.name} tax year {run.label}",
        "",
        *warnings,
        *([""] if warnings else []),
        f"jurisdiction: {s.jurisdiction.name} (tax day in {s.tax_zone}; tax year {start.isoformat()} to {(end - timedelta(microseconds=1)).isoformat()} UTC)",
        f"method: {s.booking.method_for(run.year)}; scope: {s.booking.scope} ({run.scope_label})"
        + ("; basis per account from 2025-01-01 whatever the scope (Rev. Proc. 2024-28)" if s.jurisdiction.per_account_from and s.booking.scope == "universal" else ""),
        f"currency: {run.currency} (stablecoin policy {s.stablecoin_policy})"
        + (f"; converted from the ledger's {s.convert.source} values through {s.convert.fx.name} at each event's UTC date" if s.convert is not None else ""),
        f"rounding: {run.rounding.describe()}; only in these files; each total has a reconciliation line from the exact total",
        f"formats: {', '.join(run.formats)}",
        f"disposal rows (engine pieces) in the year: {run.gain_count}; findings before the year end: {len(run.findings)}",
        "source: every figure is a projection of the engine's rows (ledger.books.stream_gains); nothing is re-computed",
        *([f"perpetuals: {run.perps.markets} market(s), {run.perps.method} lots, from the perpetual position engine (ledger/perps.py), never from spot lots; "
           f"{run.perps.fx}"] if run.perps is not None and run.perps.markets else []),
        "",
        *mod.README_NOTES(run),
        "",
        "files:",
    ]
    for name, what in folder.files:
        lines.append(f"  {name}: {what}")
    lines.append("  README.txt: this file")
    folder.path("README.txt", "this file")
    (folder.tmp / "README.txt").write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
