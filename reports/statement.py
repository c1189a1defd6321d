"""The year-end statement for an accountant: HTML (Jinja2) or an XLSX workbook.

``build_statement`` gathers plain records (read-only queries and the booking result handed in by
the CLI); the generators in ``GENERATORS`` render them. Sections: the reconciliation checks kept in
the database (ledger against the exchange), balances at the end of the year per account, realized
gains by term and asset, income and expense categories, unpriced events with their reasons, and
the warnings met while booking.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Connection, text

from ledger.db import balances
from ledger.money import plain

from .gains import GAINS_COLUMNS, gain_cells
from .income import IncomeLine, income_summary

__all__ = ["Statement", "build_statement", "render_html", "write_xlsx", "GENERATORS", "tax_year_bounds"]


def tax_year_bounds(year: int, jurisdiction: str, zone: str) -> tuple[datetime, datetime]:
    """[start, end) of a tax year as UTC instants: local midnights in the jurisdiction's zone,
    1 January (6 April for the UK, whose year 2025 is 2025/26)."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    month, day = (4, 6) if jurisdiction == "uk" else (1, 1)
    start = datetime(year, month, day, tzinfo=tz).astimezone(timezone.utc)
    end = datetime(year + 1, month, day, tzinfo=tz).astimezone(timezone.utc)
    return start, end


@dataclass
class CheckRow:
    venue_account: str
    checked_at: datetime
    as_of: datetime
    ok: bool
    differences: int
    lines: list[dict]


@dataclass
class Statement:
    year: int
    period: tuple[datetime, datetime]
    currency: str
    method: str
    scope: str
    jurisdiction: str
    generated_at: datetime
    checks: list[CheckRow] = field(default_factory=list)
    balances: list[tuple[str, str, Decimal]] = field(default_factory=list)
    gains_by: list[tuple[str, str, Decimal, Decimal, Decimal, Decimal]] = field(default_factory=list)  # asset, term, qty, proceeds, basis, gain
    gains: list = field(default_factory=list)
    income: list[IncomeLine] = field(default_factory=list)
    unpriced: list = field(default_factory=list)
    findings: list = field(default_factory=list)

    @property
    def totals(self) -> dict[str, Decimal]:
        t: dict[str, Decimal] = defaultdict(Decimal)
        for _a, term, _q, proceeds, basis, gain in self.gains_by:
            t["proceeds"] += proceeds
            t["basis"] += basis
            t[f"gain:{term}"] += gain
            t["gain"] += gain
        return dict(t)


def _aware(v) -> datetime:
    t = v if isinstance(v, datetime) else datetime.fromisoformat(str(v))
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def build_statement(
    conn: Connection,
    *,
    year: int,
    period: tuple[datetime, datetime],
    year_of: Callable[[datetime], int],
    gains: Iterable,
    findings: Iterable,
    currency: str,
    method: str,
    scope: str,
    jurisdiction: str,
    unpriced: Iterable = (),
    now: datetime | None = None,
) -> Statement:
    st = Statement(year=year, period=period, currency=currency, method=method, scope=scope, jurisdiction=jurisdiction,
                   generated_at=now or datetime.now(timezone.utc))
    # The newest kept check per account (and any failing check in the period).
    rows = conn.execute(text("SELECT venue_account, checked_at, as_of, ok, differences, detail FROM check_results ORDER BY checked_at, id"))
    latest: dict[str, CheckRow] = {}
    for acct, checked, as_of, ok, diffs, detail in rows:
        try:
            lines = json.loads(detail).get("lines", [])
        except ValueError:
            lines = []
        latest[acct] = CheckRow(acct, _aware(checked), _aware(as_of), bool(ok), int(diffs), lines)
    st.checks = [latest[a] for a in sorted(latest)]
    end = period[1]
    st.balances = [
        (acc, asset, q) for (acc, asset), q in balances(conn, prefix="Assets:Backpack", until=end).items() if q != 0
    ] + [(acc, asset, q) for (acc, asset), q in balances(conn, prefix="Liabilities:Backpack", until=end).items() if q != 0]
    st.gains = [g for g in gains if year_of(g.disposed) == year]
    by: dict[tuple[str, str], list[Decimal]] = {}
    for g in st.gains:
        acc = by.setdefault((g.asset, g.term), [Decimal(0)] * 4)
        acc[0] += g.quantity
        acc[1] += g.proceeds
        acc[2] += g.cost_basis
        acc[3] += g.gain
    st.gains_by = [(a, t, *v) for (a, t), v in sorted(by.items())]
    st.income = [l for l in income_summary(conn, year_of) if l.year == year]
    st.unpriced = [u for u in unpriced if period[0] <= u.time < period[1]]
    st.findings = [f for f in findings if period[0] <= f.time < period[1]]
    return st


# -- HTML -------------------------------------------------------------------------------------------
def _env():
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("templates", "."), autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["plain"] = lambda d: plain(d) if isinstance(d, Decimal) else d
    env.filters["money"] = lambda d: plain(round(d, 2)) if isinstance(d, Decimal) else d
    env.filters["iso"] = lambda t: t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if isinstance(t, datetime) else t
    return env


def render_html(st: Statement) -> str:
    return _env().get_template("statement.html.j2").render(st=st, totals=st.totals, gains_columns=GAINS_COLUMNS)


def _write_html(st: Statement, path: Path) -> None:
    tmp = path.with_name(path.name + ".partial")
    try:
        tmp.write_text(render_html(st), encoding="utf-8")
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()


# -- XLSX -------------------------------------------------------------------------------------------
def write_xlsx(st: Statement, path: Path) -> None:
    """One sheet per section. Amounts are numeric cells holding the exact decimal text."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    bold = Font(bold=True)

    def sheet(title: str, header: list[str], rows: Iterable[list], first: bool = False):
        ws = wb.active if first else wb.create_sheet(title)
        ws.title = title
        ws.append(header)
        for c in ws[1]:
            c.font = bold
        for r in rows:
            ws.append(r)
        ws.freeze_panes = "A2"
        return ws

    t = st.totals
    sheet("Summary", ["item", "value"], [
        ["tax year", st.year],
        ["period", f"{st.period[0].date().isoformat()} .. {st.period[1].date().isoformat()} (exclusive)"],
        ["currency", st.currency], ["method", st.method], ["scope", st.scope], ["jurisdiction", st.jurisdiction],
        ["proceeds", t.get("proceeds", Decimal(0))], ["cost basis", t.get("basis", Decimal(0))],
        *[[f"gain ({k.split(':', 1)[1]})", v] for k, v in sorted(t.items()) if k.startswith("gain:")],
        ["net gain", t.get("gain", Decimal(0))],
        ["reconciled accounts", ", ".join(f"{c.venue_account}: {'ok' if c.ok else f'{c.differences} differences'}" for c in st.checks) or "no check kept"],
        ["unpriced events", len(st.unpriced)], ["warnings", len(st.findings)],
        ["generated", st.generated_at.isoformat(timespec="seconds")],
    ], first=True)
    sheet("Reconciliation", ["account", "checked at", "snapshot", "ok", "wallet", "asset", "ledger", "exchange", "difference", "likely causes"], [
        [c.venue_account, c.checked_at.isoformat(timespec="seconds"), c.as_of.isoformat(timespec="seconds"), "yes" if c.ok else "NO",
         l.get("wallet"), l.get("asset"), Decimal(l.get("ledger", "0")), Decimal(l.get("exchange", "0")), Decimal(l.get("difference", "0")),
         "; ".join(l.get("causes", []))]
        for c in st.checks for l in c.lines
    ])
    sheet("Balances", ["account", "asset", "quantity at year end"], [[a, s, q] for a, s, q in st.balances])
    sheet("Gains by asset", ["asset", "term", "quantity", "proceeds", "cost basis", "gain"], [list(r) for r in st.gains_by])
    sheet("Gains", list(GAINS_COLUMNS), (gain_cells(g) for g in st.gains))
    sheet("Income", ["category", "value", "entries", "unpriced", "assets"],
          [[l.category, l.value, l.entries, l.unpriced, ", ".join(sorted(l.assets))] for l in st.income])
    sheet("Unpriced", ["entry", "time", "kind", "asset", "quantity", "reason"],
          [[u.entry_key, u.time.isoformat(), u.kind, u.asset, u.quantity, u.reason] for u in st.unpriced])
    sheet("Warnings", ["kind", "account", "asset", "time", "message"],
          [[f.kind, f.account, f.asset, f.time.isoformat(), f.message] for f in st.findings])
    tmp = path.with_name(path.name + ".partial")
    try:
        wb.save(tmp)
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()


#: Output formats, chosen explicitly (no discovery).
GENERATORS: dict[str, Callable[[Statement, Path], None]] = {"html": _write_html, "xlsx": write_xlsx}
