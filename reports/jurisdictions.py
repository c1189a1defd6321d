"""Every jurisdiction side by side: the same ledger's year through each, in its own currency, tax year and method.

``side_by_side(conn, reporting, names, year)`` books the ledger once per jurisdiction (``ledger.books``
through ``reports.tax.run.prepare``, the path ``export tax`` takes) with that jurisdiction's defaults
(method, scope, tax-day zone, tax year) and currency, and asks that jurisdiction's tax module for its
tax-relevant totals. Nothing is computed here that the modules do not compute for their exports.

Currency: the ledger is valued in ``[reporting] currency``. A jurisdiction that reports in another
(us USD, uk GBP, de EUR, ca CAD, au AUD, jp JPY; generic: the ledger's) books the same events with
their amounts converted through the FX file at each event's date (``ledger.fxconvert``); without an
FX file, or without a rate for a date, it is one clear error (exit 2), never a figure in the wrong
currency.

``--year YYYY`` is each jurisdiction's own tax year YYYY: the UK's 2025/26 (6 April), Australia's
2025/26 (1 July), the calendar year elsewhere, each on its own zone's days.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from ledger.booking.jurisdictions import JURISDICTIONS, jurisdiction, tax_day
from ledger.inputs import InputError

__all__ = ["Column", "settings_for", "side_by_side", "text_lines", "parse_names", "HEADLINE", "ALL"]

ALL = ("us", "uk", "de", "ca", "au", "jp")
#: The one tax-relevant figure per jurisdiction shown on the common row.
HEADLINE = {
    "us": "net capital gain (loss) (Schedule D line 16)",
    "uk": "taxable gains after the annual exempt amount",
    "de": "§23 zu versteuern nach Freigrenze",
    "ca": "taxable capital gain (allowable loss) at the inclusion rate",
    "au": "net capital gain (after losses and discount)",
    "jp": "miscellaneous income from crypto",
    "generic": "net gain",
}
_ZERO = Decimal(0)


@dataclass
class Column:
    name: str
    title: str
    currency: str
    year: int
    label: str
    first_day: str
    last_day: str
    zone: str
    method: str
    scope: str
    rows: int
    proceeds: Decimal
    net: Decimal
    headline: Decimal
    figures: list[tuple[str, Decimal]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    converted: str = ""

    @property
    def headline_label(self) -> str:
        return HEADLINE.get(self.name, "net gain")


def parse_names(text: str) -> list[str]:
    """``us,uk,de`` -> the names, checked (``all`` is every jurisdiction but generic). ValueError on an unknown name."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return list(ALL)
    bad = [n for n in names if n not in JURISDICTIONS]
    if bad or not names:
        raise ValueError(f"{text!r}: expected a comma-separated list of {', '.join(JURISDICTIONS)} (or all)")
    return list(dict.fromkeys(names))


def settings_for(reporting: Any, name: str, *, method: str | None = None):
    """The booking settings of jurisdiction ``name``: its defaults (the config's method and scope where the config
    names this jurisdiction; ``method`` overrides) in its own currency, through the FX file when the ledger is
    valued in another."""
    from ledger.books import resolve_settings

    s = resolve_settings(reporting, method=method, jurisdiction=name)
    j = jurisdiction(name)
    target = reporting.currency if name == "generic" else j.currency
    source = reporting.currency
    if target == source:
        return s
    fx_file = getattr(reporting, "fx_file", None)
    if not fx_file:
        raise InputError(f"--jurisdictions: {name} reports in {target} but the ledger is valued in {source}: set [reporting] fx_file "
                         f"(date,currency,rate per 1 USD) with {target} rates" + (f" and {source} rates" if source != "USD" else ""))
    from ledger.fxconvert import EventConverter
    from ledger.prices import load_fx_file

    conv = EventConverter(load_fx_file(fx_file), source, target)
    return dataclasses.replace(s, booking=dataclasses.replace(s.booking, currency=target), currency=target, convert=conv,
                               opening_lots=conv.opening(s.opening_lots))


def _summary(name: str, run) -> tuple[Decimal, list[tuple[str, Decimal]]]:
    """(headline figure, the jurisdiction's tax-relevant totals) from its tax module."""
    from reports.tax import au, ca, de, jp, uk
    from reports.tax.common import add

    j = run.settings.jurisdiction
    if name == "us":
        st = add(g.gain for g in run.gains if g.term != "long")
        lt = add(g.gain for g in run.gains if g.term == "long")
        net = st + lt
        limit = j.rule("capital_loss_limit", run.year)
        interest = add(l.value for l in run.income_lines if l.category == "interest received")
        perps = add(l.value for l in run.income_lines if l.category.startswith("perp"))
        figs = [("short-term net (Part I)", st), ("long-term net (Part II)", lt), ("net capital gain (loss)", net)]
        if net < 0:
            figs.append((f"loss deductible this year (limit {limit})", max(net, -limit)))
        figs += [("ordinary income: interest received", interest), ("perps (realized P&L, funding, fees)", perps)]
        return net, figs
    if name == "uk":
        f = uk.sa108_figures(run)
        aea = j.rule("annual_exempt_amount", run.year)
        net = f["Gains in the year, before losses"] - f["Losses in the year"]
        taxable = max(net - aea, _ZERO)
        figs = [(k, f[k]) for k in ("Number of disposals", "Disposal proceeds", "Gains in the year, before losses", "Losses in the year")]
        figs += [(f"annual exempt amount {run.label}", aea), ("taxable gains after the annual exempt amount", taxable)]
        return taxable, figs
    if name == "generic":
        net = add(g.gain for g in run.gains)
        return net, [("short", add(g.gain for g in run.gains if g.term == "short")), ("long", add(g.gain for g in run.gains if g.term == "long")), ("net", net)]
    mod = {"de": de, "ca": ca, "au": au, "jp": jp}[name]
    figs = mod.summary(run)
    if name == "de":
        head = de.anlage_so(run)["zu versteuern nach Freigrenze"]
    elif name == "ca":
        head = next(v for k, v in figs if k.startswith(("Taxable", "Allowable")))
    elif name == "au":
        head = dict(figs)["Net capital gain"]
    else:
        head = dict(figs)["Miscellaneous income from crypto (a loss offsets nothing)"]
    return head, figs


def side_by_side(conn: Connection, reporting: Any, names: list[str], year: int, *, venue_account: str | None = None) -> list[Column]:
    """One column per jurisdiction for tax year ``year`` (each jurisdiction's own). Raises ``InputError`` (a missing FX
    file or rate) before anything is written."""
    from reports.tax.common import add
    from reports.tax.run import prepare

    out = []
    for name in names:
        s = settings_for(reporting, name)
        run = prepare(conn, s, year, venue_account=venue_account, reporting=reporting, streamed=False)  # its figures read the year's rows
        head, figs = _summary(name, run)
        start, end = run.bounds
        zone = s.tax_zone
        out.append(Column(
            name=name, title=s.jurisdiction.title or name, currency=s.currency, year=year, label=run.label,
            first_day=tax_day(start, zone).isoformat(), last_day=tax_day(end - timedelta(microseconds=1), zone).isoformat(), zone=zone,
            method=s.booking.method_for(year), scope=s.booking.scope, rows=run.gain_count, proceeds=add(g.proceeds for g in run.gains),
            net=add(g.gain for g in run.gains), headline=head, figures=figs, warnings=run.warnings(),
            converted=f"{s.convert.source} -> {s.currency} through {Path(s.convert.fx.name).name}" if s.convert is not None else "",
        ))
    return out


def _fmt(v: Decimal) -> str:
    return f"{v.quantize(Decimal('0.01')):,}" if v == v.to_integral_value() or abs(v) >= 1 else f"{v:,.4f}"


def text_lines(cols: list[Column]) -> list[str]:
    """The side-by-side table as plain text lines (the CLI prints them through ``reports.safety.terminal``)."""
    common = [
        ("tax year", [c.label for c in cols]),
        ("first day", [c.first_day for c in cols]),
        ("last day", [c.last_day for c in cols]),
        ("tax-day zone", [c.zone for c in cols]),
        ("currency", [c.currency for c in cols]),
        ("method", [c.method for c in cols]),
        ("scope", [c.scope for c in cols]),
        ("disposal rows", [str(c.rows) for c in cols]),
        ("proceeds", [_fmt(c.proceeds) for c in cols]),
        ("net gain (engine rows)", [_fmt(c.net) for c in cols]),
        ("tax-relevant total", [_fmt(c.headline) for c in cols]),
        ("data", ["INCOMPLETE" if c.warnings else "complete" for c in cols]),
    ]
    widths = [max(len(r[0]) for r in common)] + [max(len(c.name), *(len(r[1][i]) for r in common)) for i, c in enumerate(cols)]
    lines = ["  ".join([("jurisdiction").ljust(widths[0])] + [c.name.rjust(widths[i + 1]) for i, c in enumerate(cols)])]
    for label, vals in common:
        lines.append("  ".join([label.ljust(widths[0])] + [v.rjust(widths[i + 1]) for i, v in enumerate(vals)]))
    for c in cols:
        lines.append("")
        lines.append(f"{c.name}: {c.title}, tax year {c.label} ({c.first_day} to {c.last_day}, {c.zone}), {c.currency}, method {c.method}"
                     + (f"; converted {c.converted}" if c.converted else ""))
        lines.append(f"  tax-relevant total: {c.headline_label}: {_fmt(c.headline)} {c.currency}")
        for k, v in c.figures:
            lines.append(f"  {k}: {v:,}" if k.startswith("Number of") else f"  {k}: {_fmt(v)}")
        for w in c.warnings:
            lines.append(f"  {w}")
    return lines
