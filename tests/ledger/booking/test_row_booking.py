"""``RowBooking``: rows fed in batches book exactly as ``book_rows`` books them all at once.

Batches are cut anywhere in the sorted rows (also between rows of one instant), sometimes out of
order, sometimes with a transfer or a deposit of unknown cost part-way (the fast path is left and
``finish`` books everything again), with datetimes or text times, in UTC and in a US zone.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.booking import Acquisition, BookingInputError, RowBooking, Settings, Transfer, book_rows
from ledger.booking.rows import event_row, iso_utc
from ledger.money import D
from tests.ledger.booking.test_booking_rows import START, generated, step


def _fed(rows: list[tuple], cuts: list[int], s: Settings, *, lots: bool = True):
    booking = RowBooking(s)
    given_gains: list[tuple] = []
    bounds = [0, *sorted(set(c % (len(rows) + 1) for c in cuts)), len(rows)]
    for a, b in zip(bounds, bounds[1:]):
        given_gains += booking.feed(rows[a:b])
    result = booking.finish(lots=lots)
    gains = result.gains if booking.restarted else given_gains + result.gains
    return booking, gains, result


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(step, max_size=40),
    st.lists(st.integers(0, 60), max_size=6),
    st.sampled_from(("fifo", "lifo", "hifo", "lofo", "average", "uk")),
    st.sampled_from(("generic", "us")),
    st.booleans(),
    st.sampled_from(("sorted", "shuffled", "transfer", "deposit")),
    st.randoms(use_true_random=False),
)
def test_row_booking__batches_book_as_book_rows(steps, cuts, method, jurisdiction, text, shape, rnd):
    s = Settings(method=method, jurisdiction="uk" if method == "uk" else jurisdiction)
    events = generated(steps)
    if shape in ("transfer", "deposit") and events:
        at = events[len(events) // 2].time + timedelta(seconds=1)
        if shape == "transfer":
            events.append(Transfer(id="x", from_account="A", to_account="B", asset="BTC", quantity=D("0.001"), fee=D(0), fee_value=None, time=at, source="s"))
        else:
            events.append(Acquisition(id="dep", account="A", asset="BTC", quantity=D("0.5"), cost=None, time=at, source="s", kind="deposit"))
    rows = sorted(event_row(e) for e in events)
    if text:
        rows = [(iso_utc(r[0]), *r[1:]) for r in rows]
    if shape == "shuffled":
        rnd.shuffle(rows)
    expected = book_rows(rows, s)
    booking, gains, result = _fed(rows, cuts, s)
    assert gains == expected.gains
    assert (result.open_lots, result.income, result.findings, result.allocations) == (
        expected.open_lots, expected.income, expected.findings, expected.allocations)
    if method in ("fifo", "hifo") and jurisdiction == "generic" and shape == "sorted" and not booking.restarted:
        assert _fed(rows, cuts, s, lots=False)[2].open_lots == []


def test_row_booking__books_each_batch_on_arrival_and_holds_its_last_instant():
    s = Settings(method="fifo")
    t = START
    buy = lambda i, dt, q: event_row(Acquisition(id=f"b{i}", account="A", asset="BTC", quantity=D(q), cost=D(10), time=t + dt, source="s", kind="trade"))  # noqa: E731
    sell = lambda i, dt, q: (t + dt, 2, f"s{i}", "A", "BTC", D(q), D(20), "s", "trade")  # noqa: E731
    booking = RowBooking(s)
    assert booking.feed([buy(1, timedelta(0), "1"), sell(1, timedelta(hours=1), "0.5")]) == []  # the sale is at the batch's last instant: held
    first = booking.feed([buy(2, timedelta(hours=1), "1"), sell(2, timedelta(hours=2), "1")])  # the buy at that instant comes first
    assert [(g[2], g[10]) for g in first] == [(D("0.5"), "b1")]
    rest = booking.finish()
    assert [(g[2], g[10]) for g in rest.gains] == [(D("0.5"), "b1"), (D("0.5"), "b2")]
    assert not booking.restarted and [(lot.id, lot.quantity) for lot in rest.open_lots] == [("b2", D("0.5"))]


def test_row_booking__leaving_the_fast_path_after_gains_restarts():
    s = Settings(method="fifo")
    rows = [event_row(Acquisition(id="b", account="A", asset="BTC", quantity=D(2), cost=D(10), time=START, source="s", kind="trade")),
            (START + timedelta(hours=1), 2, "s", "A", "BTC", D(1), D(20), "s", "trade"),
            (START + timedelta(hours=2), 2, "s2", "A", "BTC", D("0.5"), D(20), "s", "trade")]
    booking = RowBooking(s)
    assert len(booking.feed(rows)) == 1
    booking.feed([event_row(Transfer(id="x", from_account="A", to_account="B", asset="BTC", quantity=D("0.5"), fee=D(0), fee_value=None,
                                     time=START + timedelta(hours=3), source="s"))])
    result = booking.finish()
    assert booking.restarted and len(result.gains) == 2


def test_row_booking__duplicate_ids_raise_at_finish():
    row = event_row(Acquisition(id="same", account="A", asset="BTC", quantity=D(1), cost=D(1), time=START, source="s", kind="trade"))
    booking = RowBooking(Settings(method="hifo"))
    booking.feed([row])
    booking.feed([(START + timedelta(hours=1), *row[1:])])
    with pytest.raises(BookingInputError, match="duplicate event id 'same'"):
        booking.finish()
