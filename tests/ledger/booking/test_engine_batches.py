"""The one engine fed in batches gives ``book``'s result, whatever the cut (hypothesis), and each
lot method relieves lots in its documented order (an independent oracle per method)."""

from __future__ import annotations

from bisect import bisect_left
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.booking import Acquisition, BookingInputError, Disposal, Engine, OpeningLot, Settings, book, ordered
from ledger.money import D
from tests.ledger.booking.test_booking_properties import START, history, step

SETTINGS = st.sampled_from([
    Settings(method="fifo", jurisdiction="us"),
    Settings(method="hifo", jurisdiction="us"),
    Settings(method="lifo", jurisdiction="generic", scope="account"),
    Settings(method="lofo", jurisdiction="generic", transfer_fee_policy="add-to-basis"),
    Settings(method="average", jurisdiction="generic"),
    Settings(method="fifo", jurisdiction="generic", method_by_year={2025: "hifo"}),
    Settings(method="fifo", jurisdiction="de"),
    Settings(jurisdiction="uk"),
    Settings(method="hifo", jurisdiction="us", tax_timezone="America/New_York"),
])


def _batched(events: list, cuts: list[int], settings: Settings, opening) -> tuple:
    """Feed the sorted events cut at ``cuts`` (never inside one instant, as ``ledger.books`` does)."""
    evs = ordered(events)
    engine = Engine(settings, opening_lots=opening)
    gains = []
    start = 0
    for c in sorted(set(cuts)):
        if not evs or c <= start or c >= len(evs):
            continue
        c = bisect_left(evs, (evs[c].time,))  # keep an instant whole
        if c <= start:
            continue
        gains += engine.feed(evs[start:c])
        start = c
    gains += engine.feed(evs[start:])
    result = engine.finish()
    return gains + result.gains, result


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=40), st.lists(st.integers(0, 60), max_size=6), SETTINGS, st.booleans())
def test_engine__any_cut_into_batches_gives_books_result(steps, cuts, settings, with_opening):
    events = history(steps)
    opening = [OpeningLot(account="*", asset="BTC", quantity=D("3"), acquired=START - timedelta(days=400), basis=D("900"))] if with_opening else []
    whole = book(events, settings, opening_lots=opening)
    gains, rest = _batched(events, cuts, settings, opening)
    assert gains == whole.gains
    assert (rest.open_lots, rest.income, rest.findings, rest.allocations) == (whole.open_lots, whole.income, whole.findings, whole.allocations)


def test_engine__refuses_a_batch_out_of_order():
    a = Acquisition(id="a", account="m", asset="BTC", quantity=D(1), cost=D(1), time=START, source="s", kind="trade")
    b = Disposal(id="b", account="m", asset="BTC", quantity=D(1), proceeds=D(1), time=START + timedelta(days=1), source="s", kind="trade")
    engine = Engine(Settings())
    engine.feed([b])
    with pytest.raises(BookingInputError, match="out of order"):
        engine.feed([a])


# --- each method's order against an independent oracle -----------------------------------------

def _oracle(method: str, lots: list[tuple], quantity):
    """Which lots (id, quantity) a disposal of ``quantity`` relieves from ``lots`` (id, time, q, unit),
    by the documented order, written out directly."""
    keys = {
        "fifo": lambda l: (l[1], l[0]),
        "lifo": lambda l: (l[1], l[0]),
        "hifo": lambda l: (-l[3], l[1], l[0]),
        "lofo": lambda l: (l[3], l[1], l[0]),
    }
    order = sorted(lots, key=keys[method], reverse=method == "lifo")
    out, need = [], quantity
    for lot_id, _, q, _ in order:
        if need <= 0:
            break
        take = min(q, need)
        out.append((lot_id, take))
        need -= take
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 50), st.integers(1, 9)), min_size=1, max_size=12), st.sampled_from(("fifo", "lifo", "hifo", "lofo")), st.data())
def test_method__relieves_lots_in_its_documented_order(lots, method, data):
    """Lots bought at distinct times at distinct or equal unit costs; one sale: the pieces are the
    oracle's, in its order."""
    events, spec = [], []
    for i, (q, unit) in enumerate(lots):
        t = START + timedelta(hours=i)
        events.append(Acquisition(id=f"b{i:02d}", account="m", asset="BTC", quantity=D(q), cost=D(q * unit), time=t, source="s", kind="trade"))
        spec.append((f"b{i:02d}", t, D(q), D(unit)))
    total = sum(q for q, _ in lots)
    sold = data.draw(st.integers(1, total))
    events.append(Disposal(id="s", account="m", asset="BTC", quantity=D(sold), proceeds=D(sold), time=START + timedelta(days=30), source="s", kind="trade"))
    gains = book(events, Settings(method=method)).gains
    assert [(g.lot_id, g.quantity) for g in gains] == _oracle(method, spec, D(sold))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 50), st.integers(1, 9)), min_size=1, max_size=12), st.data())
def test_average__every_piece_at_the_pool_average(lots, data):
    events = []
    for i, (q, unit) in enumerate(lots):
        events.append(Acquisition(id=f"b{i:02d}", account="m", asset="BTC", quantity=D(q), cost=D(q * unit), time=START + timedelta(hours=i), source="s", kind="trade"))
    total_q = sum(q for q, _ in lots)
    total_c = sum(q * u for q, u in lots)
    sold = data.draw(st.integers(1, total_q))
    events.append(Disposal(id="s", account="m", asset="BTC", quantity=D(sold), proceeds=D(sold), time=START + timedelta(days=30), source="s", kind="trade"))
    gains = book(events, Settings(method="average")).gains
    assert sum(g.quantity for g in gains) == sold
    basis = sum(g.cost_basis for g in gains)
    assert abs(basis - D(total_c) * D(sold) / D(total_q)) <= D("1e-15")
    assert [g.lot_id for g in gains] == [f"b{i:02d}" for i in range(len(gains))]  # dates relieved first in, first out
