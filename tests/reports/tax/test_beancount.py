"""The beancount export passes bean-check, and beancount's own per-account FIFO booking of the exported lots
gives the engine's per-account FIFO gains (per disposal and lot, and per account and year)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from ledger.books import book_ledger, resolve_settings
from ledger.money import D
from ledger.posting import Source, deposit, withdrawal
from ledger.store import SnapshotLineIn, save_snapshot
from tests.reports.tax.sample import at, priced, run_cli, sample_entries, spot
from tests.reports.tax.scenario import generated
from tests.reports.tax.test_totals import Reporting

pytest.importorskip("beancount")
BEAN_CHECK = shutil.which("bean-check") or str(Path(sys.executable).with_name("bean-check"))


def _balances(entries):
    out: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for e in entries:
        for l in e.legs:
            p = l.account.split(":")
            if p[0] in ("Assets", "Liabilities") and p[1] == "Backpack":
                out[(p[2], p[3], p[4])] += l.quantity
    return out


def _snapshot(engine, entries, when):
    by_acct: dict[str, list] = defaultdict(list)
    for (acct, wallet, asset), q in sorted(_balances(entries).items()):
        by_acct[acct].append(SnapshotLineIn(wallet, asset, q))
    with engine.begin() as conn:
        for acct, lines in by_acct.items():
            save_snapshot(conn, venue_account=acct, taken_at=when, payload={}, lines=lines)


def _export(ledger, tmp_path, *extra):
    out = tmp_path / "ledger.beancount"
    assert run_cli("export", "beancount", "--out", out, "--db", ledger.url, *extra) == 0
    check = subprocess.run([BEAN_CHECK, str(out)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    return out


def _booked(path):
    from beancount import loader

    entries, errors, _ = loader.load_file(str(path))
    assert not errors
    return entries


def test_beancount__sample_passes_bean_check_and_keeps_the_record_key(ledger, tmp_path):
    entries = sample_entries()
    ledger.post(entries, snapshot=False)  # its own snapshot below
    _snapshot(ledger.engine, entries, at("2025-03-05T00:00:00"))
    out = _export(ledger, tmp_path)
    text = out.read_text()
    assert 'Assets:Backpack:Main:Holdings:SOL  1.5 SOL {{150 USD, 2025-01-10, "main:9001#in"}}' in text
    assert "Assets:Backpack:Main:Holdings:SOL  -1.5 SOL {} @ 140 USD" in text
    assert "balance Assets:Backpack:Main:Spot:USDC" in text and "Assets:Backpack:Main:Perp:SOL-USDC-PERP" in text
    from beancount.core import data

    txns = [e for e in _booked(out) if isinstance(e, data.Transaction)]
    assert sorted(t.meta["source"] for t in txns) == sorted(e.key for e in entries)
    bal = [e for e in _booked(out) if isinstance(e, data.Balance)]
    assert len(bal) == len(_balances(entries))


def test_beancount__own_fifo_booking_gives_the_engine_gains(ledger, tmp_path):
    entries = generated(seed=11, n=160)
    ledger.post(entries, snapshot=False)  # its own snapshot below
    _snapshot(ledger.engine, entries, entries[-1].time + timedelta(days=2))
    out = _export(ledger, tmp_path, "--method", "fifo")
    from beancount.core import data

    # beancount's booking: each reduction with the lot it chose, and the gain leg per account and year.
    booked: dict[str, list] = defaultdict(list)
    gains_bc: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
    for t in _booked(out):
        if not isinstance(t, data.Transaction):
            continue
        for p in t.postings:
            if p.units.number < 0 and p.cost is not None:
                booked[t.meta["source"]].append((p.units.currency, p.cost.label, -p.units.number, p.cost.number * -p.units.number))
            if p.account.endswith(":Gains"):
                gains_bc[(p.account.split(":")[2].lower(), t.date.year)] -= p.units.number
    settings = resolve_settings(Reporting(jurisdiction="generic"), method="fifo", scope="account")
    with ledger.engine.connect() as conn:
        books = book_ledger(conn, settings)
    ours: dict[str, list] = defaultdict(list)
    gains_ours: dict[tuple[str, int], Decimal] = defaultdict(Decimal)
    for g in books.gains:
        ours[g.source_ref].append((g.asset, g.lot_id, g.quantity, g.cost_basis))
        gains_ours[(g.account, g.disposed.year)] += g.gain
    assert len(books.gains) > 30 and set(booked) == set(ours)
    for key in ours:
        a = sorted(ours[key])
        b = sorted(booked[key])
        assert [x[:3] for x in a] == [x[:3] for x in b], key
        for x, y in zip(a, b):
            assert abs(x[3] - y[3]) < Decimal("1e-12"), key  # beancount keeps a per-unit cost (28 digits)
    assert set(gains_ours) == {k for k, v in gains_bc.items()}
    for k in gains_ours:
        assert abs(gains_ours[k] - gains_bc[k]) < Decimal("1e-9"), k


def test_beancount__names_are_mapped_without_collisions(ledger, tmp_path):
    t = "2025-01-10T10:00:00"
    entries = [spot("a", t, "buy", "wif", "10", "10"), spot("b", t, "buy", "1INCH", "5", "5"), spot("c", t, "buy", "kPEPE", "1", "1"),
               spot("d", t, "buy", "KPEPE", "2", "2"), spot("e", t, "buy", "USDC.E", "3", "3", quote="USDT", prices={"USDC.E": "1", "USDT": "1"}),
               spot("f", "2025-02-01T10:00:00", "sell", "kPEPE", "1", "3"),
               priced(deposit(Source("my_sub", "capital/deposits", "d1", at(t)), asset="USDC", quantity=D("100"), internal=False), USDC="1"),
               priced(withdrawal(Source("my_sub", "capital/withdrawals", "w1", at("2025-03-01T00:00:00")), asset="USDC", quantity=D("10"), fee=D("1"), internal=False), USDC="1")]
    ledger.post(entries)
    out = _export(ledger, tmp_path)
    from beancount.core import data

    loaded = _booked(out)
    commodities = {e.meta["exchange-symbol"]: e.currency for e in loaded if isinstance(e, data.Commodity)}
    assert commodities["wif"] == "WIF" and commodities["1INCH"] == "X1INCH" and commodities["USDC.E"] == "USDC.E"
    assert {commodities["kPEPE"], commodities["KPEPE"]} == {"KPEPE", "KPEPE-2"}
    opens = {e.account: e.meta["ledger-account"] for e in loaded if isinstance(e, data.Open)}
    assert opens["Assets:Backpack:My-sub:Spot:USDC"] == "Assets:Backpack:my_sub:Spot:USDC"
    assert len(set(commodities.values())) == len(commodities)  # reversible: one symbol per commodity


def test_beancount__average_method_is_refused(ledger, tmp_path, capsys):
    ledger.post(sample_entries())
    assert run_cli("export", "beancount", "--method", "average", "--out", tmp_path / "x.beancount", "--db", ledger.url) == 2
    assert "AVERAGE" in capsys.readouterr().err and not (tmp_path / "x.beancount").exists()


def test_hledger__legs_balance_per_commodity_and_carry_the_key(ledger, tmp_path):
    entries = sample_entries()
    ledger.post(entries, snapshot=False)  # its own snapshot below
    _snapshot(ledger.engine, entries, at("2025-03-05T00:00:00"))
    out = tmp_path / "l.journal"
    assert run_cli("export", "hledger", "--out", out, "--db", ledger.url) == 0
    txns = out.read_text().split("\n\n")
    seen = set()
    for block in txns:
        lines = [l for l in block.splitlines() if l and not l.startswith(("commodity", "account", ";"))]
        if not lines or "kind:balance-assertion" in lines[0]:
            continue
        head, *posts = lines
        seen.add(head.split("source:")[1].split(",")[0])
        sums: dict[str, Decimal] = defaultdict(Decimal)
        for p in posts:
            acct, amt = p.strip().split("  ", 1)
            q, c = amt.split(" ", 1)
            sums[c] += Decimal(q)
        assert all(v == 0 for v in sums.values()), head
    assert seen == {e.key for e in entries}
    assert out.read_text().count("kind:balance-assertion") == len(_balances(entries))
    if shutil.which("hledger"):  # Debian's hledger 1.25: strict check (declared accounts and commodities) and the assertions
        check = subprocess.run(["hledger", "-f", str(out), "check", "-s"], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr


def test_beancount__from_a_date_opens_with_the_lots_held_then(ledger, tmp_path):
    entries = generated(seed=3, n=120)
    ledger.post(entries, snapshot=False)  # its own snapshot below
    _snapshot(ledger.engine, entries, entries[-1].time + timedelta(days=2))
    out = _export(ledger, tmp_path, "--from", "2025-01-01")
    from beancount.core import data

    loaded = _booked(out)
    (opening,) = [t for t in loaded if isinstance(t, data.Transaction) and t.meta["source"].startswith("opening:")]
    assert any(p.cost is not None for p in opening.postings)
    gains_bc: dict[str, Decimal] = defaultdict(Decimal)
    for t in loaded:
        if isinstance(t, data.Transaction):
            assert t.date.year >= 2025 or t is opening
            for p in t.postings:
                if p.account.endswith(":Gains"):
                    gains_bc[p.account.split(":")[2].lower()] -= p.units.number
    settings = resolve_settings(Reporting(jurisdiction="generic"), method="fifo", scope="account")
    with ledger.engine.connect() as conn:
        books = book_ledger(conn, settings)
    ours: dict[str, Decimal] = defaultdict(Decimal)
    for g in books.gains_in(2025):
        ours[g.account] += g.gain
    assert ours and all(abs(ours[a] - gains_bc[a]) < Decimal("1e-9") for a in ours)
