"""What the ledger accepts from the exchange (docs/assumptions.md A-TEXT-1), checked when a page is
validated: one error naming endpoint, record and field; the key in the message cut to a sane length."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from importers.backpack.endpoints import ENDPOINTS, MAX_SYMBOL_CHARS, MAX_TEXT_CHARS, text_problem
from importers.backpack.errors import RecordError

FILL = {"tradeId": 7, "orderId": "11", "symbol": "SOL_USDC", "side": "Bid", "price": "1", "quantity": "1", "fee": "0",
        "feeSymbol": "USDC", "isMaker": True, "timestamp": "2025-01-02T03:04:05.000"}


def _fill(**kw):
    return {**FILL, **kw}


def test_limits__a_symbol_of_64_characters_is_stored_65_is_refused():
    ENDPOINTS["fills"].validate_response([_fill(symbol="S" * 59 + "_USDC")])
    with pytest.raises(RecordError) as info:
        ENDPOINTS["fills"].validate_response([_fill(symbol="S" * 60 + "_USDC")])
    assert str(info.value) == (f"fills: record fills:7:11:Bid:{'S' * 60}_USDC (#0): field 'symbol' is 65 characters long; "
                               f"the ledger stores at most {MAX_SYMBOL_CHARS}")


def test_limits__other_text_up_to_255_and_the_natural_key_too():
    # "orders:" + 248 characters: a natural key of exactly 255
    ENDPOINTS["orders"].validate_response([{"id": "9" * 248, "createdAt": "2025-01-02T03:04:05", "symbol": "SOL_USDC", "side": "Bid",
                                            "orderType": "Limit", "timeInForce": "GTC", "status": "Filled"}])
    with pytest.raises(RecordError, match=r"field 'orderId' is 256 characters long; the ledger stores at most 255$") as info:
        ENDPOINTS["fills"].validate_response([_fill(orderId="9" * 256)])
    assert len(str(info.value)) < 250  # the record's key is cut in the message
    with pytest.raises(RecordError, match=r"^fills: record #0: natural key is \d+ characters long; the ledger stores at most 255$"):
        ENDPOINTS["fills"].validate_response([_fill(orderId="9" * 250)])


def test_limits__nul_refused_in_any_text_field_and_balance_key():
    with pytest.raises(RecordError, match=r"field 'feeSymbol' contains a NUL character"):
        ENDPOINTS["fills"].validate_response([_fill(feeSymbol="US\x00DC")])
    with pytest.raises(RecordError, match=r"^balances: record #SOL\x00: asset name contains a NUL character"):
        ENDPOINTS["balances"].validate_response({"SOL\x00": {"available": "1", "locked": "0", "staked": "0"}})
    with pytest.raises(RecordError, match=r"asset name is 65 characters long"):
        ENDPOINTS["balances"].validate_response({"S" * 65: {"available": "1", "locked": "0", "staked": "0"}})


@given(st.text(alphabet=st.characters(blacklist_characters="\x00"), max_size=MAX_SYMBOL_CHARS))
def test_limits__every_other_character_is_data(text):
    """Controls, ESC, bidi overrides, markup: accepted (they are neutralised where they are shown)."""
    assert text_problem("symbol", text) is None
    assert text_problem("orderId", text) is None


@given(st.text(min_size=1, max_size=MAX_TEXT_CHARS + 10))
def test_limits__the_rule(text):
    expected = "\x00" not in text and len(text) <= MAX_TEXT_CHARS
    assert (text_problem("clientId", text) is None) == expected
    assert (text_problem("symbol", text) is None) == (expected and len(text) <= MAX_SYMBOL_CHARS)
