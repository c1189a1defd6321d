"""The gains export's hot-loop formatting against the reference functions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from ledger.money import plain
from ledger.booking import iso_utc as _iso_utc
from reports.gains import _plain

decimals = st.builds(lambda n, e: Decimal(n).scaleb(e), st.integers(min_value=-(10**30), max_value=10**30), st.integers(min_value=-30, max_value=8))


@given(decimals)
def test_plain__same_as_money_plain(d):
    assert _plain(d) == plain(d)


def test_plain__exponent_zero_and_trailing_zeros():
    for text, expected in (("0E-18", "0"), ("-0.000", "0"), ("1E+2", "100"), ("1E-8", "0.00000001"), ("1.50", "1.5"), ("100", "100"), ("-2.0", "-2")):
        assert _plain(Decimal(text)) == expected


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)), st.integers(-14, 14))
def test_iso_utc__microseconds_and_z(t, hours):
    expected = t.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    assert _iso_utc(t) == expected
    assert _iso_utc(t.astimezone(timezone(timedelta(hours=hours)))) == expected
