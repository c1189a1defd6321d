"""A generated simulator account synced and valued, then booked through every jurisdiction (issue 18).

The generated world (importers/backpack/simulator/generate.py) funds its main account with deposits of
SOL, BTC and ETH whose basis is not in the history: the opening-lots file gives it. With that, the only
findings any jurisdiction may report are the ones the scenario plants, and every jurisdiction reports
the same ones (they are facts of the ledger, not of a method): the side-by-side report runs through
every jurisdiction, each in its own currency through the FX file, and each tax export writes its files.
"""

from __future__ import annotations

import csv
from datetime import date, timedelta
from decimal import Decimal

import pytest

from importers.backpack.simulator.generate import HISTORY_DAYS, generate_world

from .helpers import cli, write_config

JURISDICTIONS = ("us", "uk", "de", "ca", "au", "jp", "generic")
RATES = {"EUR": "0.92", "GBP": "0.79", "CAD": "1.36", "AUD": "1.52", "JPY": "149.5"}
#: What the generated scenario plants that a booking reports (docs/simulator.md): the PYTH and JUP deposits that
#: are swept to dust have no basis in the history. The funding deposits' basis is given by the opening lots.
PLANTED = {("missing-basis", "PYTH"), ("missing-basis", "JUP")}


@pytest.fixture(scope="module")
def world():
    return generate_world(8, 80)


def _fx(path):
    lines = ["date,currency,rate"]
    d, last = date(2023, 12, 1), date(2024, 9, 1) + timedelta(days=HISTORY_DAYS + 60)
    i = 0
    while d <= last:
        # rates that move by the day, so a conversion at the wrong date would show
        lines += [f"{d.isoformat()},{c},{Decimal(r) * (1 + Decimal(i % 7) / 100)}" for c, r in RATES.items()]
        d += timedelta(days=1)
        i += 1
    path.write_text("\n".join(lines) + "\n")
    return path


def _findings(path):
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = [r for r in csv.reader(fh) if len(r) > 1]
    head = rows[0]
    return [dict(zip(head, r)) for r in rows[1:]]


def test_generated_account_through_every_jurisdiction(db_url, start_simulator, world, tmp_path, capsys):
    handle = start_simulator(world=world)
    config = write_config(tmp_path / "cfg", handle.accounts, handle.base_url)
    code, _o, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet")
    assert code == 0, err
    opening = tmp_path / "opening.csv"
    opening.write_text("account,asset,quantity,acquired,basis\nmain,SOL,200,2024-01-01T00:00:00Z,20000\nmain,BTC,2,2024-01-01T00:00:00Z,80000\n"
                       "main,ETH,20,2024-01-01T00:00:00Z,50000\n")
    with open(config, "a") as fh:
        fh.write(f'\n[reporting]\ncurrency = "USD"\njurisdiction = "us"\nmethod = "fifo"\nfx_file = "{_fx(tmp_path / "fx.csv")}"\nopening_lots = "{opening}"\n')
    code, _o, err = cli(capsys, "prices", "--config", config, "--db", db_url)
    assert code == 0, err

    found: dict[str, list[tuple[str, str]]] = {}
    for j in JURISDICTIONS:
        out = tmp_path / f"tax-{j}"
        code, stdout, err = cli(capsys, "export", "tax", "--year", "2025", "--jurisdiction", j, "--out", str(out), "--config", config, "--db", db_url,
                                "--allow-incomplete")
        assert code == 0, (j, err)
        rows = _findings(out / "findings.csv")
        found[j] = sorted((r["kind"], r["asset"], r["key"]) for r in rows)
        assert {(k, a) for k, a, _ in found[j]} == PLANTED, (j, found[j][:5])
        assert (out / "README.txt").exists()
    # The same ledger facts whatever the jurisdiction (the UK and AU years end later and may see more, never other kinds).
    assert found["ca"] == found["jp"] == found["us"] == found["de"]

    out = tmp_path / "rep"
    code, stdout, err = cli(capsys, "report", "--year", "2025", "--out", str(out), "--format", "html", "--config", config, "--db", db_url,
                            "--jurisdictions", ",".join(JURISDICTIONS), "--no-compare", "--allow-incomplete")
    assert code == 0, err
    for j, cur in (("us", "USD"), ("uk", "GBP"), ("de", "EUR"), ("ca", "CAD"), ("au", "AUD"), ("jp", "JPY")):
        assert f"\n{j}: " in stdout and f", {cur}, method " in stdout.split(f"\n{j}: ", 1)[1].split("\n", 1)[0]
    # every column carries the planted findings' warning (the figures rest on them), none is silent
    assert stdout.split("\n\n", 1)[0].count("INCOMPLETE") == len(JURISDICTIONS)
    html = (out / "statement-2025.html").read_text()
    assert "Jurisdictions side by side" in html
    # The side-by-side figure is the export's figure: one booking path, one currency conversion.
    for j, path, label, col in (("ca", "ca-schedule-3-totals.csv", "Net capital gain (loss)", "CAD (exact)"),
                                ("jp", "jp-summary.csv", "Crypto gains (雑所得: 暗号資産の売却)", "JPY (exact)"),
                                ("au", "au-cgt-schedule.csv", "Net capital gain", "AUD (exact)")):
        rows = {r[next(iter(r))]: r for r in _findings(tmp_path / f"tax-{j}" / path)}
        exact = Decimal(rows[label][col])
        shown = stdout.split(f"\n{j}: ", 1)[1].split(f"\n  {label}: ", 1)[1].split("\n", 1)[0]
        assert Decimal(shown.replace(",", "")) == exact.quantize(Decimal("0.01")), (j, shown, exact)
    assert "converted from the ledger's USD values" in (tmp_path / "tax-jp" / "README.txt").read_text()
