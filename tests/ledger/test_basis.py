"""The ledger-to-engine bridge (ledger/reader.py, ledger/bridge.py) on SQLite and PostgreSQL.

Ledgers are written with the posting builders; the unit prices valuation would attach are set on
the holding postings (Assets/Liabilities), as ``ledger.valuation`` does.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from ledger.bridge import EXTERNAL_WALLET, ledger_events
from ledger.booking import Acquisition, Disposal, Settings, Transfer, book
from ledger.journal import Entry, Journal
from ledger.money import D
from ledger.posting import Source, cash, deposit, lent, trade, withdrawal


def at(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=timezone.utc)


def src(key: str, when: str, acct: str = "main", endpoint: str = "history/fills") -> Source:
    return Source(acct, endpoint, key, at(when))


def priced(entry: Entry, **prices: str) -> Entry:
    """The entry with USD unit prices on its holding postings (valuation's job)."""
    legs = tuple(
        leg._replace(unit_price=D(prices[leg.asset]), price_currency="USD")
        if leg.account.startswith(("Assets:", "Liabilities:")) and leg.asset in prices
        else leg
        for leg in entry.legs
    )
    return entry._replace(legs=legs)


def post(engine, *entries: Entry) -> None:
    with engine.begin() as conn:
        Journal(conn).post(list(entries))


def events_of(engine, **kw):
    with engine.connect() as conn:
        return ledger_events(conn, **kw)


def buy(key, when, qty, usdc, *, fee="0", fee_asset=None, price=None, acct="main", base="BTC"):
    e = trade(src(key, when, acct), kind="spot-trade", base=base, quote="USDC", side="buy", quantity=D(qty), quote_quantity=D(usdc), fee=D(fee), fee_asset=fee_asset)
    return priced(e, **{base: price or str(D(usdc) / D(qty)), "USDC": "1"})


def sell(key, when, qty, usdc, *, fee="0", fee_asset=None, price=None, acct="main", base="BTC"):
    e = trade(src(key, when, acct), kind="spot-trade", base=base, quote="USDC", side="sell", quantity=D(qty), quote_quantity=D(usdc), fee=D(fee), fee_asset=fee_asset)
    return priced(e, **{base: price or str(D(usdc) / D(qty)), "USDC": "1"})


def only(events, kind):
    return [e for e in events if isinstance(e, kind)]


def test_basis__buy_fee_in_base_reduces_quantity(engine):
    post(engine, buy("f1", "2024-01-10T00:00:00", "2", "200", fee="0.01", fee_asset="BTC"))
    events, findings = events_of(engine)
    assert findings == []
    (a,) = events
    assert isinstance(a, Acquisition)
    assert (a.id, a.asset, a.quantity, a.cost, a.kind, a.account) == ("main:f1#in", "BTC", D("1.99"), D("200"), "trade", "main")


def test_basis__buy_fee_in_quote_adds_to_basis(engine):
    post(engine, buy("f1", "2024-01-10T00:00:00", "2", "200", fee="10", fee_asset="USDC"))
    (a,), findings = events_of(engine)
    assert findings == []
    assert (a.quantity, a.cost) == (D("2"), D("210"))


def test_basis__buy_fee_in_third_asset_is_a_disposal_of_it(engine):
    e = trade(src("f1", "2024-01-10T00:00:00"), kind="spot-trade", base="BTC", quote="USDC", side="buy", quantity=D("2"), quote_quantity=D("200"), fee=D("0.5"), fee_asset="SOL")
    post(engine, priced(e, BTC="100", USDC="1", SOL="20"))
    events, findings = events_of(engine)
    assert findings == []
    (fee,) = only(events, Disposal)
    (a,) = only(events, Acquisition)
    assert (fee.id, fee.asset, fee.quantity, fee.proceeds, fee.kind) == ("main:f1#fee:SOL", "SOL", D("0.5"), D("10.0"), "fee")
    assert (a.asset, a.quantity, a.cost) == ("BTC", D("2"), D("210.0"))


def test_basis__sale_fee_in_base_is_disposed_with_it(engine):
    post(engine, sell("f2", "2024-06-01T00:00:00", "1", "200", fee="0.01", fee_asset="BTC"))
    (d,), findings = events_of(engine)
    assert findings == []
    assert isinstance(d, Disposal)
    assert (d.id, d.quantity, d.proceeds, d.kind) == ("main:f2#out", D("1.01"), D("200"), "trade")


def test_basis__sale_fee_in_quote_reduces_proceeds(engine):
    post(engine, sell("f2", "2024-06-01T00:00:00", "1", "200", fee="2", fee_asset="USDC"))
    (d,), _ = events_of(engine)
    assert (d.quantity, d.proceeds) == (D("1"), D("198"))


def test_basis__us4_total_end_to_end(engine):
    """TAX-RULES US-4: buy 2 @ 100 with a $10 fee, sell 1 @ 200 paying 0.01 BTC: +93.95."""
    post(
        engine,
        buy("b", "2024-01-10T00:00:00", "2", "200", fee="10", fee_asset="USDC"),
        sell("s", "2024-06-01T00:00:00", "1", "200", fee="0.01", fee_asset="BTC"),
    )
    events, findings = events_of(engine)
    result = book(events, Settings(jurisdiction="us"))
    assert findings == [] and list(result.findings) == []
    assert sum((g.gain for g in result.gains), Decimal(0)) == D("93.95")
    (g,) = result.gains  # presentation: one disposal of 1.01 BTC, proceeds 200, basis 106.05 (RP2's)
    assert (g.quantity, g.proceeds, g.cost_basis) == (D("1.01"), D("200"), D("106.05"))
    (lot,) = result.open_lots
    assert (lot.quantity, lot.cost) == (D("0.99"), D("103.95"))


def test_basis__dust_is_a_disposal(engine):
    post(
        engine,
        buy("b", "2024-01-01T00:00:00", "1234.5", "0.05", base="BONK"),
        priced(trade(src("d1", "2024-02-01T00:00:00", endpoint="history/dust"), kind="dust", base="BONK", quote="USDC", side="sell", quantity=D("1234.5"), quote_quantity=D("0.02")),
               BONK="0.0000162", USDC="1"),
    )
    events, findings = events_of(engine)
    (d,) = only(events, Disposal)
    assert (d.asset, d.quantity, d.proceeds, d.kind) == ("BONK", D("1234.5"), D("0.02"), "dust")
    result = book(events, Settings())
    assert [g.gain for g in result.gains] == [D("-0.03")]


def test_basis__interest_income_is_income_and_a_lot(engine):
    e = cash(src("i1", "2024-03-01T00:00:00", endpoint="history/interest"), kind="interest-income", asset="SOL", quantity=D("0.5"), counter="Income:Interest", wallet=lent("main", "SOL"))
    post(engine, priced(e, SOL="150"))
    events, findings = events_of(engine)
    assert findings == []
    (a,) = events
    assert (a.kind, a.quantity, a.cost) == ("income", D("0.5"), D("75.0"))
    result = book(events, Settings())
    (inc,) = result.income
    (lot,) = result.open_lots
    assert (inc.value, inc.asset, inc.time) == (D("75.0"), "SOL", at("2024-03-01T00:00:00"))
    assert (lot.quantity, lot.cost, lot.acquired) == (D("0.5"), D("75.0"), at("2024-03-01T00:00:00"))


def test_basis__withdrawal_then_deposit_back_keeps_basis_and_date(engine):
    post(
        engine,
        buy("b", "2023-01-01T00:00:00", "1", "100"),
        priced(withdrawal(src("w", "2024-01-01T00:00:00", endpoint="capital/withdrawals"), asset="BTC", quantity=D("0.999"), fee=D("0.001"), internal=False), BTC="200"),
        priced(deposit(src("d", "2024-02-01T00:00:00", endpoint="capital/deposits"), asset="BTC", quantity=D("0.999"), internal=False), BTC="250"),
        sell("s", "2024-03-01T00:00:00", "0.999", "299.7"),
    )
    events, findings = events_of(engine)
    assert findings == []
    out, back = only(events, Transfer)
    assert (out.to_account, out.quantity, out.fee, out.fee_value) == (EXTERNAL_WALLET, D("0.999"), D("0.001"), D("0.200"))
    assert (back.from_account, back.to_account, back.quantity) == (EXTERNAL_WALLET, "main", D("0.999"))
    result = book(events, Settings(scope="account"))
    assert list(result.findings) == []
    sale = [g for g in result.gains if g.disposal_id == "main:s#out"]
    assert [(g.acquired, g.cost_basis, g.term) for g in sale] == [(at("2023-01-01T00:00:00"), D("99.9"), "long")]


def test_basis__deposit_without_known_basis_is_a_finding(engine):
    post(engine, priced(deposit(src("d", "2024-02-01T00:00:00", endpoint="capital/deposits"), asset="ETH", quantity=D("3"), internal=False), ETH="2000"))
    events, findings = events_of(engine)
    (a,) = events
    assert (a.kind, a.cost, a.quantity) == ("deposit", None, D("3"))
    result = book(events, Settings())
    assert [(f.kind, f.key, f.asset) for f in result.findings] == [("missing-basis", "main:d#in", "ETH")]


def test_basis__subaccount_transfer_pairs_and_keeps_acquisition_date(engine):
    post(
        engine,
        buy("b", "2023-01-01T00:00:00", "1", "100"),
        withdrawal(src("w", "2024-01-01T10:00:00", endpoint="capital/withdrawals"), asset="BTC", quantity=D("1"), fee=D("0"), internal=True),
        deposit(src("d", "2024-01-01T10:05:00", acct="sub", endpoint="capital/deposits"), asset="BTC", quantity=D("1"), internal=True),
        sell("s", "2024-03-01T00:00:00", "1", "300", acct="sub"),
    )
    events, findings = events_of(engine)
    assert findings == []
    (x,) = only(events, Transfer)
    assert (x.from_account, x.to_account, x.quantity, x.source) == ("main", "sub", D("1"), "main:w")
    result = book(events, Settings(scope="account"))
    assert list(result.findings) == []
    (g,) = result.gains
    assert (g.account, g.acquired, g.cost_basis, g.gain, g.term) == ("sub", at("2023-01-01T00:00:00"), D("100"), D("200"), "long")


def test_basis__unpriced_posting_is_a_finding_never_a_silent_zero(engine):
    e = trade(src("f1", "2024-01-10T00:00:00"), kind="spot-trade", base="XYZ", quote="ABC", side="buy", quantity=D("5"), quote_quantity=D("7"))
    post(engine, e)  # no prices at all: neither side can be valued
    events, findings = events_of(engine)
    assert {(f.kind, f.key, f.asset) for f in findings} == {("unpriced", "main:f1", "ABC"), ("unpriced", "main:f1", "XYZ")}
    assert all("no USD price" in f.message for f in findings)


def test_basis__venue_account_filter_and_perp_fills_ignored(engine):
    from ledger.posting import perp_fill

    post(
        engine,
        buy("b", "2024-01-01T00:00:00", "1", "100"),
        buy("c", "2024-01-02T00:00:00", "1", "100", acct="sub"),
        perp_fill(src("p", "2024-01-03T00:00:00"), symbol="SOL_USDC_PERP", side="buy", quantity=D("3"), price=D("100")),
    )
    events, _ = events_of(engine, venue_account="sub")
    assert [e.id for e in events] == ["sub:c#in"]
    events, _ = events_of(engine)
    assert [e.id for e in events] == ["main:b#in", "sub:c#in"]


@pytest.mark.parametrize("receiver", ["alpha", "sub", "zulu"])
@pytest.mark.parametrize("deposit_offset", [-3, 0, 5, -3600])
def test_basis__transfer_pairs_whichever_leg_comes_first_and_whatever_the_names(engine, receiver, deposit_offset):
    """A sub-account transfer pairs within the window whichever record is stamped first (the
    deposit seconds before the withdrawal, at the same instant, or after) and whatever the
    accounts are called (at one instant the legs sort by key, so by account name): the receiver
    keeps the sender's basis and date, and no missing-basis finding is made."""
    from datetime import timedelta

    out_at = at("2024-01-01T10:00:00")
    in_at = (out_at + timedelta(seconds=deposit_offset)).isoformat().replace("+00:00", "")
    post(
        engine,
        buy("b", "2023-01-01T00:00:00", "1", "100"),
        withdrawal(src("w", "2024-01-01T10:00:00", endpoint="capital/withdrawals"), asset="BTC", quantity=D("1"), fee=D("0"), internal=True),
        deposit(src("d", in_at, acct=receiver, endpoint="capital/deposits"), asset="BTC", quantity=D("1"), internal=True),
        sell("s", "2024-03-01T00:00:00", "1", "300", acct=receiver),
    )
    events, findings = events_of(engine)
    assert findings == []
    (x,) = only(events, Transfer)
    assert (x.from_account, x.to_account, x.source, x.time) == ("main", receiver, "main:w", max(out_at, at(in_at)))
    result = book(events, Settings(scope="account"))
    assert not result.findings
    (g,) = result.gains
    assert (g.account, g.acquired, g.cost_basis) == (receiver, at("2023-01-01T00:00:00"), D("100"))


def test_basis__transfer_legs_outside_the_window_do_not_pair(engine):
    """A deposit two days before the withdrawal is not its other side: the deposit has unknown basis,
    and the withdrawal's lots leave for the outside wallet."""
    post(
        engine,
        buy("b", "2023-01-01T00:00:00", "1", "100"),
        deposit(src("d", "2023-12-30T10:00:00", acct="sub", endpoint="capital/deposits"), asset="BTC", quantity=D("1"), internal=True),
        withdrawal(src("w", "2024-01-01T10:00:00", endpoint="capital/withdrawals"), asset="BTC", quantity=D("1"), fee=D("0"), internal=True),
    )
    events, _ = events_of(engine)
    (x,) = only(events, Transfer)
    assert (x.from_account, x.to_account) == ("main", EXTERNAL_WALLET)
    assert [e.id for e in only(events, Acquisition) if e.cost is None] == ["sub:d#in"]


def test_bridge__events_do_not_depend_on_the_read_chunks(engine):
    """However the reader cuts the ledger into chunks, the bridge gives the same events and findings,
    in batches that are each sorted and after the one before (an unpaired transfer-out reaches the
    outside wallet before a later deposit of the same asset, whichever chunk that deposit is in)."""
    from ledger.bridge import events
    from ledger.reader import read_entries

    post(
        engine,
        buy("b", "2023-01-01T00:00:00", "2", "100"),
        withdrawal(src("w1", "2023-02-01T00:00:00", endpoint="capital/withdrawals"), asset="BTC", quantity=D("0.5"), fee=D("0"), internal=True),
        buy("c", "2023-02-01T00:00:00", "1", "300", acct="sub"),
        buy("e", "2023-02-03T00:00:00", "1", "300", acct="sub"),
        deposit(src("d1", "2023-02-05T00:00:00", endpoint="capital/deposits"), asset="BTC", quantity=D("0.5"), internal=False),
        withdrawal(src("w2", "2023-03-01T00:00:00", endpoint="capital/withdrawals"), asset="BTC", quantity=D("0.25"), fee=D("0.01"), internal=False),
        deposit(src("d2", "2023-03-01T00:00:03", acct="alpha", endpoint="capital/deposits"), asset="BTC", quantity=D("0.25"), internal=True),
        deposit(src("d3", "2023-03-10T00:00:00", endpoint="capital/deposits"), asset="BTC", quantity=D("0.25"), internal=False),
        sell("s", "2023-04-01T00:00:00", "1", "500"),
    )
    results = []
    with engine.connect() as conn:
        for size in (1, 2, 3, 10_000):
            findings: list = []
            batches = list(events(read_entries(conn, chunk=size), frozenset({"USD", "USDC", "USDT"}), findings))
            flat = [e for b in batches for e in b]
            assert flat == sorted(flat)
            results.append((flat, sorted(findings)))
    assert all(r == results[0] for r in results)
    assert [e.id for e in results[0][0] if e.id.startswith("main:d1")] == ["main:d1#back"]  # w1's lots come back
