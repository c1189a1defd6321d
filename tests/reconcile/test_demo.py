"""``reconcile demo``: the whole chain against a generated account, offline."""

from __future__ import annotations

import csv
import re
from decimal import Decimal

from openpyxl import load_workbook

from reconcile.cli import main


def test_demo__runs_the_whole_chain_reconciles_and_writes_every_output(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RECONCILE_CONFIG", raising=False)
    monkeypatch.delenv("RECONCILE_DB", raising=False)
    assert main(["demo", "--fills", "300", "--seed", "11", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ledger equals the exchange to the last unit" in out and "simulator stopped" in out
    # main and two sub-accounts (transfers between them), each reconciled
    assert all(f"{a}: ledger equals the exchange to the last unit" in out for a in ("main", "sub1", "sub2"))
    # The inputs the demo makes up are said to be made up.
    assert "INVENTED by the demo" in out and "made up by the demo" in out
    prices = list(csv.DictReader((tmp_path / "prices.csv").open()))
    assert {r["asset"] for r in prices} == {"PYTH", "JUP"} and all(Decimal(r["price"]) > 0 for r in prices)
    # With the user's prices and purchase records the years are complete: every report is written without
    # --allow-incomplete (it would have exited 4), and says it reconciled at the period end.
    years = sorted(int(m) for m in re.findall(r"report-(\d{4})/", out))
    assert years == [2024, 2025]
    for y in years:
        html = (tmp_path / f"report-{y}" / f"statement-{y}.html").read_text()
        assert 'class="banner good"' in html
        wb = load_workbook(tmp_path / f"report-{y}" / f"report-{y}.xlsx", read_only=True)
        assert "Summary" in wb.sheetnames
        wb.close()
        tax = tmp_path / f"tax-{y}"
        assert (tax / "README.txt").exists() and list(tax.glob("form-8949-box-*.csv"))
        assert (tmp_path / f"perps-{y}.xlsx").stat().st_size > 0
    assert (tmp_path / "journal.csv").stat().st_size > 0
    # Headline figures in cents, thousands separated.
    assert re.search(r"\d{1,3}(,\d{3})*\.\d{2}", out)
    assert "spot: realized gains" in out and "perpetual futures" in out
    # the secrets it wrote are private
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in tmp_path.glob("*.secret"))


def test_demo__refuses_an_unknown_jurisdiction_in_one_line(tmp_path, capsys):
    assert main(["demo", "--jurisdiction", "mars", "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--jurisdiction" in err[0] and "mars" in err[0]
    assert not (tmp_path / "d").exists()
