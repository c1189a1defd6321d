"""Method definitions, tie-breaks, same-instant order, transfers, findings, CA-1 and DE-1."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from tests.ledger.booking.booking_scenarios import at, buy, by_term, cents, dsum, lots, move, rows, sell, total_gain
from ledger.booking import OpeningLot, Settings, book, open_lots_at
from ledger.booking.jurisdictions import anniversary, holding_term, tax_day as tax_date
from ledger.money import D

# --- tie-breaks: written rule, one case each ---------------------------------------------

TIE_CASES = {
    # HIFO: unit cost desc, then acquired asc, then lot id asc.
    "hifo-dearer-first": ("hifo", [("x", "2024-01-01", "100"), ("y", "2024-01-02", "300")], ["y"]),
    "hifo-equal-cost-older-first": ("hifo", [("y", "2024-01-01", "200"), ("x", "2024-01-02", "200")], ["y"]),
    "hifo-equal-cost-same-time-lower-id-first": ("hifo", [("b", "2024-01-01", "200"), ("a", "2024-01-01", "200")], ["a"]),
    # LOFO: unit cost asc, then acquired asc, then lot id asc.
    "lofo-cheaper-first": ("lofo", [("x", "2024-01-01", "300"), ("y", "2024-01-02", "100")], ["y"]),
    "lofo-equal-cost-older-first": ("lofo", [("y", "2024-01-01", "200"), ("x", "2024-01-02", "200")], ["y"]),
    # FIFO: acquired asc, then lot id asc.
    "fifo-older-first": ("fifo", [("y", "2024-01-01", "1"), ("x", "2024-01-02", "1")], ["y"]),
    "fifo-same-time-lower-id-first": ("fifo", [("b", "2024-01-01", "1"), ("a", "2024-01-01", "1")], ["a"]),
    # LIFO: acquired desc, then lot id desc.
    "lifo-newer-first": ("lifo", [("x", "2024-01-01", "1"), ("y", "2024-01-02", "1")], ["y"]),
    "lifo-same-time-higher-id-first": ("lifo", [("a", "2024-01-01", "1"), ("b", "2024-01-01", "1")], ["b"]),
}


@pytest.mark.parametrize("case", sorted(TIE_CASES))
def test_method__tie_break_rule(case):
    method, acquisitions, expected = TIE_CASES[case]
    events = [buy(lot_id, when, "1", cost) for lot_id, when, cost in acquisitions] + [sell("s", "2024-03-01", "1", "500")]
    result = book(events, Settings(method=method))
    assert [g.lot_id for g in result.gains] == expected


def test_method__hifo_compares_unit_cost_not_lot_cost():
    events = [buy("big", "2024-01-01", "10", "1000"), buy("small", "2024-01-02", "1", "150"), sell("s", "2024-03-01", "1", "200")]
    assert [g.lot_id for g in book(events, Settings(method="hifo")).gains] == ["small"]


def test_method__average_ca1_adjusted_cost_base():
    events = [buy("b1", "2024-01-01", "10", "1000"), buy("b2", "2024-02-01", "10", "2000"), sell("s", "2024-03-01", "5", "1500")]
    result = book(events, Settings(method="average"))
    assert total_gain(result) == D(750)
    assert dsum(g.cost_basis for g in result.gains) == D(750)
    assert total_gain(result) / 2 == D(375)  # taxable at the 50 % inclusion rate
    assert (dsum(lot.quantity for lot in result.open_lots), dsum(lot.cost for lot in result.open_lots)) == (D(15), D(2250))


def test_method__average_thirds_stay_exact_in_total():
    events = [buy("b1", "2024-01-01", "3", "100"), sell("s1", "2024-02-01", "1", "50"), sell("s2", "2024-03-01", "1", "50"), sell("s3", "2024-04-01", "1", "50")]
    result = book(events, Settings(method="average"))
    assert dsum(g.cost_basis for g in result.gains) == D(100)
    assert result.open_lots == []


# --- holding period: one local-date function ---------------------------------------------

@pytest.mark.parametrize(
    ("acquired", "disposed", "zone", "term"),
    [
        ("2024-01-10T12:00:00Z", "2025-01-10T12:00:00Z", "UTC", "short"),
        ("2024-01-10T12:00:00Z", "2025-01-11T00:00:00Z", "UTC", "long"),
        ("2024-02-29T12:00:00Z", "2025-02-28T12:00:00Z", "UTC", "short"),
        ("2024-02-29T12:00:00Z", "2025-03-01T12:00:00Z", "UTC", "long"),
        # 23:30 UTC on 10 Jan is 11 Jan in Berlin: the anniversary moves with the local date.
        ("2024-01-10T23:30:00Z", "2025-01-11T12:00:00Z", "Europe/Berlin", "short"),
        ("2024-01-10T23:30:00Z", "2025-01-11T12:00:00Z", "UTC", "long"),
    ],
    ids=["anniversary-short", "day-after-long", "leap-day-anniversary-short", "leap-day-next-day-long", "berlin-local-date", "utc-date"],
)
def test_taxdate__holding_term(acquired, disposed, zone, term):
    assert holding_term(at(acquired), at(disposed), zone) == term


def test_taxdate__anniversary_of_leap_day_is_28_february():
    assert anniversary(tax_date(at("2024-02-29"), "UTC")).isoformat() == "2025-02-28"


@pytest.mark.parametrize(
    ("sold", "taxable", "exempt"),
    [("2025-01-10", "40000", "0"), ("2025-01-11", "10000", "30000")],
    ids=["on-anniversary-all-taxable", "day-after-first-lot-exempt"],
)
def test_book__de1_holding_period_fifo_per_wallet(sold, taxable, exempt):
    events = [buy("b1", "2024-01-10", "1", "10000"), buy("b2", "2024-06-01", "1", "20000"), sell("s", sold, "1.5", "60000")]
    result = book(events, Settings(jurisdiction="de"))
    terms = by_term(result)
    assert (terms.get("short", D(0)), terms.get("long", D(0))) == (D(taxable), D(exempt))


# --- same-instant order and input order ---------------------------------------------------

def test_book__acquisition_precedes_disposal_at_the_same_instant():
    events = [sell("s", "2024-03-01", "1", "200"), buy("b", "2024-03-01", "1", "150")]
    result = book(events, Settings())
    assert rows(result) == [("s", "b", D(1), D(150), D(50), "short")]
    assert result.findings == []


def test_book__transfer_precedes_disposal_at_the_same_instant():
    events = [sell("s", "2024-03-01", "1", "200", account="B"), move("t", "2024-03-01", "1", "A", "B"), buy("b", "2024-01-01", "1", "150", account="A")]
    result = book(events, Settings(scope="account"))
    assert rows(result) == [("s", "b", D(1), D(150), D(50), "short")]


def test_book__same_instant_ties_broken_by_id():
    events = [buy("b", "2024-01-01", "1", "100"), sell("s2", "2024-03-01", "1", "300"), sell("s1", "2024-03-01", "1", "200")]
    result = book(events, Settings())
    assert [(g.disposal_id, g.lot_id) for g in result.gains] == [("s1", "b"), ("s2", "")]


def test_book__input_order_does_not_matter():
    events = [
        buy("b1", "2024-01-10", "1", "100"),
        buy("b2", "2024-02-10", "1", "300"),
        move("t", "2024-02-11", "0.5", "main", "cold", fee="0.01", fee_value="1"),
        sell("s1", "2024-03-01", "1.2", "600"),
    ]
    expected = book(events, Settings(method="hifo"))
    shuffled = events[:]
    random.Random(7).shuffle(shuffled)
    assert book(shuffled, Settings(method="hifo")) == expected


# --- transfers and the fee policy -------------------------------------------------------

def test_transfer__fee_as_disposal_at_market_value():
    events = [buy("b", "2024-01-01", "1", "100", account="A"), move("t", "2024-06-01", "0.99", "A", "B", fee="0.01", fee_value="2")]
    result = book(events, Settings(scope="account", transfer_fee_policy="disposal"))
    assert rows(result) == [("t:fee", "b", D("0.01"), D(1), D(1), "short")]
    assert lots(result) == [("B", "b", D("0.99"), D(99))]
    assert result.open_lots[0].acquired == at("2024-01-01")


def test_transfer__fee_basis_added_to_the_moved_lots():
    events = [buy("b", "2024-01-01", "1", "100", account="A"), move("t", "2024-06-01", "0.99", "A", "B", fee="0.01")]
    result = book(events, Settings(scope="account", transfer_fee_policy="add-to-basis"))
    assert result.gains == []
    assert lots(result) == [("B", "b", D("0.99"), D(100))]


def test_transfer__fee_without_value_is_a_finding():
    events = [buy("b", "2024-01-01", "1", "100", account="A"), move("t", "2024-06-01", "0.99", "A", "B", fee="0.01")]
    result = book(events, Settings(scope="account"))
    assert [(f.kind, f.key) for f in result.findings] == [("missing-fee-value", "t")]
    assert rows(result) == [("t:fee", "b", D("0.01"), D(1), D(-1), "short")]


def test_transfer__universal_scope_relabels_the_lot():
    events = [buy("b", "2024-01-01", "2", "200", account="A"), move("t", "2024-06-01", "1", "A", "B")]
    result = book(events, Settings(scope="universal"))
    assert lots(result) == [("A", "b", D(1), D(100)), ("B", "b", D(1), D(100))]


def test_transfer__more_than_held_is_an_overspend_finding():
    events = [buy("b", "2024-01-01", "1", "100", account="A"), move("t", "2024-06-01", "3", "A", "B")]
    result = book(events, Settings(scope="account"))
    assert [(f.kind, f.key, f.account, f.asset) for f in result.findings] == [("overspend", "t", "A", "BTC")]
    assert lots(result) == [("B", "b", D(1), D(100)), ("B", "t", D(2), D(0))]


# --- findings, income, opening lots ---------------------------------------------------------

def test_book__overspend_finding_and_zero_basis_remainder():
    events = [buy("b", "2024-01-01", "1", "100"), sell("s", "2024-03-01", "1.5", "300")]
    result = book(events, Settings())
    assert rows(result) == [("s", "b", D(1), D(100), D(100), "short"), ("s", "", D("0.5"), D(0), D(100), "short")]
    [f] = result.findings
    assert (f.kind, f.key, f.account, f.asset, f.time) == ("overspend", "s", "main", "BTC", at("2024-03-01"))
    assert "BTC" in f.message and "main" in f.message


def test_book__deposit_without_basis_is_zero_basis_and_a_finding():
    events = [buy("d1", "2024-01-01", "1", None, kind="deposit"), sell("s", "2024-03-01", "1", "300")]
    result = book(events, Settings())
    assert rows(result) == [("s", "d1", D(1), D(0), D(300), "short")]
    assert [(f.kind, f.key) for f in result.findings] == [("missing-basis", "d1")]


def test_book__opening_lots_cover_a_deposit_without_basis():
    opening = [OpeningLot(account="main", asset="BTC", quantity=D("0.6"), acquired=at("2021-05-01"), basis=D(6000))]
    events = [buy("d1", "2024-01-01", "1", None, kind="deposit"), sell("s", "2024-03-01", "0.6", "30000")]
    result = book(events, Settings(), opening_lots=opening)
    assert rows(result) == [("s", "d1", D("0.6"), D(6000), D(24000), "long")]
    assert result.gains[0].acquired == at("2021-05-01")
    [f] = result.findings  # the uncovered 0.4 still has no basis
    assert (f.kind, f.key) == ("missing-basis", "d1")
    assert lots(result) == [("main", "d1", D("0.4"), D(0))]


def test_book__opening_lot_claimed_by_no_deposit_is_reported():
    opening = [OpeningLot(account="*", asset="ETH", quantity=D(1), acquired=at("2021-05-01"), basis=D(1000))]
    result = book([buy("b", "2024-01-01", "1", "100")], Settings(), opening_lots=opening)
    assert [(f.kind, f.key) for f in result.findings] == [("unclaimed-opening-lot", "opening-lot:0")]


def test_book__income_creates_a_lot_and_an_income_row():
    result = book([buy("i1", "2024-01-01", "0.1", "4", kind="income")], Settings())
    assert [(r.id, r.quantity, r.value) for r in result.income] == [("i1", D("0.1"), D(4))]
    assert lots(result) == [("main", "i1", D("0.1"), D(4))]


def test_open_lots_at__books_the_events_up_to_the_instant():
    events = [buy("b1", "2024-01-01", "1", "100"), buy("b2", "2024-02-01", "1", "200"), sell("s", "2024-03-01", "1", "300")]
    before = open_lots_at(events, Settings(), at("2024-02-15"))
    after = open_lots_at(events, Settings(), at("2024-03-01") + timedelta(seconds=1))
    assert [(lot.id, lot.cost) for lot in before] == [("b1", D(100)), ("b2", D(200))]
    assert [(lot.id, lot.cost) for lot in after] == [("b2", D(200))]


def test_presentation__cents_only_at_the_edge():
    result = book([buy("b", "2024-01-01", "3", "100"), sell("s", "2024-02-01", "1", "50")], Settings())
    assert result.gains[0].cost_basis != cents(result.gains[0].cost_basis)  # exact third kept
    assert cents(result.gains[0].gain) == D("16.67")
