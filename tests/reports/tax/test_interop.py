"""Koinly, CoinTracker and Awaken files parsed back by their documented columns: every ledger event is there,
with its amounts, currencies, fee, label and date (a round trip); SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from ledger.money import D
from ledger.posting import Source, cash, deposit, lent, move, withdrawal
from reports.tax.interop import AWAKEN_COLUMNS, AWAKEN_PERP_COLUMNS, COINTRACKER_COLUMNS, KOINLY_COLUMNS
from tests.reports.tax.sample import at, priced, read_csv, run_cli, sample_entries
from tests.reports.tax.scenario import generated

Q8 = Decimal("0.00000001")


def _extra():
    t = at("2025-04-01T10:00:00")
    return [
        priced(deposit(Source("main", "capital/deposits", "d1", t), asset="USDC", quantity=D("500"), internal=False), USDC="1"),
        priced(withdrawal(Source("main", "capital/withdrawals", "w1", t + timedelta(hours=1)), asset="USDC", quantity=D("10"), fee=D("3"), internal=False), USDC="1"),
        priced(cash(Source("main", "history/interest", "bi1", t + timedelta(hours=2)), kind="interest-expense", asset="USDC", quantity=D("-0.5"),
                    counter="Expenses:Interest"), USDC="1"),
        priced(cash(Source("main", "history/settlement", "fee1", t + timedelta(hours=3)), kind="perp-fee", asset="USDC", quantity=D("-0.75"),
                    counter="Expenses:Fees:Trading"), USDC="1"),
        move(Source("main", "history/borrowLend", "lend1", t + timedelta(hours=4)), kind="lend", asset="USDC", quantity=D("100"),
             from_account="Assets:Backpack:main:Spot:USDC", to_account=lent("main", "USDC")),
    ]


#: The sample's exchange-recorded SOL_USDC_PERP round trip: the closing fill's P&L, by hand: 10 x (151.23 - 150).
SAMPLE_CLOSE_PNL = Decimal("12.30")


def expected(entries):
    """What each entry must become, read from the entries as posted (not from the database). Perpetual P&L
    comes from the position lots: an exchange-recorded closing fill carries it (the sample's one close, by
    hand), and the exchange-recorded RealizePnl settlement of the same P&L is not written again."""
    out = {}
    for e in sorted(entries, key=lambda e: (e.time, e.key)):
        if e.kind in ("lend", "redeem", "borrow", "repay"):
            continue
        if e.kind == "realized-pnl" and e.raw_record_id is not None:
            continue
        fee = {}
        for l in e.legs:
            if l.account.startswith("Expenses:Fees:"):
                fee[l.asset] = fee.get(l.asset, Decimal(0)) + l.quantity
        fee = {a: q for a, q in fee.items() if q}
        sent = received = None
        if e.kind == "perp-fill":
            (pos,) = [l for l in e.legs if ":Perp:" in l.account]
            out[e.key] = dict(time=e.time, kind=e.kind, perp=(pos.asset, pos.quantity))
            if e.raw_record_id is not None and pos.quantity < 0:  # the sample's close
                out[e.key].update(pnl=SAMPLE_CLOSE_PNL, received=(SAMPLE_CLOSE_PNL, "USDC"), sent=None, fee=None)
            continue
        if e.kind in ("spot-trade", "rfq-fill", "quote-fill", "dust"):
            tr = {}
            for l in e.legs:
                if l.account == "Equity:Trading":
                    tr[l.asset] = tr.get(l.asset, Decimal(0)) + l.quantity
            received = next(((-q, a) for a, q in tr.items() if q < 0), None)
            sent = next(((q, a) for a, q in tr.items() if q > 0), None)
        else:
            c = [l for l in e.legs if not l.account.startswith(("Assets:", "Liabilities:", "Expenses:Fees:"))]
            if not c:  # a fee alone is the event itself
                c, fee = [l for l in e.legs if l.account.startswith("Expenses:Fees:")], {}
            q = -sum((l.quantity for l in c), Decimal(0))
            if q > 0:
                received = (q, c[0].asset)
            else:
                sent = (-q, c[0].asset)
        out[e.key] = dict(time=e.time, kind=e.kind, sent=sent, received=received, fee=next(iter(fee.items()))[::-1] if fee else None)
    return out


def _pair(row, qcol, ccol, q8=False):
    if not row[qcol]:
        assert not row[ccol]
        return None
    return (Decimal(row[qcol]), row[ccol])


def _r8(x):
    return None if x is None else (x[0].quantize(Q8, rounding=ROUND_HALF_UP), x[1])


def _entries():
    return generated(n=80) + sample_entries() + _extra()


def test_interop__koinly_round_trip(ledger, tmp_path):
    entries = _entries()
    ledger.post(entries)
    out = tmp_path / "koinly.csv"
    assert run_cli("export", "koinly", "--out", out, "--db", ledger.url) == 0
    assert out.read_text().splitlines()[0] == ",".join(KOINLY_COLUMNS)
    rows = read_csv(out, skip_preamble=False)
    exp = {k: v for k, v in expected(entries).items() if v["kind"] != "perp-fill" or v.get("pnl")}
    assert [r["TxHash"] for r in rows] == list(exp)
    labels = {"interest-income": "lending interest", "realized-pnl": "realized gain", "funding": "realized gain", "interest-expense": "margin fee", "perp-fee": "cost",
              "perp-fill": "realized gain"}
    for r in rows:
        x = exp[r["TxHash"]]
        assert datetime.strptime(r["Date"], "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=timezone.utc) == x["time"].replace(microsecond=0)
        assert _pair(r, "Sent Amount", "Sent Currency") == x["sent"]
        assert _pair(r, "Received Amount", "Received Currency") == x["received"]
        assert _pair(r, "Fee Amount", "Fee Currency") == x["fee"]
        assert r["Label"] == labels.get(x["kind"], "")
        for c in ("Sent Amount", "Received Amount", "Fee Amount", "Net Worth Amount"):
            assert not r[c] or Decimal(r[c]) > 0  # direction is the column, never the sign


def test_interop__cointracker_round_trip(ledger, tmp_path):
    entries = _entries()
    ledger.post(entries)
    out = tmp_path / "ct.csv"
    assert run_cli("export", "cointracker", "--out", out, "--db", ledger.url) == 0
    rows = read_csv(out, skip_preamble=False)
    assert list(rows[0]) == list(COINTRACKER_COLUMNS)
    exp = [v for v in expected(entries).values() if v["kind"] != "perp-fill" or v.get("pnl")]
    assert len(rows) == len(exp)
    for r, x in zip(rows, exp):
        assert datetime.strptime(r["Date"], "%m/%d/%Y %H:%M:%S").replace(tzinfo=timezone.utc) == x["time"].replace(microsecond=0)
        assert (_pair(r, "Sent Quantity", "Sent Currency"), _pair(r, "Received Quantity", "Received Currency"), _pair(r, "Fee Amount", "Fee Currency")) == (
            x["sent"], x["received"], x["fee"])
        if x["kind"] in ("realized-pnl", "perp-fill"):
            assert r["Tag"] == ("margin gain" if x["received"] else "margin loss")
        if x["kind"] in ("perp-fee", "interest-expense"):
            assert r["Tag"] == "margin fee"


def test_interop__awaken_round_trip(ledger, tmp_path):
    entries = _entries()
    ledger.post(entries)
    out = tmp_path / "awaken.csv"
    assert run_cli("export", "awaken", "--out", out, "--db", ledger.url) == 0
    std = read_csv(out, skip_preamble=False)
    perps = read_csv(tmp_path / "awaken-perps.csv", skip_preamble=False)
    assert list(std[0]) == list(AWAKEN_COLUMNS) and list(perps[0]) == list(AWAKEN_PERP_COLUMNS)
    exp = expected(entries)
    perp_kinds = ("perp-fill", "realized-pnl", "funding", "liquidation")
    assert [r["Transaction Hash"] for r in std] == [k for k, v in exp.items() if v["kind"] not in perp_kinds]
    for r in std:
        x = exp[r["Transaction Hash"]]
        assert datetime.strptime(r["Date"], "%m/%d/%Y %H:%M:%S").replace(tzinfo=timezone.utc) == x["time"].replace(microsecond=0)
        assert _pair(r, "Sent Quantity", "Sent Currency") == _r8(x["sent"])
        assert _pair(r, "Received Quantity", "Received Currency") == _r8(x["received"])
        assert _pair(r, "Fee Amount", "Fee Currency") == _r8(x["fee"])
        for c in ("Received Quantity", "Sent Quantity", "Fee Amount", "Received Fiat Amount", "Sent Fiat Amount"):
            assert not r[c] or (Decimal(r[c]) >= 0 and -Decimal(r[c]).as_tuple().exponent <= 8)
    by_hash: dict[str, list] = {}
    for r in perps:
        by_hash.setdefault(r["Transaction Hash"], []).append(r)
    assert list(by_hash) == [k for k, v in exp.items() if v["kind"] in perp_kinds]
    position: dict[str, Decimal] = {}
    for h, rs in by_hash.items():
        x = exp[h]
        if x["kind"] == "perp-fill":
            sym, change = x["perp"]
            assert {r["Asset"] for r in rs} == {sym.split("_")[0]} and sum(Decimal(r["Amount"]) for r in rs) == abs(change)
            before = position.get(sym, Decimal(0))
            position[sym] = before + change
            closing = min(abs(change), abs(before)) if before and (before > 0) != (change > 0) else Decimal(0)
            want = [("close_position", closing)] * bool(closing) + [("open_position", abs(change) - closing)] * bool(abs(change) - closing)
            assert [(r["Tag"], Decimal(r["Amount"])) for r in rs] == want
            assert [Decimal(r["P&L"]) for r in rs] == [x.get("pnl", Decimal(0)) if t == "close_position" else 0 for t, _q in want]
        else:
            (r,) = rs
            signed = x["received"][0] if x["received"] else -x["sent"][0]
            assert Decimal(r["P&L"]) == signed.quantize(Q8) and Decimal(r["Amount"]) == abs(signed).quantize(Q8) and r["Payment Token"] == "USDC"
            assert r["Tag"] == ("funding_payment" if x["kind"] == "funding" else "close_position")


def test_interop__period_bounds(ledger, tmp_path):
    entries = sample_entries()
    ledger.post(entries)
    out = tmp_path / "k.csv"
    assert run_cli("export", "koinly", "--from", "2025-01-01", "--to", "2025-02-02", "--out", out, "--db", ledger.url) == 0
    keys = [r["TxHash"] for r in read_csv(out, skip_preamble=False)]
    assert keys == [e.key for e in sorted(entries, key=lambda e: (e.time, e.key)) if datetime(2025, 1, 1, tzinfo=timezone.utc) <= e.time < datetime(2025, 2, 2, tzinfo=timezone.utc)
                    and e.kind != "perp-fill"]
    assert run_cli("export", "koinly", "--from", "2025-02-02", "--to", "2025-01-01", "--out", out, "--db", ledger.url) == 2
