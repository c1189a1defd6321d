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
