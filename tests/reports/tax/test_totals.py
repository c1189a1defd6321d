"""Every export's totals equal the engine's (``Books``) for the same year, method and jurisdiction."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from ledger.books import book_ledger, resolve_settings
from reports.tax.run import export_tax, prepare
from tests.reports.tax.sample import read_csv
from tests.reports.tax.scenario import generated


@dataclass(frozen=True)
class Reporting:
    currency: str = "USD"
    jurisdiction: str = "us"
    method: str = "fifo"
    scope: str | None = None
    stablecoin_policy: str = "par"
    opening_lots: str | None = None
    transfer_fee_policy: str = "disposal"
    method_by_year: dict = field(default_factory=dict)


def _sum(xs):
    return sum(xs, Decimal(0))


@pytest.mark.parametrize(("jurisdiction", "method", "year"), [("us", "fifo", 2025), ("us", "hifo", 2024), ("generic", "lifo", 2025), ("uk", None, 2024), ("de", None, 2025)])
def test_totals__every_file_equals_books(ledger, tmp_path, jurisdiction, method, year):
    ledger.post(generated())
    settings = resolve_settings(Reporting(currency={"uk": "GBP", "de": "EUR"}.get(jurisdiction, "USD")), method=method, jurisdiction=jurisdiction)
    with ledger.engine.connect() as conn:
        books = book_ledger(conn, settings)
        gains = books.gains_in(year)
        assert gains, "the scenario must have disposals in the year"
        run = prepare(conn, settings, year, formats=("csv", "txf"))
        result = export_tax(run, tmp_path / "out", allow_incomplete=True)
    out = result.folder
    net = _sum(g.gain for g in gains)
    proceeds = _sum(g.proceeds for g in gains)
    cost = _sum(g.cost_basis for g in gains)
    if jurisdiction == "us":
        boxes = sorted(out.glob("form-8949-box-?.csv"))
        file_rows = [r for b in boxes for r in read_csv(b) if r["(a) Description of property"] != "Totals"]
        rec = read_csv(out / "form-8949-reconciliation.csv")
        exact = {(r["box"], r["column"]): Decimal(r["exact total"]) for r in rec}
        assert _sum(v for (b, c), v in exact.items() if c == "gain") == net
        assert _sum(v for (b, c), v in exact.items() if c == "proceeds") == proceeds
        # every rounded row is within half a cent of the engine's exact figures for its rows
        assert abs(_sum(Decimal(r["(h) Gain or (loss)"]) for r in file_rows) - net) <= Decimal("0.01") * len(file_rows)
        sd = {r["line"]: r for r in read_csv(out / "schedule-d.csv")}
        assert Decimal(sd["16"]["exact gain or (loss)"]) == net
        assert Decimal(sd["7"]["exact gain or (loss)"]) == _sum(g.gain for g in gains if g.term == "short")
        assert Decimal(sd["15"]["exact gain or (loss)"]) == _sum(g.gain for g in gains if g.term == "long")
        assert Decimal(sd["16"]["(h) gain or (loss)"]) == _sum(Decimal(r["(h) Gain or (loss)"]) for r in file_rows)
        tt = read_csv(out / "turbotax.csv")
        assert len(tt) == len(file_rows)
        assert _sum(Decimal(r["Proceeds"]) - Decimal(r["Cost Basis"]) for r in tt) == Decimal(sd["16"]["(h) gain or (loss)"])
        txf = (out / "turbotax.txf").read_text().split("\n")
        dollars = [Decimal(l[1:]) for l in txf if l.startswith("$")]
        assert _sum(dollars[1::2]) - _sum(dollars[0::2]) == Decimal(sd["16"]["(h) gain or (loss)"])
        assert {b.name[-5] for b in boxes} <= set("IL" if year >= 2025 else "CF")
    elif jurisdiction == "uk":
        figs = {r["figure"]: Decimal(r["amount GBP (exact)"]) for r in read_csv(out / "sa108.csv")}
        assert figs["Gains in the year, before losses"] - figs["Losses in the year"] == net
        assert (figs["Disposal proceeds"], figs["Allowable costs (including the purchase price)"]) == (proceeds, cost)
        assert _sum(Decimal(r["Gain GBP"]) for r in read_csv(out / "uk-computation.csv")) == net
        assert figs["Number of disposals"] == len({(g.asset, settings.jurisdiction.tax_day(g.disposed)) for g in gains})
    elif jurisdiction == "de":
        so = {r["Feld"]: Decimal(r["EUR (exakt)"]) for r in read_csv(out / "anlage-so.csv")}
        assert so["Gewinn/Verlust (steuerpflichtig)"] + so["Gewinn/Verlust (steuerfrei, Haltefrist über 1 Jahr)"] == net
        assert so["Gewinn/Verlust (steuerpflichtig)"] == _sum(g.gain for g in gains if g.term == "short")
        import csv

        with open(out / "anlage-so-aufstellung.csv", encoding="utf-8-sig", newline="") as fh:
            rows = [r for r in csv.reader(fh, delimiter=";") if len(r) > 1][1:]
        assert len(rows) == len(gains)
    else:
        g = read_csv(out / "gains.csv", skip_preamble=False)
        assert _sum(Decimal(r["gain"]) for r in g) == net and len(g) == len(gains)
        tot = {(r["by"], r["group"]): r for r in read_csv(out / "gains-totals.csv")}
        assert Decimal(tot[("all", "all")]["gain"]) == net
        assert _sum(Decimal(r["gain"]) for (by, _), r in tot.items() if by == "asset") == net
    assert result.totals.get("net gain", net) == net
