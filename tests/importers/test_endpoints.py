"""The endpoint catalogue: declarations, timestamps, natural keys and record validation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from importers.backpack import endpoints as E
from importers.backpack.errors import MalformedResponse, RecordError

FILL = {
    "clientId": None, "fee": "0.004974", "feeSymbol": "USDC", "isMaker": False, "orderId": "4238907375",
    "price": "3826.15", "quantity": "0.0026", "side": "Bid", "symbol": "ETH_USDC_PERP", "systemOrderType": None,
    "timestamp": "2025-07-27T17:39:00.092", "tradeId": 9748827,
}

# REFERENCE.md §5.1 and §5.3: path -> instruction.
INSTRUCTIONS = {
    "/wapi/v1/history/fills": "fillHistoryQueryAll",
    "/wapi/v1/history/orders": "orderHistoryQueryAll",
    "/wapi/v1/history/funding": "fundingHistoryQueryAll",
    "/wapi/v1/history/settlement": "settlementHistoryQueryAll",
    "/wapi/v1/history/interest": "interestHistoryQueryAll",
    "/wapi/v1/history/borrowLend": "borrowHistoryQueryAll",
    "/wapi/v1/history/borrowLend/positions": "borrowPositionHistoryQueryAll",
    "/wapi/v1/history/dust": "dustHistoryQueryAll",
    "/wapi/v1/history/position": "positionHistoryQueryAll",
    "/wapi/v1/history/rfq": "rfqHistoryQueryAll",
    "/wapi/v1/history/rfq/fill": "rfqFillHistoryQueryAll",
    "/wapi/v1/history/quote": "quoteHistoryQueryAll",
    "/wapi/v1/history/quote/fill": "quoteFillHistoryQueryAll",
    "/wapi/v1/history/strategies": "strategyHistoryQueryAll",
    "/wapi/v1/capital/deposits": "depositQueryAll",
    "/wapi/v1/capital/withdrawals": "withdrawalQueryAll",
    "/api/v1/capital": "balanceQuery",
    "/api/v1/capital/collateral": "collateralQuery",
    "/api/v1/position": "positionQuery",
    "/api/v1/borrowLend/positions": "borrowLendPositionQuery",
    "/api/v1/account": "accountQuery",
}
PUBLIC = ["/api/v1/markets", "/api/v1/assets", "/api/v1/klines", "/api/v1/markPrices", "/api/v1/tickers",
          "/api/v1/time", "/api/v1/status"]


@pytest.mark.parametrize("path", sorted(INSTRUCTIONS))
def test_catalogue__signed_endpoint_has_reference_instruction(path):
    assert E.BY_PATH[path].instruction == INSTRUCTIONS[path]


@pytest.mark.parametrize("path", PUBLIC)
def test_catalogue__public_endpoint_is_unsigned(path):
    assert not E.BY_PATH[path].signed


def test_catalogue__history_paging_traits():
    for ep in E.HISTORY:
        assert ep.max_limit == 1000 and {"limit", "offset"} <= ep.params
        assert ep.key is not None and ep.time_field in ep.fields
        assert ep.sort_direction == ("sortDirection" in ep.params)
        assert ep.from_to == ({"from", "to"} <= ep.params)
    assert {e.name for e in E.HISTORY if e.from_to} == {"fills", "deposits", "withdrawals"}
    assert {e.name for e in E.HISTORY if not e.sort_direction} == {"deposits", "withdrawals"}
    assert E.get("klines").bucket == E.HISTORICAL_MARKET_DATA


def test_catalogue__fills_accept_no_default_filter():
    # The importer must never filter fills by type (REFERENCE.md §5.1): fillType is accepted, never defaulted.
    assert "fillType" in E.get("fills").params


def test_get__unknown_name_lists_known_ones():
    with pytest.raises(KeyError, match="unknown Backpack endpoint 'fill'.*fills"):
        E.get("fill")


@pytest.mark.parametrize("text, expected", [
    ("2025-08-01T16:00:00", datetime(2025, 8, 1, 16, tzinfo=timezone.utc)),
    ("2025-07-27T17:39:00.092", datetime(2025, 7, 27, 17, 39, 0, 92000, tzinfo=timezone.utc)),
    ("2025-01-21T06:34:54.691858", datetime(2025, 1, 21, 6, 34, 54, 691858, tzinfo=timezone.utc)),
    ("2025-01-21T06:34:54.6", datetime(2025, 1, 21, 6, 34, 54, 600000, tzinfo=timezone.utc)),
    ("2025-07-19 13:09:00", datetime(2025, 7, 19, 13, 9, tzinfo=timezone.utc)),
])
def test_parse_ts__naive_iso_with_0_to_6_fraction_digits(text, expected):
    parsed = E.parse_ts(text)
    assert parsed == expected and parsed.tzinfo is timezone.utc


@pytest.mark.parametrize("text", ["2025-08-01T16:00:00Z", "2025-08-01T16:00:00+00:00", "2025-08-01",
                                  "2025-08-01T16:00:00.1234567", "1753637940092", ""])
def test_parse_ts__rejects_other_forms(text):
    with pytest.raises(ValueError):
        E.parse_ts(text)


def test_ts_ms__floors_micros_and_rejects_naive():
    assert E.ts_ms(E.parse_ts("2025-07-27T17:39:00.092999")) == 1753637940092
    assert E.ts_ms(datetime(1970, 1, 1, tzinfo=timezone.utc)) == 0
    with pytest.raises(ValueError):
        E.ts_ms(datetime(2025, 1, 1))


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1)))
def test_ts_ms__agrees_with_timestamp(naive):
    aware = naive.replace(tzinfo=timezone.utc)
    assert E.ts_ms(aware) == (aware - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)


def test_key__fill_with_trade_id():
    assert E.get("fills").natural_key(FILL) == "fills:9748827:4238907375:Bid:ETH_USDC_PERP"


@pytest.mark.parametrize("trade_id", [0, None])
def test_key__fill_without_trade_id_hashes_all_fields_stably(trade_id):
    ep = E.get("fills")
    row = dict(FILL, tradeId=trade_id)
    key = ep.natural_key(row)
    assert key.startswith("fills:sha256:") and len(key) == len("fills:sha256:") + 64
    assert ep.natural_key(dict(reversed(list(row.items())))) == key  # key order does not matter
    assert ep.natural_key(dict(row, quantity="0.0027")) != key


def test_key__timestamps_normalised_so_spelling_does_not_matter():
    ep = E.get("interest")
    a = {"positionId": "7", "paymentType": "Lend", "timestamp": "2025-08-01T16:00:00"}
    b = dict(a, timestamp="2025-08-01T16:00:00.000")
    assert ep.natural_key(a) == ep.natural_key(b) == "interest:7:Lend:2025-08-01T16:00:00.000000"


@pytest.mark.parametrize("name, row, key", [
    ("funding", {"symbol": "SOL_USDC_PERP", "intervalEndTimestamp": "2025-08-01T16:00:00", "subaccountId": None},
     "funding:SOL_USDC_PERP:2025-08-01T16:00:00.000000:"),
    ("settlement", {"engineSequence": 42, "timestamp": "2025-08-01T16:00:00"}, "settlement:42"),
    ("borrowLend", {"positionId": "9", "eventType": "Lend", "timestamp": "2025-08-01T16:00:00.5", "quantity": "1.5",
                    "source": "Manual"}, "borrowLend:9:Lend:2025-08-01T16:00:00.500000:1.5:Manual"),
    ("dust", {"id": 3}, "dust:3"),
    ("deposits", {"id": 11}, "deposits:11"),
    ("withdrawals", {"id": 12}, "withdrawals:12"),
    ("orders", {"id": "111"}, "orders:111"),
    ("rfqFill", {"rfqId": "1", "quoteId": "2"}, "rfqFill:1:2"),
    ("quoteFill", {"rfqId": "1", "quoteId": "2"}, "quoteFill:2:1"),
])
def test_key__per_endpoint(name, row, key):
    assert E.get(name).natural_key(row) == key


def test_key__settlement_without_sequence_hashes_its_fields():
    ep = E.get("settlement")
    row = {"timestamp": "2025-08-01T16:00:00", "source": "RealizePnl", "quantity": "-1", "positionId": None,
           "engineSequence": None}
    assert ep.natural_key(row).startswith("settlement:sha256:")
    assert ep.natural_key(row) == ep.natural_key(dict(row, timestamp="2025-08-01T16:00:00.000000"))


def test_validate__sample_fill_passes():
    E.get("fills").validate_record(FILL, 0)


@pytest.mark.parametrize("field, value, reason", [
    ("price", 3826.15, "must be a decimal string, got float"),
    ("price", "3,826.15", "unparseable"),
    ("tradeId", "9748827", "must be an integer, got str"),
    ("orderId", 4238907375, "must be a string, got int"),
    ("isMaker", "false", "must be a boolean"),
    ("timestamp", "2025-07-27T17:39:00Z", "naive UTC ISO-8601"),
    ("timestamp", 1753637940092, "naive ISO timestamp string, got int"),
])
def test_validate__wrong_type_names_endpoint_record_and_field(field, value, reason):
    with pytest.raises(RecordError) as info:
        E.get("fills").validate_record(dict(FILL, **{field: value}), 4)
    err = info.value
    assert err.endpoint == "fills" and f"'{field}'" in str(err) and reason in str(err)
    assert "#4" in str(err)


def test_validate__missing_required_field_named_with_index_when_key_needs_it():
    row = dict(FILL)
    del row["orderId"]
    with pytest.raises(RecordError, match=r"^fills: record #7: field 'orderId' is missing$"):
        E.get("fills").validate_record(row, 7)


def test_validate__null_required_and_optional_fields():
    with pytest.raises(RecordError, match="'fee' is null"):
        E.get("fills").validate_record(dict(FILL, fee=None), 0)
    E.get("fills").validate_record({k: v for k, v in FILL.items() if k not in ("clientId", "tradeId")}, 0)


def test_validate__record_not_an_object():
    with pytest.raises(RecordError, match=r"deposits: record #2: record must be a JSON object, got list"):
        E.get("deposits").validate_record([], 2)


def test_validate_response__wrong_shape_names_endpoint():
    with pytest.raises(MalformedResponse, match="^fills: malformed response: expected a JSON array, got dict"):
        E.get("fills").validate_response({"code": "x"})
    with pytest.raises(MalformedResponse, match="^balances: .*JSON object, got list"):
        E.get("balances").validate_response([])


def test_validate_response__balances_named_by_asset():
    E.get("balances").validate_response({"USDC": {"available": "1", "locked": "0", "staked": "0"}})
    with pytest.raises(RecordError, match=r"balances: record #SOL: field 'locked'"):
        E.get("balances").validate_response({"SOL": {"available": "1", "locked": 0, "staked": "0"}})


def test_validate__deposit_int_id_and_float_fiat_amount_accepted():
    row = {"id": 5, "symbol": "USDC", "quantity": "10", "createdAt": "2025-01-01T00:00:00", "source": "solana",
           "status": "confirmed", "fiatAmount": 10.5}
    E.get("deposits").validate_record(row, 0)
    with pytest.raises(RecordError, match=r"deposits: record deposits:5 \(#0\): field 'fiatAmount'"):
        E.get("deposits").validate_record(dict(row, fiatAmount="10.5"), 0)
