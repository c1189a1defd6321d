"""The engine's fast path and row form (``ledger/booking/rows.py``) against the general engine.

Histories are generated with ties the orderings must break (same instant, same unit cost),
overspends, income and two accounts; the fast path must give the general engine's gains, open
lots, income and findings exactly, in the same order.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import localcontext

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.booking import Acquisition, BookingInputError, Disposal, Settings, Transfer, book, book_rows, ordered
from ledger.booking.engine import _Booker
from ledger.booking.opening import OpeningRegister
from ledger.booking.rows import event_row, fast_path_applies, gain_row, iso_utc
from ledger.money import D, EXACT

START = datetime(2023, 12, 20, tzinfo=timezone.utc)

step = st.tuples(
    st.sampled_from(("buy", "buy", "sell", "sell", "income")),
    st.sampled_from(("A", "B")),
    st.sampled_from(("BTC", "ETH")),
    st.integers(min_value=1, max_value=300),  # quantity in thousandths
    st.sampled_from((0, 1, 7, 100, 333, 9_999)),  # unit price: few values, so unit costs tie
    st.sampled_from((0, 0, 1, 60 * 24 * 200, 60 * 24 * 365, 60 * 24 * 366)),  # minutes: same instant, a minute, days, a year (anniversaries)
)


def generated(steps: list[tuple]) -> list:
    events: list = []
    t = START
    for n, (kind, account, asset, q, price, gap) in enumerate(steps):
        t = t + timedelta(minutes=gap)
        qty = D(q) / 1000
        if kind == "sell":  # may overspend: a finding and a zero-basis piece
            events.append(Disposal(id=f"e{n:03}", account=account, asset=asset, quantity=qty, proceeds=qty * price / 3, time=t, source="gen", kind="trade"))
        else:
            events.append(Acquisition(id=f"e{n:03}", account=account, asset=asset, quantity=qty, cost=qty * price, time=t, source="gen", kind="trade" if kind == "buy" else "income"))
    return events


def general(events: list, s: Settings):
    with localcontext(EXACT):
        return _Booker(s, OpeningRegister(())).run(ordered(events))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(step, max_size=40),
    st.sampled_from(("fifo", "lifo", "hifo", "lofo")),
    st.sampled_from(("universal", "account")),
    st.sampled_from(("generic", "de", "us")),
)
def test_fast_path__same_result_as_general_engine(steps, method, scope, jurisdiction):
    if jurisdiction == "de":
        method = "fifo"
    s = Settings(method=method, scope=scope, jurisdiction=jurisdiction)
    events = generated(steps)
    rows = [event_row(e) for e in ordered(events)]
    expected = general(events, s)
    got = book(list(reversed(events)), s)
    if jurisdiction != "us":
        assert fast_path_applies(rows, s, None, False)
    assert got == expected
    assert book_rows(list(reversed(rows)), s).gains == [gain_row(g) for g in expected.gains]
    # Text times (the export's form): the same booking, the gains' times as text; findings, income and lots keep datetimes.
    texts = book_rows([as_text(r) for r in reversed(rows)], s)
    assert texts.gains == [gain_text(gain_row(g)) for g in expected.gains]
    assert (texts.open_lots, texts.income, texts.findings) == (expected.open_lots, expected.income, expected.findings)


def as_text(row: tuple) -> tuple:
    return (iso_utc(row[0]), *row[1:])


def gain_text(g: tuple) -> tuple:
    return (*g[:3], iso_utc(g[3]), iso_utc(g[4]), *g[5:])


def test_book_rows__general_path_for_transfers():
    t = START
    events = [
        Acquisition(id="b", account="A", asset="BTC", quantity=D(2), cost=D(100), time=t, source="s", kind="trade"),
        Transfer(id="x", from_account="A", to_account="B", asset="BTC", quantity=D(1), fee=D("0.1"), fee_value=D(7), time=t + timedelta(hours=1), source="s"),
        Disposal(id="d", account="B", asset="BTC", quantity=D(1), proceeds=D(80), time=t + timedelta(hours=2), source="s", kind="trade"),
    ]
    s = Settings(method="hifo", scope="account")
    rows = [event_row(e) for e in events]
    assert not fast_path_applies(rows, s, None, False)
    got = book_rows(rows, s)
    expected = book(events, s)
    assert got.gains == [gain_row(g) for g in expected.gains]
    assert got.open_lots == expected.open_lots
    texts = book_rows([as_text(r) for r in rows], s)
    assert texts.gains == [gain_text(gain_row(g)) for g in expected.gains] and texts.open_lots == expected.open_lots


def test_book_rows__duplicate_id_raises():
    a = Acquisition(id="same", account="A", asset="BTC", quantity=D(1), cost=D(1), time=START, source="s", kind="trade")
    d = Disposal(id="same", account="A", asset="BTC", quantity=D(1), proceeds=D(1), time=START, source="s", kind="trade")
    with pytest.raises(BookingInputError, match="duplicate event id 'same'"):
        book_rows([event_row(a), event_row(d)], Settings(method="hifo"))
