from __future__ import annotations

from decimal import Decimal

import pytest

from ledger.money import D, Amount, MoneyError, plain


@pytest.mark.parametrize("bad", [0.1, True, False, "abc", "NaN", "inf", None, [1]])
def test_D__rejects_inexact_or_garbage(bad):
    with pytest.raises(MoneyError):
        D(bad)


def test_D__parses_strings_ints_and_decimals():
    assert D("0.004974") == Decimal("0.004974")
    assert D(" 12 ") == Decimal(12)
    assert D(7) == Decimal(7)
    assert D(Decimal("1.5")) == Decimal("1.5")


@pytest.mark.parametrize("value,text", [("1E+3", "1000"), ("1.2300", "1.23"), ("-0.00000001", "-0.00000001"), ("0E-8", "0")])
def test_plain__never_exponent(value, text):
    assert plain(D(value)) == text


def test_amount__refuses_mixing_assets():
    with pytest.raises(MoneyError):
        Amount(D("1"), "SOL") + Amount(D("1"), "USDC")
    assert Amount(D("1"), "SOL") + Amount(D("2"), "SOL") == Amount(D("3"), "SOL")
