"""The HTML statement for an accountant (Jinja2, autoescaped; ``templates/statement.html.j2``).

One self-contained file per period and account selection: the completeness verdict first (a red
banner when the figures are incomplete), the summary with each figure linked to its rows, inline SVG
charts (``reports.charts``), then the detail: reconciliation at the period end, realized gains (each
row linked to its lot), the lots (each linked to its journal entry), the journal entries (each linked
to its raw exchange record), the raw records, income, fees, holdings, open lots, prices used, the
method comparison, the US safe-harbor schedule and the warnings. No font, script or style sheet is
fetched: it opens offline and prints with repeated table headers.

Detail tables hold at most ``HTML_ROW_LIMIT`` rows each (the workbook and the CSV exports hold all
of them, and the statement says how many it shows).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from ledger.completeness import FIGURE_FINDINGS

from .report import HTML_ROW_LIMIT, Report, entries_by_key, raw_payload_text, raw_records

__all__ = ["render_statement", "write_statement", "HTML_ROW_LIMIT", "anchor"]



def anchor(kind: str, key) -> str:
    """A stable HTML id for any key (ids from the exchange may hold any character)."""
    return f"{kind}-{hashlib.sha1(str(key).encode('utf-8')).hexdigest()[:12]}"


def _entry_key_of(piece_id: str) -> str:
    """The journal entry a lot or disposal id comes from: the id less its ``#in``/``#out``/``#fee`` suffix."""
    return piece_id.rsplit("#", 1)[0] if "#" in piece_id else piece_id


def _money(d) -> str:
    if not isinstance(d, Decimal):
        return "" if d is None else str(d)
    return f"{d:,.2f}"


def _qty(d, places: int = 8) -> str:
    if not isinstance(d, Decimal):
        return "" if d is None else str(d)
    return f"{d:,.{places}f}"


def _price(d) -> str:
    if not isinstance(d, Decimal):
        return "" if d is None else str(d)
    s = f"{d:,.8f}".rstrip("0")
    return s + "00" if s.endswith(".") else (s + "0" if len(s.split(".")[-1]) < 2 else s)


def _iso(t) -> str:
    if isinstance(t, datetime):
        return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return "" if t is None else str(t)


def _env():
    from jinja2 import Environment, PackageLoader, select_autoescape

    from .safety import terminal

    # finalize: every printed text (exchange symbols, ids) shows its control and bidi characters as escapes
    # (reports.safety), then autoescape makes it HTML text; markup the template built (Markup) is left alone.
    env = Environment(loader=PackageLoader("templates", "."), autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True,
                      finalize=lambda v: terminal(v) if type(v) is str else v)
    env.filters.update(money=_money, qty=_qty, price=_price, iso=_iso, anchor=lambda key, kind: anchor(kind, key))
    return env


def _places(rep: Report) -> dict[str, int]:
    out: dict[str, int] = {}
    for q, a in [(g.quantity, g.asset) for g in rep.gains[:HTML_ROW_LIMIT]] + [(l.quantity, l.asset) for l in rep.open_lots]:
        e = q.as_tuple().exponent
        if isinstance(e, int):
            out[a] = min(max(out.get(a, 2), -e), 10)
    return out


def _context(rep: Report) -> dict:
    from . import charts

    gains = rep.gains[:HTML_ROW_LIMIT]
    # Drill-down: the lots of the gain rows shown, the journal entries behind those lots and disposals,
    # and the raw records behind those entries.
    lots: dict[str, dict] = {}
    for g in gains:
        lot = lots.setdefault(g.lot_id, {"id": g.lot_id, "account": g.account, "asset": g.asset, "acquired": g.acquired,
                                         "relieved": Decimal(0), "basis": Decimal(0), "gains": [], "entry": _entry_key_of(g.lot_id), "open": None})
        lot["relieved"] += g.quantity
        lot["basis"] += g.cost_basis
        lot["gains"].append(g.disposal_id)
    open_by_id = {}
    for l in rep.open_lots:
        open_by_id.setdefault(l.id, []).append(l)
    for lid, lot in lots.items():
        if lid in open_by_id:
            lot["open"] = sum((l.quantity for l in open_by_id[lid]), Decimal(0))
            lot["entry"] = open_by_id[lid][0].source or lot["entry"]
    keys = sorted({lot["entry"] for lot in lots.values()} | {_entry_key_of(g.disposal_id) for g in gains})
    entries = _entries(rep, keys)
    raws = _raws(rep, sorted({e["raw_record_id"] for e in entries.values() if e["raw_record_id"] is not None}))
    for lot in lots.values():
        if lot["entry"] not in entries:
            lot["entry"] = None  # an opening lot or an id that names no journal entry
    figures = rep.gain_figures()  # one pass over every gain of the period (they may be on disk)
    by_asset, by_account = figures.by_asset, figures.by_account
    places = _places(rep)
    monthly = rep.monthly_gains()
    terms = rep.terms
    chart_pnl = charts.bar_chart("Monthly realized gain by term", [m for m, _ in monthly],
                                 {t: [v.get(t, Decimal(0)) for _m, v in monthly] for t in terms}, rep.currency)
    alloc: dict[str, Decimal] = {}
    for h in rep.holdings:
        if h.value is not None:
            alloc[h.asset] = alloc.get(h.asset, Decimal(0)) + h.value
    chart_alloc = charts.hbar_chart("Holdings at the period end by value", list(alloc.items()), rep.currency)
    flows = rep.cumulative_flows()
    chart_flows = charts.line_chart("Cumulative income, funding and fees", [d.isoformat() for d, *_ in flows],
                                    {"income": [f[1] for f in flows], "funding": [f[2] for f in flows], "fees": [-f[3] for f in flows]}, rep.currency)
    chart_value = charts.line_chart("Portfolio value at each month end", [d.isoformat() for d, _v, _m in rep.value_series],
                                    {"value": [v for _d, v, _m in rep.value_series]}, rep.currency)
    return {
        "rep": rep, "c": rep.completeness, "gains": gains, "lots": list(lots.values()), "entries": entries, "raws": raws,
        "by_asset": [(a, t, *v) for (a, t), v in sorted(by_asset.items())], "by_account": sorted(by_account.items()),
        "income_by": rep.income_by_category(), "terms": terms, "limit": HTML_ROW_LIMIT, "places": places, "q": lambda v, asset: _qty(v, places.get(asset, 8)),
        "charts": {"pnl": chart_pnl, "alloc": chart_alloc, "flows": chart_flows, "value": chart_value},
        "value_missing": any(m for _d, _v, m in rep.value_series),
        "holdings_value": sum((h.value for h in rep.holdings if h.value is not None), Decimal(0)),
        "holdings_unrealized": sum((h.unrealized for h in rep.holdings if h.unrealized is not None), Decimal(0)),
        "holdings_unpriced": [h for h in rep.holdings if h.unit_price is None],
        "configured": next((m for m in rep.methods if m.method == rep.method), None),
        "figure_kinds": FIGURE_FINDINGS,
        "perps": rep.perps, "perps_total": _perp_total(rep.perps),
    }


def _perp_total(pb):
    """The perpetuals' totals over every market (``ledger.perps.MarketTotals`` summed field by field)."""
    if pb is None:
        return None
    from ledger.perps import MarketTotals

    t = MarketTotals("", "")
    for m in pb.totals:
        t.realized += m.realized
        t.fees += m.fees
        t.funding_received += m.funding_received
        t.funding_paid += m.funding_paid
        t.liquidations += m.liquidations
        t.adl += m.adl
        t.other += m.other
        t.closes += m.closes
    return t


def _entries(rep: Report, keys: list[str]) -> dict[str, dict]:
    return entries_by_key(rep.conn, keys) if getattr(rep, "conn", None) is not None else {}


def _raws(rep: Report, ids: list[int]) -> dict[int, tuple[str, str, str]]:
    if getattr(rep, "conn", None) is None:
        return {}
    return {i: (ep, key, raw_payload_text(p)) for i, (ep, key, p) in raw_records(rep.conn, ids).items()}


def render_statement(rep: Report) -> str:
    return _env().get_template("statement.html.j2").render(**_context(rep))


def write_statement(rep: Report, path: Path) -> None:
    """Render to ``path`` via a temporary name (nothing half-written is left)."""
    tmp = path.with_name(path.name + ".partial")
    try:
        tmp.write_text(render_statement(rep), encoding="utf-8")
        tmp.replace(path)
    finally:
        if tmp.exists():
            tmp.unlink()
