"""Posting rules: one worked example per event type (docs/posting-rules.md), balanced per asset."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from importers.backpack.extract import extract, split_symbol
from ledger.journal import check_entry
from ledger.money import D
from ledger.posting import Source

T = datetime(2025, 3, 1, 12, tzinfo=timezone.utc)


def run(endpoint: str, record: dict):
    x = extract(endpoint, record, Source("main", endpoint, "k1", T, 1))
    for e in x.entries:
        check_entry(e)
    return x


def legs(x) -> dict[tuple[str, str], Decimal]:
    out: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for e in x.entries:
        for l in e.legs:
            out[(l.account, l.asset)] += l.quantity
    return {k: v for k, v in out.items() if v != 0}


FILL = {"clientId": None, "fee": "0.001", "feeSymbol": "SOL", "isMaker": False, "orderId": "1", "price": "150.5", "quantity": "2",
        "side": "Bid", "symbol": "SOL_USDC", "systemOrderType": None, "timestamp": "2025-03-01T12:00:00.123", "tradeId": 7}


def test_extract__spot_buy_fee_in_base():
    x = run("fills", FILL)
    assert x.status == "posted"
    assert legs(x) == {
        ("Assets:Backpack:main:Spot:SOL", "SOL"): D("1.999"),
        ("Equity:Trading", "SOL"): D("-2"),
        ("Expenses:Fees:Trading", "SOL"): D("0.001"),
        ("Assets:Backpack:main:Spot:USDC", "USDC"): D("-301.0"),
        ("Equity:Trading", "USDC"): D("301.0"),
    }
    assert x.entries[0].kind == "spot-trade" and x.entries[0].raw_record_id == 1


def test_extract__spot_sell_fee_in_quote_and_rebate():
    x = run("fills", {**FILL, "side": "Ask", "fee": "-0.05", "feeSymbol": "USDC"})
    assert legs(x)[("Assets:Backpack:main:Spot:SOL", "SOL")] == D("-2")
    assert legs(x)[("Assets:Backpack:main:Spot:USDC", "USDC")] == D("301.05")  # proceeds plus rebate
    assert legs(x)[("Expenses:Fees:Trading", "USDC")] == D("-0.05")


@pytest.mark.parametrize("side,signed", [("Bid", "3"), ("Ask", "-3")])
def test_extract__perp_fill_moves_position_only(side, signed):
    x = run("fills", {**FILL, "symbol": "SOL_USDC_PERP", "side": side, "quantity": "3", "fee": "0.2", "feeSymbol": "USDC"})
    assert legs(x) == {("Assets:Backpack:main:Perp:SOL_USDC_PERP", "SOL_USDC_PERP"): D(signed), ("Equity:Trading", "SOL_USDC_PERP"): -D(signed)}


def test_extract__liquidation_system_fill_is_posted_not_filtered():
    x = run("fills", {**FILL, "symbol": "SOL_USDC_PERP", "side": "Ask", "tradeId": 0, "systemOrderType": "LiquidatePositionOnBook"})
    assert x.status == "posted" and "LiquidatePositionOnBook" in x.entries[0].description


@pytest.mark.parametrize(
    "source,qty,counter",
    [("RealizePnl", "12.5", "Income:Perp:RealizedPnl"), ("RealizePnl", "-4", "Income:Perp:RealizedPnl"),
     ("FundingPayment", "0.31", "Income:Funding"), ("FundingPayment", "-0.2", "Income:Funding"),
     ("TradingFees", "-0.75", "Expenses:Fees:Trading")],
)
def test_extract__settlement_moves_usdc(source, qty, counter):
    x = run("settlement", {"userId": 1, "subaccountId": None, "timestamp": "2025-03-01T12:00:00", "positionId": "9",
                            "engineSequence": 5, "quantity": qty, "source": source})
    assert legs(x) == {("Assets:Backpack:main:Spot:USDC", "USDC"): D(qty), (counter, "USDC"): -D(qty)}


def test_extract__unknown_settlement_source_kept_and_reported():
    x = run("settlement", {"timestamp": "2025-03-01T12:00:00", "quantity": "1", "source": "BrandNewThing"})
    assert x.status == "unknown" and "BrandNewThing" in x.note and not x.entries


def test_extract__funding_rows_are_memo_settlement_is_authoritative():
    assert run("funding", {"symbol": "SOL_USDC_PERP", "quantity": "0.31"}).status == "memo"


@pytest.mark.parametrize(
    "event,spot_delta,other",
    [("Lend", "-100", ("Assets:Backpack:main:Lent:USDC", "100")),
     ("LendRedeem", "100", ("Assets:Backpack:main:Lent:USDC", "-100")),
     ("Borrow", "100", ("Liabilities:Backpack:main:Borrowed:USDC", "-100")),
     ("BorrowRepay", "-100", ("Liabilities:Backpack:main:Borrowed:USDC", "100"))],
)
def test_extract__borrow_lend_movements(event, spot_delta, other):
    x = run("borrowLend", {"eventType": event, "positionId": "p", "quantity": "100", "symbol": "USDC", "source": "Manual",
                           "timestamp": "2025-03-01T12:00:00"})
    assert legs(x) == {("Assets:Backpack:main:Spot:USDC", "USDC"): D(spot_delta), (other[0], "USDC"): D(other[1])}


def test_extract__borrow_lend_interest_rows_are_memo():
    x = run("borrowLend", {"eventType": "Lend", "positionId": "p", "quantity": "1", "symbol": "USDC", "source": "Interest", "timestamp": "2025-03-01T12:00:00"})
    assert x.status == "memo"


@pytest.mark.parametrize(
    "ptype,expected",
    [("Lend", {("Assets:Backpack:main:Lent:USDC", "USDC"): D("0.5"), ("Income:Interest", "USDC"): D("-0.5")}),
     ("Borrow", {("Liabilities:Backpack:main:Borrowed:USDC", "USDC"): D("-0.5"), ("Expenses:Interest", "USDC"): D("0.5")}),
     ("UnrealizedNegativePnl", {("Assets:Backpack:main:Spot:USDC", "USDC"): D("-0.5"), ("Expenses:Interest", "USDC"): D("0.5")})],
)
def test_extract__interest(ptype, expected):
    x = run("interest", {"paymentType": ptype, "interestRate": "0.01", "interval": 3600000, "marketSymbol": "USDC_USDC",
                         "positionId": "p", "quantity": "0.5", "symbol": "USDC", "timestamp": "2025-03-01T12:00:00"})
    assert legs(x) == expected


def test_extract__deposit_confirmed_pending_and_internal():
    dep = {"id": 1, "symbol": "SOL", "quantity": "10", "createdAt": "2025-03-01T12:00:00", "source": "solana", "status": "confirmed"}
    assert legs(run("deposits", dep)) == {("Assets:Backpack:main:Spot:SOL", "SOL"): D("10"), ("Equity:External", "SOL"): D("-10")}
    assert run("deposits", {**dep, "status": "pending"}).status == "pending"
    assert run("deposits", {**dep, "status": "declined"}).status == "memo"
    x = run("deposits", {**dep, "source": "internal"})
    assert x.entries[0].kind == "transfer-in" and legs(x)[("Equity:Transfers", "SOL")] == D("-10")


def test_extract__withdrawal_fee_on_top():
    w = {"id": 2, "blockchain": "Ethereum", "symbol": "USDC", "quantity": "10", "fee": "3", "status": "confirmed", "toAddress": "0x",
         "isInternal": False, "createdAt": "2025-03-01T12:00:00"}
    assert legs(run("withdrawals", w)) == {
        ("Assets:Backpack:main:Spot:USDC", "USDC"): D("-13"), ("Equity:External", "USDC"): D("10"), ("Expenses:Fees:Withdrawal", "USDC"): D("3")}
    assert run("withdrawals", {**w, "status": "someNewStatus"}).status == "pending"


def test_extract__dust_conversion():
    x = run("dust", {"id": 3, "symbol": "BONK", "quantity": "1234.5", "usdcReceived": "0.02", "timestamp": "2025-03-01T12:00:00"})
    assert legs(x) == {("Assets:Backpack:main:Spot:BONK", "BONK"): D("-1234.5"), ("Equity:Trading", "BONK"): D("1234.5"),
                       ("Assets:Backpack:main:Spot:USDC", "USDC"): D("0.02"), ("Equity:Trading", "USDC"): D("-0.02")}


def test_extract__rfq_taker_fill_no_fee_and_quote_maker_fill_with_fee():
    r = {"rfqId": "1", "quoteId": "2", "symbol": "SOL_USDC_RFQ", "side": "Bid", "quantity": "5", "quoteQuantity": "750.5",
         "fillPrice": "150.1", "createdAt": "2025-03-01T12:00:00", "filledAt": "2025-03-01T12:00:01"}
    assert legs(run("rfqFill", r))[("Assets:Backpack:main:Spot:USDC", "USDC")] == D("-750.5")
    q = {"quoteId": "2", "rfqId": "1", "symbol": "SOL_USDC_RFQ", "side": "Ask", "quantity": "5", "fillPrice": "150.1", "fee": "0.1",
         "feeSymbol": "USDC", "createdAt": "2025-03-01T12:00:00", "filledAt": "2025-03-01T12:00:01"}
    assert legs(run("quoteFill", q))[("Assets:Backpack:main:Spot:USDC", "USDC")] == D("750.4")


def test_extract__memo_streams_and_unknown_endpoint():
    for ep in ("orders", "rfq", "quote", "strategies", "positionHistory", "borrowLendPositionHistory"):
        assert run(ep, {}).status == "memo"
    assert run("somethingNew", {}).status == "unknown"


def test_split_symbol():
    assert split_symbol("SOL_USDC") == ("SOL", "USDC", "SPOT")
    assert split_symbol("BTC_USDC_PERP") == ("BTC", "USDC", "PERP")
    assert split_symbol("AAPL.US_USDC") == ("AAPL.US", "USDC", "SPOT")
    assert split_symbol("WEIRD") is None


dec = st.decimals(min_value=D("0.00000001"), max_value=D("1000000"), places=8)


@given(q=dec, p=dec, fee=st.decimals(min_value=D("-1"), max_value=D("1"), places=8), side=st.sampled_from(["Bid", "Ask"]),
       fee_sym=st.sampled_from(["SOL", "USDC", "BNB"]))
def test_extract__every_spot_fill_balances_per_asset(q, p, fee, side, fee_sym):
    x = run("fills", {**FILL, "quantity": str(q), "price": str(p), "fee": str(fee), "feeSymbol": fee_sym, "side": side})
    assert x.status == "posted"  # run() already checked the balance per asset
