"""The workbook's large sheets written by two processes (``reports.xlsx_fast.splice``): the same cells as
written by one, and by one again when the forked process fails; no file of its left behind."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from reconcile.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))


@pytest.fixture
def spot_and_perps(engine, db_url, clean_env):
    from posting_bench import store_raw

    from importers.sync import repost
    from ledger.prices import value_ledger
    from ledger.valuation import ValuationSettings

    store_raw(engine, 600)  # perp fills over two markets and spot fills (USDC-quoted: they price themselves)
    repost(engine, processes=0)
    value_ledger(engine, ValuationSettings())
    return db_url


def _sheets(path: Path) -> dict[str, list[tuple]]:
    from openpyxl import load_workbook

    wb = load_workbook(path)
    return {ws.title: [r for r in ws.iter_rows(values_only=True) if not (r and isinstance(r[0], str) and r[0].startswith("generated"))]
            for ws in wb.worksheets}


def _report(db: str, out: Path) -> dict[str, list[tuple]]:
    assert main(["report", "--year", "2025", "--format", "xlsx", "--out", str(out), "--db", db, "--jurisdiction", "us", "--method", "fifo",
                 "--allow-incomplete"]) == 0
    assert [p.name for p in out.iterdir()] == ["report-2025.xlsx"]  # nothing of the forked process's left
    return _sheets(out / "report-2025.xlsx")


def test_workbook__sheets_written_aside_are_the_sheets_written_in_process(spot_and_perps, tmp_path, monkeypatch):
    import reports.xlsx_fast as xf

    alone = _report(spot_and_perps, tmp_path / "alone")
    real = xf._write_aside
    said = tmp_path / "share.txt"

    def recorded(work):  # in the forked process: which sheets it writes
        said.write_text("\n".join(f.title for f, _s, _p in work))
        real(work)

    monkeypatch.setattr(xf, "ASIDE_MIN_CELLS", 0)
    monkeypatch.setattr(xf, "_write_aside", recorded)
    two = _report(spot_and_perps, tmp_path / "two")
    shares = [tuple(said.read_text().splitlines())]
    # the forked process wrote a share of the sheets on disk (the gains, fees or closes; never the journal)
    assert len(shares) == 1 and shares[0] and "Journal" not in shares[0]
    assert set(shares[0]) <= {"Realized gains", "Fees", "Perpetual closes", "Open lots", "Income"}
    assert two == alone
    assert all(len(alone[t]) > 50 for t in shares[0] if t != "Income")  # sheets with rows, not only a header


def test_workbook__a_failed_aside_process_leaves_its_sheets_to_this_one(spot_and_perps, tmp_path, monkeypatch):
    import reports.xlsx_fast as xf

    alone = _report(spot_and_perps, tmp_path / "alone")

    def broken(work):
        with work[0][2].open("wb") as fh:
            fh.write(b"<row>half")  # a partial file, then the process dies
        os._exit(1)

    monkeypatch.setattr(xf, "ASIDE_MIN_CELLS", 0)
    monkeypatch.setattr(xf, "_write_aside", broken)
    assert _report(spot_and_perps, tmp_path / "fallback") == alone
