"""Canada, Australia and Japan exports against TAX-RULES.md's worked cases (CA-1, CA-2, AU-1, AU-2, JP-1),
through the CLI on a posted ledger (SQLite and PostgreSQL), and a 2023 and a 2025 year rebuilt each
against its own year's rule (the versioned rules of the jurisdiction table)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.reports.tax.sample import read_csv, run_cli, spot


def _cfg(tmp_path, jurisdiction, currency, extra=""):
    p = tmp_path / "reconcile.toml"
    p.write_text(f'[reporting]\njurisdiction = "{jurisdiction}"\ncurrency = "{currency}"\n{extra}')
    return p


def _t(cur, key, when, side, qty, amount, base="BTC"):
    return spot(key, when, side, base, qty, amount, quote=cur, currency=cur)


def _export(ledger, tmp_path, jurisdiction, currency, year, extra=""):
    out = tmp_path / jurisdiction
    assert run_cli("export", "tax", "--year", str(year), "--out", out, "--db", ledger.url, "--config", _cfg(tmp_path, jurisdiction, currency, extra)) == 0
    return out


def _by(rows, key):
    return {r[key]: r for r in rows}


def test_ca1_schedule_3(ledger, tmp_path):
    ledger.post([_t("CAD", "b1", "2024-01-10T15:00:00", "buy", "10", "1000"), _t("CAD", "b2", "2024-02-10T15:00:00", "buy", "10", "2000"),
                 _t("CAD", "s1", "2024-03-10T15:00:00", "sell", "5", "1500")])
    out = _export(ledger, tmp_path, "ca", "CAD", 2024)
    (row,) = read_csv(out / "ca-schedule-3.csv")
    assert (row["Year of acquisition"], row["Proceeds of disposition"], row["Adjusted cost base"], row["Gain (or loss)"], row["Taxable at 50%"]) == \
        ("2024", "1500.00", "750.00", "750.00", "375.00")
    tot = _by(read_csv(out / "ca-schedule-3-totals.csv"), "line")
    assert Decimal(tot["Taxable capital gain"]["CAD (exact)"]) == 375
    (pool,) = read_csv(out / "ca-acb-pools.csv")
    assert (Decimal(pool["units at end"]), Decimal(pool["ACB CAD at end"])) == (15, 2250)
    assert read_csv(out / "ca-superficial-losses.csv") == []
    assert "America/Toronto" in (out / "README.txt").read_text()


def test_ca2_superficial_loss_listed_apart(ledger, tmp_path):
    ledger.post([_t("CAD", "b1", "2024-01-01T15:00:00", "buy", "10", "1000"), _t("CAD", "s1", "2024-03-01T15:00:00", "sell", "10", "600"),
                 _t("CAD", "b2", "2024-03-15T15:00:00", "buy", "4", "260")])
    out = _export(ledger, tmp_path, "ca", "CAD", 2024)
    (row,) = read_csv(out / "ca-schedule-3.csv")
    assert (row["Gain (or loss)"], row["Superficial loss denied"]) == ("-240.00", "160.00")
    (sup,) = read_csv(out / "ca-superficial-losses.csv")
    assert (sup["Units sold"], sup["Units substituted"], sup["Denied loss CAD (exact)"]) == ("10", "4", "160")
    tot = _by(read_csv(out / "ca-schedule-3-totals.csv"), "line")
    assert Decimal(tot["Capital losses allowed"]["CAD (exact)"]) == 240
    assert Decimal(tot["Allowable capital loss (carry back 3 / forward)"]["CAD (exact)"]) == -120
    (pool,) = read_csv(out / "ca-acb-pools.csv")
    assert (Decimal(pool["units at end"]), Decimal(pool["ACB CAD at end"])) == (4, 420)


@pytest.mark.parametrize(("sold", "net", "discount"), [("2024-07-02", "10000", "10000"), ("2024-07-01", "20000", "0")])
def test_au1_discount_after_twelve_months(ledger, tmp_path, sold, net, discount):
    # 10:00 Sydney time is 00:00 UTC (AEST, UTC+10)
    ledger.post([_t("AUD", "b1", "2023-07-01T00:00:00", "buy", "1", "30000"), _t("AUD", "s1", f"{sold}T00:00:00", "sell", "1", "50000")])
    out = _export(ledger, tmp_path, "au", "AUD", 2024)
    s = _by(read_csv(out / "au-cgt-schedule.csv"), "label")
    assert Decimal(s["Net capital gain"]["AUD (exact)"]) == Decimal(net)
    assert Decimal(s["CGT discount applied"]["AUD (exact)"]) == Decimal(discount)
    (d,) = read_csv(out / "au-cgt-disposals.csv")
    assert d["Discount eligible"] == ("yes" if discount != "0" else "no")
    assert "2024/25" in (out / "README.txt").read_text()


def test_au2_losses_before_the_discount(ledger, tmp_path):
    ledger.post([_t("AUD", "b1", "2023-07-01T00:00:00", "buy", "1", "30000"), _t("AUD", "s1", "2024-07-02T00:00:00", "sell", "1", "50000"),
                 _t("AUD", "e1", "2024-08-01T00:00:00", "buy", "10", "10000", base="ETH"), _t("AUD", "e2", "2024-09-01T00:00:00", "sell", "10", "6000", base="ETH")])
    out = _export(ledger, tmp_path, "au", "AUD", 2024)
    s = _by(read_csv(out / "au-cgt-schedule.csv"), "label")
    assert Decimal(s["Capital losses applied"]["AUD (exact)"]) == 4000
    assert Decimal(s["Net capital gain"]["AUD (exact)"]) == 8000  # (20,000 - 4,000) x 50%, not 10,000 - 4,000


@pytest.mark.parametrize(("method", "gain", "carried"), [("total-average", "1000000", "750000"), ("moving-average", "1083333.33", "833333.33")])
def test_jp1_both_methods(ledger, tmp_path, method, gain, carried):
    ledger.post([_t("JPY", "b1", "2024-01-15T03:00:00", "buy", "1", "1000000"), _t("JPY", "s1", "2024-03-15T03:00:00", "sell", "0.5", "750000"),
                 _t("JPY", "b2", "2024-06-15T03:00:00", "buy", "1", "2000000"), _t("JPY", "s2", "2024-12-15T03:00:00", "sell", "1", "2500000")])
    out = _export(ledger, tmp_path, "jp", "JPY", 2024, extra=f'method = "{method}"\n')
    f = _by(read_csv(out / "jp-summary.csv"), "figure")
    assert Decimal(f["Crypto gains (雑所得: 暗号資産の売却)"]["JPY (rounded)"]) == Decimal(gain)
    (a,) = read_csv(out / "jp-assets.csv")
    assert Decimal(a["units carried forward"]) == Decimal("0.5")
    assert Decimal(a["cost carried forward"]).quantize(Decimal("0.01")) == Decimal(carried)
    if method == "total-average":
        assert Decimal(a["unit cost of units sold"]) == 1500000


def test_versioned_rules_rebuild_2023_and_2025_each_by_its_own_rule(ledger, tmp_path):
    """The same EUR 800 short-term gain in 2023 and in 2025: 2023's Freigrenze was 600 (taxable), 2025's is 1,000 (tax-free);
    the US export of 2023 uses boxes C/F and universal basis, 2025's I/L and per-account basis."""
    ledger.post([_t("EUR", "b1", "2023-02-01T10:00:00", "buy", "1", "1000"), _t("EUR", "s1", "2023-03-01T10:00:00", "sell", "1", "1800"),
                 _t("EUR", "b2", "2025-02-01T10:00:00", "buy", "1", "1000"), _t("EUR", "s2", "2025-03-01T10:00:00", "sell", "1", "1800")])
    for year, taxed in ((2023, "800"), (2025, "0")):
        out = tmp_path / f"de{year}"
        assert run_cli("export", "tax", "--year", str(year), "--out", out, "--db", ledger.url, "--config", _cfg(tmp_path, "de", "EUR")) == 0
        so = _by(read_csv(out / "anlage-so.csv"), "Feld")
        assert Decimal(so[f"Freigrenze §23 Abs. 3 Satz 5 EStG {year}"]["EUR (exakt)"]) == (600 if year == 2023 else 1000)
        assert Decimal(so["zu versteuern nach Freigrenze"]["EUR (exakt)"]) == Decimal(taxed)


def test_versioned_us_rules_2023_and_2025(ledger, tmp_path):
    """US 2023: universal basis (ExB's sale takes ExA's older lot), boxes C/F; 2025: per-account basis, boxes I/L."""
    ledger.post([spot("a1", "2023-01-10T10:00:00", "buy", "BTC", "1", "100", acct="exa"), spot("b1", "2023-02-10T10:00:00", "buy", "BTC", "1", "300", acct="exb"),
                 spot("b2", "2023-06-10T10:00:00", "sell", "BTC", "1", "500", acct="exb"),
                 spot("a2", "2025-01-10T10:00:00", "buy", "BTC", "1", "100", acct="exa"), spot("b3", "2025-02-10T10:00:00", "buy", "BTC", "1", "400", acct="exb"),
                 spot("b4", "2025-06-10T10:00:00", "sell", "BTC", "1", "500", acct="exb")])
    cfg = _cfg(tmp_path, "us", "USD", 'method = "fifo"\n')
    out = tmp_path / "us2023"
    assert run_cli("export", "tax", "--year", "2023", "--out", out, "--db", ledger.url, "--config", cfg) == 0
    rows = [r for r in read_csv(out / "form-8949-box-C.csv") if r["disposal_id"]]
    assert [(r["account"], r["(e) Cost or other basis"], r["(h) Gain or (loss)"]) for r in rows] == [("exb", "100.00", "400.00")]  # universal FIFO
    assert not (out / "form-8949-box-I.csv").exists()
    out = tmp_path / "us2025"
    assert run_cli("export", "tax", "--year", "2025", "--out", out, "--db", ledger.url, "--config", cfg) == 0
    assert not (out / "form-8949-box-C.csv").exists()
    rows = [r for r in read_csv(out / "form-8949-box-I.csv") if r["disposal_id"]]
    assert [(r["account"], r["(e) Cost or other basis"], r["(h) Gain or (loss)"]) for r in rows] == [("exb", "400.00", "100.00")]  # per account (universal FIFO would take the 2023 lot at 300)


def test_ca_tax_year_in_the_zone_the_user_sets(ledger, tmp_path):
    """A sale at 02:00 UTC on 1 January 2025 is 31 December 2024 in Toronto and in Vancouver: in the 2024 year either way;
    at 06:00 UTC it is 1 January in Toronto (2025) but still 31 December in Vancouver (2024)."""
    ledger.post([_t("CAD", "b1", "2024-06-01T15:00:00", "buy", "10", "1000"), _t("CAD", "s1", "2025-01-01T06:00:00", "sell", "1", "300")])
    out = _export(ledger, tmp_path, "ca", "CAD", 2024)
    assert read_csv(out / "ca-schedule-3.csv") == []
    out = _export(ledger, tmp_path, "ca", "CAD", 2024, extra='tax_timezone = "America/Vancouver"\n')
    (row,) = read_csv(out / "ca-schedule-3.csv")
    assert (row["Disposal date"], row["Gain (or loss)"]) == ("2024-12-31", "200.00")
    assert "America/Vancouver" in (out / "README.txt").read_text()
