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
