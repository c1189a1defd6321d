"""`reconcile report --jurisdictions`: one USD-valued ledger through every jurisdiction, each in its own currency
(through the FX file), tax year and method (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from ledger.booking import Settings, book
from ledger.fxconvert import EventConverter
from ledger.valuation import FxGap, FxRates
from tests.ledger.booking.booking_scenarios import buy, sell
from tests.reports.report_ledger import snapshot_as_ledger
from tests.reports.tax.sample import run_cli, spot

RATES = {"EUR": Decimal("0.9"), "GBP": Decimal("0.8"), "CAD": Decimal("1.35"), "AUD": Decimal("1.5"), "JPY": Decimal("150")}


def _fx(tmp_path, first=date(2023, 12, 1), last=date(2025, 7, 31)):
    lines = ["date,currency,rate"]
    d = first
    while d <= last:
        lines += [f"{d.isoformat()},{c},{r}" for c, r in RATES.items()]
        d += timedelta(days=1)
    p = tmp_path / "fx.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


def _cfg(tmp_path, fx=True):
    p = tmp_path / "reconcile.toml"
    p.write_text('[reporting]\njurisdiction = "us"\ncurrency = "USD"\nmethod = "fifo"\n' + (f'fx_file = "{_fx(tmp_path)}"\n' if fx else ""))
    return p


def _post(ledger, snapshot=True):
    """The trades, and (``snapshot``) a snapshot of both accounts equal to them: the reports reconcile."""
    ledger.post([spot("b1", "2024-01-10T15:00:00", "buy", "BTC", "10", "1000", acct="main"), spot("b2", "2024-02-10T15:00:00", "buy", "BTC", "10", "2000", acct="sub"),
                 spot("s1", "2024-03-10T15:00:00", "sell", "BTC", "5", "1500", acct="sub")])
    if snapshot:
        snapshot_as_ledger(ledger.engine, "main", "sub")


def _valued(ledger, tmp_path):
    """Value the posted ledger under the config with its FX file, as a user does after configuring one (a configured
    file never applied is a stale valuation: exit 4)."""
    assert run_cli("prices", "--offline", "--db", ledger.url, "--config", _cfg(tmp_path)) == 0


def _block(out: str, name: str) -> str:
    return out.split(f"\n{name}: ", 1)[1].split("\n\n", 1)[0]


def test_side_by_side_each_in_its_own_currency_year_and_method(ledger, tmp_path, capsys):
    _post(ledger)
    _valued(ledger, tmp_path)
    out = tmp_path / "rep"
    code = run_cli("report", "--year", "2024", "--out", out, "--format", "html", "--db", ledger.url, "--config", _cfg(tmp_path),
                   "--jurisdictions", "us,uk,de,ca,au,jp", "--no-compare")
    text = capsys.readouterr().out
    assert code == 0, text
    # us: universal FIFO takes main's lot at 100: +1,000 USD
    assert "tax-relevant total: net capital gain (loss) (Schedule D line 16): 1,000.00 USD" in _block(text, "us")
    # uk: the 10 March sale is in 2023/24; 2024/25 has no disposal
    assert "tax year 2024/25 (2024-04-06 to 2025-04-05, Europe/London), GBP" in _block(text, "uk")
    assert "Disposal proceeds: 0.00" in _block(text, "uk")
    # de: FIFO per wallet takes sub's own lot at 200: 500 USD = 450 EUR, under the 1,000 Freigrenze
    de = _block(text, "de")
    assert "§23 Gewinn steuerpflichtig: 450.00" in de and "tax-relevant total: §23 zu versteuern nach Freigrenze: 0.00 EUR" in de
    # ca: ACB 150 across accounts: 750 USD = 1,012.50 CAD, half taxable
    ca = _block(text, "ca")
    assert "Net capital gain (loss): 1,012.50" in ca and "Taxable capital gain: 506.25" in ca and "method acb" in ca
    # au: income year 2024/25 starts 1 July 2024: nothing yet
    assert "tax year 2024/25 (2024-07-01 to 2025-06-30, Australia/Sydney), AUD" in _block(text, "au")
    # jp: total average 150 per unit: 750 USD = 112,500 JPY
    assert "Crypto gains (雑所得: 暗号資産の売却): 112,500.00" in _block(text, "jp")
    html = (out / "statement-2024.html").read_text()
    assert "Jurisdictions side by side" in html and "CAD" in html and "Australia/Sydney" in html and "USD -&gt; JPY" in html


def test_side_by_side_au_previous_income_year_holds_the_march_sale(ledger, tmp_path, capsys):
    _post(ledger)
    _valued(ledger, tmp_path)
    assert run_cli("report", "--year", "2023", "--out", tmp_path / "r", "--format", "html", "--db", ledger.url, "--config", _cfg(tmp_path),
                   "--jurisdictions", "au,uk", "--no-compare") == 0
    text = capsys.readouterr().out
    # FIFO universal: main's lot at 100: 1,000 USD = 1,500 AUD, held under 12 months: no discount
    assert "Net capital gain: 1,500.00" in _block(text, "au")
    assert "Gains in the year, before losses: 600.00" in _block(text, "uk")  # s104 at 150: 750 USD = 600 GBP


def test_side_by_side_without_an_fx_file_is_one_clear_error(ledger, tmp_path, capsys):
    _post(ledger)
    out = tmp_path / "rep"
    assert run_cli("report", "--year", "2024", "--out", out, "--db", ledger.url, "--config", _cfg(tmp_path, fx=False), "--jurisdictions", "us,ca") == 2
    err = capsys.readouterr().err
    assert "ca reports in CAD" in err and "fx_file" in err
    assert not out.exists()


@pytest.mark.parametrize(("args", "what"), [(("--jurisdictions", "us,xx", "--year", "2024"), "--jurisdictions"),
                                            (("--jurisdictions", "us", "--from", "2024-01-01", "--to", "2024-02-01"), "needs --year")])
def test_side_by_side_bad_options_exit_2(ledger, tmp_path, capsys, args, what):
    assert run_cli("report", "--out", tmp_path / "rep", "--db", ledger.url, "--config", _cfg(tmp_path), *args) == 2
    assert what in capsys.readouterr().err


def test_converted_booking_equals_booking_in_the_target_currency():
    """Amounts through the FX file by date give what valuing each event in the target currency gives."""
    fx = FxRates("fx", {"CAD": {date(2024, 1, 10): Decimal("1.3"), date(2024, 2, 10): Decimal("1.4"), date(2024, 3, 10): Decimal("1.5")}})
    usd = [buy("b1", "2024-01-10", "10", "1000"), buy("b2", "2024-02-10", "10", "2000"), sell("s1", "2024-03-10", "5", "1500")]
    cad = [buy("b1", "2024-01-10", "10", "1300"), buy("b2", "2024-02-10", "10", "2800"), sell("s1", "2024-03-10", "5", "2250")]
    conv = EventConverter(fx, "USD", "CAD")
    s = Settings(jurisdiction="ca")
    assert book(conv(usd), s).gains == book(cad, s).gains
    with pytest.raises(FxGap, match="no CAD rate for 2024-04-20"):
        conv([buy("b3", "2024-04-20", "1", "1")])


@pytest.mark.parametrize("juris", ["ca", "au", "jp"])
def test_report_and_exports_under_the_new_jurisdictions(ledger, tmp_path, capsys, juris):
    """The report, the gains export and the lots export run under each new jurisdiction (its pooled method where it has one)."""
    _post(ledger)
    cfg = _cfg(tmp_path, fx=False)  # the ledger is valued as posted (an FX file not yet applied would be refused as stale)
    out = tmp_path / "rep"
    assert run_cli("report", "--year", "2024", "--out", out, "--format", "html", "--db", ledger.url, "--config", cfg, "--jurisdiction", juris) == 0, \
        capsys.readouterr().err
    html = (out / "statement-2024.html").read_text()
    assert "Method comparison" in html
    year = "2023" if juris == "au" else "2024"  # the 10 March 2024 sale is in Australia's 2023/24
    assert run_cli("export", "gains", "--year", year, "--jurisdiction", juris, "--format", "csv", "--out", tmp_path / "g.csv", "--db", ledger.url,
                   "--config", cfg) == 0
    text = (tmp_path / "g.csv").read_text()
    method = {"ca": "acb", "au": "fifo", "jp": "total-average"}[juris]
    assert f",{method}," in text
    assert run_cli("export", "lots", "--at", "2024-12-31", "--jurisdiction", juris, "--out", tmp_path / "l.csv", "--db", ledger.url, "--config", cfg) == 0


def test_side_by_side_exit_4_when_a_jurisdictions_year_is_incomplete(ledger, tmp_path, capsys):
    """A deposit of unknown basis in February 2025 is after the US 2024 year but inside the UK's 2024/25: the US report is
    complete, the UK column is not: exit 4 and nothing written, unless --allow-incomplete (then the column says so)."""
    from ledger.posting import Source, cash
    from tests.reports.tax.sample import at, priced

    _post(ledger, snapshot=False)
    ledger.post([priced(cash(Source("main", "deposits", "dep1", at("2025-02-01T10:00:00")), kind="deposit", asset="BTC", quantity=Decimal("1"),
                             counter="Equity:External"), BTC="90000")])
    snapshot_as_ledger(ledger.engine, "main", "sub")
    _valued(ledger, tmp_path)
    out = tmp_path / "rep"
    assert run_cli("report", "--year", "2024", "--out", out, "--format", "html", "--db", ledger.url, "--config", _cfg(tmp_path), "--jurisdictions", "us") == 0
    capsys.readouterr()
    out2 = tmp_path / "rep2"
    assert run_cli("report", "--year", "2024", "--out", out2, "--format", "html", "--db", ledger.url, "--config", _cfg(tmp_path), "--jurisdictions", "us,uk") == 4
    err = capsys.readouterr().err
    assert "--jurisdictions uk 2024/25" in err and "missing-basis" in err and not out2.exists()
    assert run_cli("statement", "--year", "2024", "--out", tmp_path / "s.html", "--db", ledger.url, "--config", _cfg(tmp_path), "--jurisdictions", "us,uk",
                   "--allow-incomplete") == 0
    html = (tmp_path / "s.html").read_text()
    assert "Jurisdictions side by side" in html and "INCOMPLETE" in html
