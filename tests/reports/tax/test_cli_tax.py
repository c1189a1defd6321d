"""export tax's options and the [tax] config section: bad input is one line and exit 2, nothing written."""

from __future__ import annotations

import pytest

from reconcile.config import ConfigError, load_config
from tests.reports.tax.sample import run_cli, sample_entries


def test_config__form_1099da_section(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[tax.form_1099da]\nmain = { 2025 = "basis-reported", 2026 = "none" }\nsub = { 2025 = "basis-not-reported" }\n')
    assert load_config(p).tax.form_1099da == {("main", 2025): "basis-reported", ("main", 2026): "none", ("sub", 2025): "basis-not-reported"}
    p.write_text('[tax.form_1099da]\nmain = { 2025 = "G" }\n')
    with pytest.raises(ConfigError, match=r"tax\.form_1099da\.main\.2025: 'G' is not one of basis-reported"):
        load_config(p)
    p.write_text('[tax.form_1099da]\nmain = { y2025 = "none" }\n')
    with pytest.raises(ConfigError, match="four-digit year"):
        load_config(p)
    p.write_text('[tax]\nboxes = 1\n')
    with pytest.raises(ConfigError, match="tax.boxes: unknown key"):
        load_config(p)


@pytest.mark.parametrize(("opt", "value", "message"), [("--format", "csv,docx", "--format"), ("--rounding", "pennies", "--rounding"),
                                                       ("--jurisdiction", "fr", "--jurisdiction"), ("--method", "random", "--method")])
def test_export_tax__bad_options_exit_2(ledger, tmp_path, capsys, opt, value, message):
    ledger.post(sample_entries())
    out = tmp_path / "o"
    assert run_cli("export", "tax", "--year", "2025", opt, value, "--out", out, "--db", ledger.url) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not out.exists()


def test_export_tax__dollars_rounding(ledger, tmp_path):
    ledger.post(sample_entries())
    out = tmp_path / "o"
    assert run_cli("export", "tax", "--year", "2025", "--jurisdiction", "us", "--rounding", "dollars", "--out", out, "--db", ledger.url) == 0
    from tests.reports.tax.sample import read_csv

    sd = {r["line"]: r for r in read_csv(out / "schedule-d.csv")}
    assert sd["16"]["(h) gain or (loss)"] == "585" and "whole units" in (out / "README.txt").read_text()


@pytest.mark.parametrize("forked", [False, True], ids=["in-process", "forked"])
def test_export_tax__a_year_end_not_reconciled_is_incomplete(ledger, tmp_path, capsys, monkeypatch, forked):
    """The forms of a ledger the exchange never confirmed (no snapshot) are refused (exit 4, nothing written); a
    snapshot that agrees lets them out; one that disagrees names the account and the line. ``forked``: the
    year-end check in the forked process a large ledger gets (the threshold lowered), with the same verdicts."""
    from ledger import forked as forking
    from ledger import report_books

    calls: list = []
    if forked:
        monkeypatch.setattr(report_books, "CHILD_MIN_ENTRIES", 1)
        real = forking.call
        monkeypatch.setattr(forking, "call", lambda conn, fn: calls.append(fn.__name__) or real(conn, fn))
    from datetime import timedelta
    from decimal import Decimal

    from tests.reports.report_ledger import snapshot_as_ledger
    from tests.reports.tax.sample import snapshot_now

    ledger.post(sample_entries(), snapshot=False)
    out = tmp_path / "o"
    args = ("export", "tax", "--year", "2025", "--jurisdiction", "us", "--out", out, "--db", ledger.url)
    assert run_cli(*args) == 4
    err = capsys.readouterr().err
    assert err.splitlines()[0] == ("reconcile: incomplete data: INCOMPLETE DATA - not reconciled with the exchange at the end of tax year 2025: "
                                   "main: no snapshot (exit 4; --allow-incomplete writes the files with this warning)")
    assert not out.exists()
    assert run_cli(*args, "--allow-incomplete") == 0
    assert "not reconciled with the exchange at the end of tax year 2025: main: no snapshot" in (out / "README.txt").read_text(encoding="utf-8-sig")
    snapshot_now(ledger.engine)
    assert run_cli(*args) == 0
    from sqlalchemy import text

    from ledger.types import utc_from_db

    with ledger.engine.connect() as conn:  # a newer snapshot with 1 SOL fewer than the ledger holds
        at = utc_from_db(conn.execute(text("SELECT MAX(taken_at) FROM snapshots")).scalar()) + timedelta(seconds=1)
    snapshot_as_ledger(ledger.engine, "main", taken_at=at, short={("Spot", "SOL"): Decimal(1)})
    capsys.readouterr()
    assert run_cli(*args) == 4
    first = capsys.readouterr().err.splitlines()[0]
    assert "end of tax year 2025: main: 1 difference(s) (Spot SOL ledger " in first
    assert calls.count("year_end_checks") == (4 if forked else 0)  # each run's check was forked (or none was)
