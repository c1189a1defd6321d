"""Issue 16: the tax exports' perpetual lines are the position engine's (ledger/perps.py), for the same year,
in the reporting currency at the ledger's FX; never the journal's settlement categories, never a silent zero.

The ledger is a generated perpetual history (``benchmarks/perps_bench.generate``: the exchange's own
position rules, settlements, funding, liquidations) of 5,000 fills from 2025-12-31 22:30 UTC (a few
days), so that it crosses the year end (UTC, and Berlin's an hour earlier) and a UTC day with positions open.
"""

from __future__ import annotations

import csv
import importlib.util
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from ledger.books import resolve_settings
from ledger.perps import perp_books, read_perps
from reconcile.config import ReportingConfig
from reports.tax.run import export_tax, prepare
from tests.reports.tax.sample import read_csv, run_cli

ROOT = Path(__file__).resolve().parents[3]
#: A rate per UTC day, each different (units per 1 USD; USDC is 1 USD), over the history's days.
FX = {date(2025, 12, 28) + timedelta(days=i): Decimal("0.90") + Decimal(i) / 100 for i in range(30)}


def _bench():
    spec = importlib.util.spec_from_file_location("perps_bench", ROOT / "benchmarks" / "perps_bench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


@pytest.fixture
def perp_ledger(db_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECONCILE_CONFIG", raising=False)
    bench = _bench()
    monkeypatch.setattr(bench, "T0", datetime(2025, 12, 31, 22, 30, tzinfo=timezone.utc))
    bench.store(db_url, 5000, 3)
    fx = tmp_path / "fx.csv"
    fx.write_text("date,currency,rate\n" + "".join(f"{d},{c},{r}\n" for d, r in FX.items() for c in ("EUR", "GBP")))
    return db_url, fx


def _sum(xs):
    return sum(xs, Decimal(0))


def _lines(path: Path) -> dict[str, dict]:
    return {r.get("category") or r.get("type") or r.get("Kategorie"): r for r in read_csv(path)}


@pytest.mark.parametrize(("jurisdiction", "year"), [("us", 2025), ("us", 2026), ("generic", 2026), ("uk", 2025)])
def test_tax_export_perp_totals_equal_perp_books(perp_ledger, tmp_path, jurisdiction, year):
    from ledger.db import make_engine

    url, _fx = perp_ledger
    rep = ReportingConfig(currency="USD")
    settings = resolve_settings(rep, jurisdiction=jurisdiction)
    engine = make_engine(url)
    with engine.connect() as conn:
        books = perp_books(conn, settings, year=year, reporting=rep)
        run = prepare(conn, settings, year, reporting=rep)
        result = export_tax(run, tmp_path / "out", allow_incomplete=True)
        fills = [f for f in read_perps(conn).fills if settings.tax_year(f.time) == year]
    engine.dispose()
    assert books.realized and books.totals
    # the engine's own rows, summed here: the period's closes, every fill's fee, every funding payment
    realized = _sum(r.pnl for r in books.realized)
    fees = _sum(f.fee for f in fills)
    funding = _sum(f.net for f in books.funding)
    assert (realized, fees, funding) == (_sum(t.realized for t in books.totals), _sum(t.fees for t in books.totals), _sum(t.funding for t in books.totals))
    assert (run.perps.totals["perp realized"], run.perps.totals["perp fees"], run.perps.totals["perp funding"]) == (realized, fees, funding)
    if jurisdiction == "us":
        assert result.totals["income perp realized P&L"] == realized
        assert result.totals.get("income perp trading fees", Decimal(0)) == -fees
        assert result.totals.get("income perp funding", Decimal(0)) == funding
    name = {"us": "income-summary.csv", "generic": None, "uk": "uk-income.csv"}[jurisdiction]
    if name:
        lines = _lines(result.folder / name)
        col = next(c for c in next(iter(lines.values())) if c.endswith("(exact)"))
        assert Decimal(lines["perp realized P&L"][col]) == realized
        assert Decimal(lines["perp trading fees"][col]) == -fees
    if jurisdiction == "us" and "perp funding" in lines:
        assert Decimal(lines["  of which perp funding received"][col]) == _sum(f.received for f in books.funding)
        assert Decimal(lines["  of which perp funding paid"][col]) == _sum(f.paid for f in books.funding)


def test_eur_figures_are_each_amount_at_its_days_rate(perp_ledger, tmp_path):
    """de in EUR with the ledger's FX file: every perpetual amount at the rate of its own UTC day (de's 2026 starts at
    2025-12-31 23:00 UTC, so its first hour has the 2025-12-31 rate)."""
    from ledger.db import make_engine

    url, fx = perp_ledger
    rep = ReportingConfig(currency="EUR", fx_file=str(fx))
    settings = resolve_settings(rep, jurisdiction="de")
    engine = make_engine(url)
    with engine.connect() as conn:
        books = perp_books(conn, settings, year=2026, reporting=rep)
        run = prepare(conn, settings, 2026, reporting=rep)
        result = export_tax(run, tmp_path / "de", allow_incomplete=False)  # complete: every day has a rate
        fills = [f for f in read_perps(conn).fills if settings.tax_year(f.time) == 2026]
    engine.dispose()
    by_day: dict[date, Decimal] = defaultdict(Decimal)
    for r in books.realized:
        by_day[r.closed.date()] += r.pnl
    realized_eur = _sum(v * FX[d] for d, v in by_day.items())
    fees_eur = _sum(f.fee * FX[f.time.date()] for f in fills)
    assert len(by_day) >= 2  # the year's closes fall on several UTC days, at different rates
    assert _sum(t.realized_reporting for t in books.totals) == realized_eur != _sum(t.realized for t in books.totals)
    assert _sum(t.fees_reporting for t in books.totals) == fees_eur
    kap = {r["Kategorie"]: r for r in read_csv(result.folder / "termingeschaefte.csv")}
    assert Decimal(kap["perp realized P&L"]["EUR (exakt)"]) == realized_eur
    assert Decimal(kap["perp trading fees"]["EUR (exakt)"]) == -fees_eur
    # the year-end positions' unrealized P&L in EUR is empty without a mark price, never zero
    assert books.positions and all(p.unrealized_reporting is None for p in books.positions)


def test_no_fx_rate_is_incomplete_not_zero(perp_ledger, tmp_path):
    """GBP with no FX file: the perpetual GBP figures are unvalued: exit 4, and with --allow-incomplete the
    lines say how many amounts have no value (the GBP cells of export perps are empty)."""
    url, _fx = perp_ledger
    cfg = tmp_path / "uk.toml"
    cfg.write_text("[reporting]\njurisdiction = \"uk\"\nmethod = \"uk\"\nscope = \"universal\"\ncurrency = \"GBP\"\n")
    out = tmp_path / "uk"
    assert run_cli("export", "tax", "--year", "2025", "--out", out, "--db", url, "--config", cfg) == 4
    assert not out.exists()
    assert run_cli("export", "tax", "--year", "2025", "--out", out, "--db", url, "--config", cfg, "--allow-incomplete") == 0
    inc = {r["type"]: r for r in read_csv(out / "uk-income.csv")}
    assert int(inc["perp realized P&L"]["unpriced entries (not in the value)"]) > 0
    perps = tmp_path / "perps.csv"
    assert run_cli("export", "perps", "--year", "2025", "--out", perps, "--db", url, "--config", cfg) == 4
    with open(tmp_path / "perps.totals.csv", newline="") as fh:
        totals = list(csv.DictReader(fh))
    assert totals and all(t["net_reporting"] == "" and int(t["unvalued_amounts"]) > 0 and t["net"] != "" for t in totals)


def test_the_configured_perp_method_is_the_exports(perp_ledger, tmp_path):
    """reporting.perp_method = "fifo": the tax export's perp lines are the fifo lots' (which differ from average's in a
    year that ends with positions open)."""
    from ledger.db import make_engine

    url, _fx = perp_ledger
    rep = ReportingConfig(currency="USD", perp_method="fifo")
    settings = resolve_settings(rep, jurisdiction="us")
    engine = make_engine(url)
    with engine.connect() as conn:
        fifo = perp_books(conn, settings, year=2025, method="fifo")
        average = perp_books(conn, settings, year=2025, method="average")
        run = prepare(conn, settings, 2025, reporting=rep)
    engine.dispose()
    if run.spool is not None:
        run.spool.cleanup()
    assert run.perps.method == "fifo"
    assert run.perps.totals["perp realized"] == _sum(r.pnl for r in fifo.realized) != _sum(r.pnl for r in average.realized)
