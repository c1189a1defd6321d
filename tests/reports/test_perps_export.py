"""reports/perps.py: the four tables, CSV beside each other or one XLSX, text cells neutralised."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from openpyxl import load_workbook

from ledger.booking.perps import PerpFill, book_perps
from ledger.perps import FundingLine, MarketTotals, PerpBooks, PositionLine
from reports.perps import POSITIONS_COLUMNS, REALIZED_COLUMNS, csv_paths, write_perps

T0 = datetime(2025, 5, 1, tzinfo=timezone.utc)
D = Decimal


def _books() -> PerpBooks:
    market = "=HYPERLINK(1)_USDC_PERP"  # an exchange-supplied text that must not become a formula
    fills = [PerpFill("k1", "main", market, T0, "buy", D("2"), D("10"), D("0.01")),
             PerpFill("k2", "main", market, T0 + timedelta(hours=1), "sell", D("3"), D("12"), D("0.02"), "LiquidatePositionOnBook")]
    res = book_perps(fills, "fifo")
    (pos,) = res.positions
    t = MarketTotals("main", market, realized=D(4), fees=D("0.03"), funding_received=D("0.5"), funding_paid=D("-0.2"))
    return PerpBooks(method="fifo", currency="USD", start=T0, end=T0 + timedelta(days=30), realized=res.realized,
                     funding=[FundingLine("main", market, "2025-05", D("0.5"), D("-0.2"), 3)], totals=[t],
                     positions=[PositionLine("main", market, pos.side, pos.quantity, pos.average_entry, pos.exchange_entry, pos.cost, D("11"), "mark kline 1m",
                                             D("1"), D("1"), pos.opened)], cycles=res.cycles)


def test_csv_tables_beside_each_other(tmp_path):
    out = tmp_path / "perps.csv"
    counts = write_perps(_books(), out, "csv")
    assert counts == {"Realized": 1, "Funding": 1, "Totals": 1, "Positions": 1}
    paths = csv_paths(out)
    rows = list(csv.reader(paths["Realized"].open()))
    assert tuple(rows[0]) == REALIZED_COLUMNS
    r = dict(zip(rows[0], rows[1]))
    assert r["market"].startswith("'=") and r["close_kind"] == "liquidation" and r["pnl"] == "4" and r["fees"] == "0.023333333333333333"
    assert r["opened"] == "2025-05-01T00:00:00.000000Z" and r["exit_notional"] == "24"
    totals = dict(zip(*list(csv.reader(paths["Totals"].open()))))
    assert totals["net"] == str(D(4) - D("0.03") + D("0.3")) and totals["funding"] == "0.3"
    pos = list(csv.reader(paths["Positions"].open()))
    assert tuple(pos[0]) == POSITIONS_COLUMNS and pos[1][3] == "-1" and pos[1][9] == "1"
    assert not list(tmp_path.glob("*.partial"))


def test_xlsx_four_sheets(tmp_path):
    out = tmp_path / "perps.xlsx"
    write_perps(_books(), out, "xlsx")
    wb = load_workbook(out, read_only=True)
    assert wb.sheetnames == ["Realized", "Funding", "Totals", "Positions"]
    head, first = list(wb["Realized"].iter_rows(values_only=True))[:2]
    assert head == REALIZED_COLUMNS and str(first[1]).startswith("'=")


def test_streamed_export_equals_the_booked_books(db_url, tmp_path, monkeypatch):
    """``export_perps`` (fills read a chunk at a time, rows written as booked) writes the same files as
    ``write_perps`` of ``perp_books`` (every row held), for a year that starts and ends with positions open."""
    import importlib.util
    from pathlib import Path

    from ledger import perps as perps_module
    from ledger.books import resolve_settings
    from ledger.db import make_engine
    from ledger.perps import perp_books
    from reconcile.config import ReportingConfig
    from reports.perps import export_perps

    spec = importlib.util.spec_from_file_location("perps_bench", Path(__file__).resolve().parents[2] / "benchmarks" / "perps_bench.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # type: ignore[union-attr]
    monkeypatch.setattr(bench, "T0", datetime(2025, 12, 31, 23, 0, tzinfo=timezone.utc))
    bench.store(db_url, 3000, 5)
    monkeypatch.setattr(perps_module, "iter_perp_fills", _small_chunks(perps_module.iter_perp_fills))  # many chunks: rows cross chunk ends
    settings = resolve_settings(ReportingConfig())
    engine = make_engine(db_url)
    for year in (2025, 2026):
        with engine.connect() as conn:
            held = perp_books(conn, settings, year=year)
            streamed, counts = export_perps(conn, settings, tmp_path / f"s{year}.csv", "csv", year=year)
        write_perps(held, tmp_path / f"h{year}.csv", "csv")
        assert held.realized and counts["Realized"] == len(held.realized) == streamed.realized_count and not streamed.realized
        for name, path in csv_paths(tmp_path / f"s{year}.csv").items():
            assert path.read_text() == csv_paths(tmp_path / f"h{year}.csv")[name].read_text(), (year, name)
        assert streamed.net == held.net and streamed.positions == held.positions
    engine.dispose()


def _small_chunks(real):
    def wrapped(conn, **kw):
        kw["chunk"] = 97
        return real(conn, **kw)

    return wrapped
