"""Hostile data through every exporter: symbols, ids and notes starting with = + - @ TAB CR never reach a
spreadsheet as formulas, files stay RFC 4180, numbers stay untouched, beancount still checks."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import sys
from pathlib import Path

from reports.safety import FORMULA_PREFIXES
from tests.reports.tax.sample import run_cli
from tests.reports.tax.scenario import generated

SYMBOLS = {"BTC": '=HYPERLINK("http://x","y")', "SOL": "+SOL", "ETH": "@ETH"}
NOTES = ["=1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "+cmd", "=cmd|' /C calc'!A0", "plain, with \"quotes\""]
NUMBER = re.compile(r"-?\d+([.,]\d+)?")


def _hostile():
    return generated(seed=5, n=90, symbol=lambda a: SYMBOLS[a], note=lambda i: NOTES[i % len(NOTES)])


def _check_cells(cells, where):
    for c in cells:
        if c and c[0] in FORMULA_PREFIXES:
            assert NUMBER.fullmatch(c), f"{where}: formula-like cell {c!r}"


def _check_csv(path: Path):
    import io

    body = path.read_bytes().decode("utf-8-sig")
    delimiter = ";" if "aufstellung" in path.name else ","
    rows = list(csv.reader(io.StringIO(body, newline=""), delimiter=delimiter))
    # RFC 4180: CRLF record ends, minimal quoting with doubled quotes: writing the parsed rows again gives the same text
    again = io.StringIO()
    csv.writer(again, lineterminator="\r\n", delimiter=delimiter).writerows(rows)
    assert again.getvalue() == body, path.name
    widths = {len(r) for r in rows if len(r) > 1}
    assert len(widths) <= 1, f"{path.name}: rows of different widths {widths}"
    for r in rows:
        _check_cells(r, path.name)
    return rows


def test_hostile__every_exporter(ledger, tmp_path):
    ledger.post(_hostile())
    outs = []
    for juris in ("us", "uk", "de", "generic"):
        out = tmp_path / f"tax-{juris}"
        assert run_cli("export", "tax", "--year", "2024", "--jurisdiction", juris, "--format", "csv,xlsx,pdf,txf", "--out", out, "--db", ledger.url,
                       "--allow-incomplete") == 0
        outs += sorted(out.iterdir())
    for target in ("koinly", "cointracker", "awaken"):
        out = tmp_path / f"{target}.csv"
        assert run_cli("export", target, "--out", out, "--db", ledger.url) == 0
        outs.append(out)
    outs.append(tmp_path / "awaken-perps.csv")
    csvs = [p for p in outs if p.suffix == ".csv"]
    assert len(csvs) > 20
    seen_symbol = seen_negative = False
    for p in csvs:
        rows = _check_csv(p)
        flat = [c for r in rows for c in r]
        seen_symbol |= "'" + SYMBOLS["BTC"] in flat or "'+SOL" in flat
        seen_negative |= any(c.startswith("-") and NUMBER.fullmatch(c) for c in flat)
    assert seen_symbol and seen_negative  # the symbol is defused, the negative numbers are not
    koinly = list(csv.DictReader(open(tmp_path / "koinly.csv", encoding="utf-8", newline="")))
    assert {r["Received Currency"] for r in koinly} >= {"'" + SYMBOLS["BTC"], "'+SOL", "'@ETH"}
    assert any("=1+1" in r["Description"] for r in koinly) and any("\rCR" in r["Description"] for r in koinly)
    from openpyxl import load_workbook

    for p in (p for p in outs if p.suffix == ".xlsx"):
        for ws in load_workbook(p).worksheets:
            for row in ws.iter_rows():
                for c in row:
                    if c.value is not None:
                        assert c.data_type == "s", f"{p.name}: {c.coordinate} is {c.data_type}"
                        _check_cells([str(c.value)], p.name)
    for p in (p for p in outs if p.suffix == ".txf"):
        assert p.read_bytes().isascii()
    bean = tmp_path / "h.beancount"
    assert run_cli("export", "beancount", "--out", bean, "--db", ledger.url) == 0
    check = subprocess.run([shutil.which("bean-check") or str(Path(sys.executable).with_name("bean-check")), str(bean)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert 'exchange-symbol: "=HYPERLINK(\\"http://x\\",\\"y\\")"' in bean.read_text()
    assert run_cli("export", "hledger", "--out", tmp_path / "h.journal", "--db", ledger.url) == 0
    if shutil.which("hledger"):
        check = subprocess.run(["hledger", "-f", str(tmp_path / "h.journal"), "check", "-s"], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
