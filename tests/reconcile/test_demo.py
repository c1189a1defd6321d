"""``reconcile demo``: the whole chain against a generated account, offline."""

from __future__ import annotations

import csv

from reconcile.cli import main


def test_demo__runs_the_whole_chain_and_reconciles(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RECONCILE_CONFIG", raising=False)
    monkeypatch.delenv("RECONCILE_DB", raising=False)
    # The demo account holds deposits of coins the exchange lists no market for (unpriced, zero basis):
    # its statements are incomplete, written with --allow-incomplete, and say so.
    assert main(["demo", "--fills", "300", "--seed", "11", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ledger equals the exchange to the last unit" in out
    assert "realized gains and income" in out and "simulator stopped" in out
    gains = sorted(tmp_path.glob("gains-*.csv"))
    assert gains and all((tmp_path / g.name.replace("gains", "statement").replace(".csv", ".html")).exists() for g in gains)
    assert all('class="banner bad"' in p.read_text() or 'class="banner good"' in p.read_text() for p in tmp_path.glob("statement-*.html"))
    with open(gains[-1], newline="") as fh:
        first, header = list(csv.reader(fh))[:2]
    assert first[0].startswith("# INCOMPLETE DATA: ")  # the verdict first, then the export as docs/gains-export.md has it
    assert header[:3] == ["account", "asset", "quantity"]
    assert (tmp_path / "journal.csv").stat().st_size > 0
    # the secrets it wrote are private
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in tmp_path.glob("*.secret"))
