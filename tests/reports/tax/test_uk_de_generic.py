"""UK, Germany and generic exports against TAX-RULES.md's worked examples (SQLite and PostgreSQL)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from reports.tax.de import freigrenze
from tests.reports.tax.sample import read_csv, run_cli, spot


def _cfg(tmp_path, jurisdiction, currency):
    p = tmp_path / "reconcile.toml"
    p.write_text(f'[reporting]\njurisdiction = "{jurisdiction}"\ncurrency = "{currency}"\nmethod = "{"uk" if jurisdiction == "uk" else "fifo"}"\n')
    return p


def _uk_trade(key, when, side, qty, gbp):
    return spot(key, when, side, "SOL", qty, gbp, quote="GBP", currency="GBP")


def test_uk__sa108_and_computation_of_the_simple_example(ledger, tmp_path):
    """TAX-RULES §2.3: two disposals, proceeds 3,000, costs 2,000, gains 1,000; B&B 250 then S104 750; pool 15 @ 2,250."""
    ledger.post([_uk_trade("b1", "2024-05-01T10:00:00", "buy", "10", "1000"), _uk_trade("b2", "2024-05-01T11:00:00", "buy", "10", "2000"),
                 _uk_trade("s1", "2024-06-10T10:00:00", "sell", "5", "1500"), _uk_trade("s2", "2024-06-20T10:00:00", "sell", "5", "1500"),
                 _uk_trade("b3", "2024-06-30T10:00:00", "buy", "5", "1250")])
    out = tmp_path / "uk"
    assert run_cli("export", "tax", "--year", "2024", "--out", out, "--db", ledger.url, "--config", _cfg(tmp_path, "uk", "GBP")) == 0
    figs = {r["figure"]: r for r in read_csv(out / "sa108.csv")}
    assert figs["Number of disposals"]["amount GBP (exact)"] == "2"
    assert figs["Disposal proceeds"]["amount GBP (rounded)"] == "3000.00"
    assert figs["Allowable costs (including the purchase price)"]["amount GBP (rounded)"] == "2000.00"
    assert figs["Gains in the year, before losses"]["amount GBP (rounded)"] == "1000.00"
    assert figs["Losses in the year"]["amount GBP (rounded)"] == "0.00"
    assert Decimal(figs["Gains before 30 October 2024"]["amount GBP (exact)"]) == 1000
    comp = read_csv(out / "uk-computation.csv")
    got = [(r["Disposal date"], r["Matching rule"], r["Matched acquisition date"], Decimal(r["Gain GBP"])) for r in comp]
    assert got == [("2024-06-10", "Bed & breakfast (30 days)", "2024-06-30", Decimal(250)), ("2024-06-20", "Section 104 pool", "", Decimal(750))]
    (pool,) = read_csv(out / "uk-s104-pools.csv")
    assert (Decimal(pool["pool quantity at end"]), Decimal(pool["pool cost GBP at end"])) == (Decimal(15), Decimal(2250))
    assert (Decimal(pool["pool quantity at start"]), Decimal(pool["pool cost GBP at start"])) == (Decimal(0), Decimal(0))
    assert "Europe/London" in (out / "README.txt").read_text()


def test_uk__same_day_disposals_count_once(ledger, tmp_path):
    ledger.post([_uk_trade("b1", "2024-05-01T10:00:00", "buy", "10", "1000"), _uk_trade("s1", "2024-06-10T09:00:00", "sell", "2", "300"),
                 _uk_trade("s2", "2024-06-10T15:00:00", "sell", "2", "100")])
    out = tmp_path / "uk"
    assert run_cli("export", "tax", "--year", "2024", "--out", out, "--db", ledger.url, "--config", _cfg(tmp_path, "uk", "GBP")) == 0
    figs = {r["figure"]: r for r in read_csv(out / "sa108.csv")}
    assert figs["Number of disposals"]["amount GBP (exact)"] == "1"
    # one disposal of 4 for 400 against cost 400: no gain and no loss, though the engine has two rows
    assert Decimal(figs["Gains in the year, before losses"]["amount GBP (exact)"]) == 0 == Decimal(figs["Losses in the year"]["amount GBP (exact)"])


def _de_trade(key, when, side, qty, eur):
    return spot(key, when, side, "BTC", qty, eur, quote="EUR", currency="EUR")


@pytest.mark.parametrize(("sold", "taxable", "exempt"), [("2025-01-10", "40000", "0"), ("2025-01-11", "10000", "30000")])
def test_de__anlage_so_de1(ledger, tmp_path, sold, taxable, exempt):
    """TAX-RULES DE-1: sold on the anniversary, both lots are taxable; a day later the first is exempt."""
    ledger.post([_de_trade("b1", "2024-01-10T10:00:00", "buy", "1", "10000"), _de_trade("b2", "2024-06-01T10:00:00", "buy", "1", "20000"),
                 _de_trade("s1", f"{sold}T10:00:00", "sell", "1.5", "60000")])
    out = tmp_path / "de"
    assert run_cli("export", "tax", "--year", "2025", "--out", out, "--db", ledger.url, "--config", _cfg(tmp_path, "de", "EUR")) == 0
    so = {r["Feld"]: r for r in read_csv(out / "anlage-so.csv")}
    assert Decimal(so["Gewinn/Verlust (steuerpflichtig)"]["EUR (exakt)"]) == Decimal(taxable)
    assert Decimal(so["Gewinn/Verlust (steuerfrei, Haltefrist über 1 Jahr)"]["EUR (exakt)"]) == Decimal(exempt)
    assert Decimal(so["Freigrenze §23 Abs. 3 Satz 5 EStG 2025"]["EUR (exakt)"]) == 1000
    assert Decimal(so["zu versteuern nach Freigrenze"]["EUR (exakt)"]) == Decimal(taxable)
    raw = (out / "anlage-so-aufstellung.csv").read_text(encoding="utf-8-sig")
    rows = read_csv(out / "anlage-so-aufstellung.csv")
    assert "Coin;Konto;Anschaffung;Veräußerung;Menge" in raw
    import csv
    import io

    table = [r for r in csv.reader(io.StringIO(raw), delimiter=";") if len(r) > 1]
    first = dict(zip(table[0], table[1]))
    assert (first["Anschaffung"], first["Veräußerung"], first["Menge"]) == ("10.01.2024", sold[8:10] + ".01.2025", "1")
    assert first["Gewinn EUR"] == "30000,00" and first["steuerpflichtig"] == ("ja" if sold.endswith("10") else "nein")
    assert rows  # parsed


@pytest.mark.parametrize(("gain", "taxed"), [("999.99", "0"), ("1000.00", "1000.00")])
def test_de__freigrenze_is_a_limit_not_an_allowance(ledger, tmp_path, gain, taxed):
    """TAX-RULES DE-2."""
    ledger.post([_de_trade("b1", "2025-01-10T10:00:00", "buy", "1", "1000"), _de_trade("s1", "2025-03-10T10:00:00", "sell", "1", str(Decimal(1000) + Decimal(gain)))])
    out = tmp_path / "de"
    assert run_cli("export", "tax", "--year", "2025", "--out", out, "--db", ledger.url, "--config", _cfg(tmp_path, "de", "EUR")) == 0
    so = {r["Feld"]: r for r in read_csv(out / "anlage-so.csv")}
    assert Decimal(so["zu versteuern nach Freigrenze"]["EUR (exakt)"]) == Decimal(taxed)


def test_de__freigrenze_by_year():
    assert (freigrenze(2023), freigrenze(2024), freigrenze(2030)) == (Decimal(600), Decimal(1000), Decimal(1000))


def test_generic__totals_by_term_and_asset(ledger, tmp_path):
    ledger.post([spot("b1", "2024-01-10T10:00:00", "buy", "BTC", "1", "100"), spot("b2", "2025-01-10T10:00:00", "buy", "SOL", "2", "20"),
                 spot("s1", "2025-03-01T10:00:00", "sell", "BTC", "1", "150"), spot("s2", "2025-03-02T10:00:00", "sell", "SOL", "1", "5")])
    out = tmp_path / "g"
    assert run_cli("export", "tax", "--year", "2025", "--jurisdiction", "generic", "--out", out, "--db", ledger.url) == 0
    tot = {(r["by"], r["group"]): r for r in read_csv(out / "gains-totals.csv")}
    assert Decimal(tot[("term", "long")]["gain"]) == 50 and Decimal(tot[("term", "short")]["gain"]) == -5
    assert Decimal(tot[("asset", "BTC")]["proceeds"]) == 150 and Decimal(tot[("asset", "SOL")]["cost_basis"]) == 10
    assert tot[("all", "all")]["gain (rounded)"] == "45.00" and tot[("all", "all")]["rounding difference"] == "0"
    assert len(read_csv(out / "gains.csv", skip_preamble=False)) == 2
