"""TAX-RULES.md §1 (United States): US-1..US-5, the per-account rule and the safe harbor."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from tests.ledger.booking.booking_scenarios import at, buy, by_term, lots, move, rows, sell, total_gain
from ledger.booking import Settings, book
from ledger.booking.safeharbor import SAFE_HARBOR_AS_HELD, SAFE_HARBOR_RULE, SAFE_HARBOR_UNIT_BY_UNIT
from ledger.money import D

US1_EVENTS = [
    buy("b1", "2024-01-10", "1", "100"),
    buy("b2", "2024-02-10", "1", "300"),
    buy("b3", "2024-03-10", "1", "200"),
    sell("s1", "2025-02-01", "1.5", "375"),
]

# US-1: method -> (rows (lot, quantity, cost, gain, term), total)
US1 = {
    "fifo": ([("b1", "1", "100", "150", "long"), ("b2", "0.5", "150", "-25", "short")], "125"),
    "lifo": ([("b3", "1", "200", "50", "short"), ("b2", "0.5", "150", "-25", "short")], "25"),
    "hifo": ([("b2", "1", "300", "-50", "short"), ("b3", "0.5", "100", "25", "short")], "-25"),
    "lofo": ([("b1", "1", "100", "150", "long"), ("b3", "0.5", "100", "25", "short")], "175"),
}


@pytest.mark.parametrize("method", sorted(US1))
def test_book__us1_method_ordering_one_wallet(method):
    expected_rows, expected_total = US1[method]
    result = book(US1_EVENTS, Settings(method=method, jurisdiction="us"))
    assert rows(result) == [("s1", lot, D(q), D(c), D(g), term) for lot, q, c, g, term in expected_rows]
    assert total_gain(result) == D(expected_total)
    assert {g.method for g in result.gains} == {method}
    assert not result.findings


def test_book__us1_fifo_split_by_term():
    result = book(US1_EVENTS, Settings(method="fifo", jurisdiction="us"))
    assert by_term(result) == {"long": D("150"), "short": D("-25")}


US2_EVENTS = [
    buy("a1", "2025-07-01", "1", "10000", account="ExA"),
    buy("b1", "2025-08-01", "1", "20000", account="ExB"),
    buy("c1", "2025-09-01", "1", "30000", account="ExC"),
    sell("c-sell", "2025-10-01", "1", "40000", account="ExC"),
]


def test_book__us2_universal_fifo_takes_oldest_lot_anywhere():
    result = book(US2_EVENTS, Settings(method="fifo", jurisdiction="generic", scope="universal"))
    assert rows(result) == [("c-sell", "a1", D(1), D(10000), D(30000), "short")]


def test_book__us2_per_wallet_fifo_only_the_selling_account():
    result = book(US2_EVENTS, Settings(method="fifo", jurisdiction="generic", scope="account"))
    assert rows(result) == [("c-sell", "c1", D(1), D(30000), D(10000), "short")]


def test_book__us2_us_jurisdiction_is_per_account_in_2025_even_if_universal_asked():
    result = book(US2_EVENTS, Settings(method="fifo", jurisdiction="us", scope="universal"))
    assert total_gain(result) == D(10000)


US3_EVENTS = [
    buy("a1", "2024-01-10", "1", "100", account="ExA"),
    buy("b1", "2024-06-01", "1", "300", account="ExB"),
    move("t1", "2025-02-01", "1", "ExA", "ExB"),
    sell("s1", "2025-03-01", "1", "500", account="ExB"),
]


def test_book__us3_transfer_keeps_basis_and_date_fifo():
    result = book(US3_EVENTS, Settings(method="fifo", jurisdiction="us"))
    assert rows(result) == [("s1", "a1", D(1), D(100), D(400), "long")]
    assert result.gains[0].acquired == at("2024-01-10")
    assert lots(result) == [("ExB", "b1", D(1), D(300))]


def test_book__us3_transfer_keeps_basis_per_wallet_hifo():
    result = book(US3_EVENTS, Settings(method="hifo", jurisdiction="us"))
    assert rows(result) == [("s1", "b1", D(1), D(300), D(200), "short")]
    assert lots(result) == [("ExB", "a1", D(1), D(100))]


def test_book__us4_crypto_fee_total_and_split_presentation():
    # Presentation: the sale's amount realised is net of the fee's value (200 - 2), and the
    # 0.01 BTC fee is its own disposal at market value (0.01 x 200 = 2).
    events = [
        buy("b1", "2024-01-10", "2", "210"),  # 2 @ 100 plus a $10 fee: basis 105 each
        sell("s1", "2024-03-01", "1", "198"),
        sell("s1:fee", "2024-03-01", "0.01", "2", kind="fee"),
    ]
    result = book(events, Settings(method="fifo", jurisdiction="us"))
    assert total_gain(result) == D("93.95")  # 200 - 1.01 x 105, RP2's single-row figure
    assert rows(result) == [
        ("s1", "b1", D(1), D(105), D("93.00"), "short"),
        ("s1:fee", "b1", D("0.01"), D("1.05"), D("0.95"), "short"),
    ]
    assert lots(result) == [("main", "b1", D("0.99"), D("103.95"))]


@pytest.mark.parametrize(
    ("sold", "term"),
    [("2025-01-09", "short"), ("2025-01-10", "short"), ("2025-01-11", "long")],
    ids=["day-before-anniversary", "on-anniversary", "day-after-anniversary"],
)
def test_book__us5_holding_period_by_calendar_anniversary(sold, term):
    result = book([buy("b1", "2024-01-10", "1", "100"), sell("s1", sold, "1", "150")], Settings(jurisdiction="us"))
    assert [g.term for g in result.gains] == [term]


def test_book__us_safe_harbor_reassigns_basis_relieved_across_accounts():
    # 2024, universal FIFO: ExC's sale relieves ExA's older lot. On 2025-01-01 ExA holds the
    # unit, ExC holds none: ExC's remaining lot (basis 300) is allocated to ExA.
    events = [
        buy("a1", "2024-01-10", "1", "100", account="ExA"),
        buy("c1", "2024-02-10", "1", "300", account="ExC"),
        sell("c-sell", "2024-06-01", "1", "200", account="ExC"),
        sell("a-sell", "2025-03-01", "1", "500", account="ExA"),
    ]
    result = book(events, Settings(method="fifo", jurisdiction="us", scope="universal"))
    assert rows(result) == [
        ("c-sell", "a1", D(1), D(100), D(100), "short"),
        ("a-sell", "c1", D(1), D(300), D(200), "long"),
    ]
    [record] = result.allocations
    assert (record.time, record.effective) == (date(2025, 1, 1), datetime(2025, 1, 1, tzinfo=timezone.utc))
    assert (record.account, record.asset, record.quantity, record.basis) == ("ExA", "BTC", D(1), D(300))
    assert (record.method, record.rule) == (SAFE_HARBOR_UNIT_BY_UNIT, SAFE_HARBOR_RULE)
    assert [(lot.id, lot.account, lot.acquired) for lot in record.lots] == [("c1", "ExA", at("2024-02-10"))]


def test_book__us_safe_harbor_record_as_held_when_already_per_account():
    result = book(US3_EVENTS, Settings(method="fifo", jurisdiction="us", scope="account"))
    assert [(r.account, r.quantity, r.basis, r.method) for r in result.allocations] == [
        ("ExA", D(1), D(100), SAFE_HARBOR_AS_HELD),
        ("ExB", D(1), D(300), SAFE_HARBOR_AS_HELD),
    ]


def test_book__us_no_safe_harbor_record_when_history_ends_before_2025():
    result = book(US3_EVENTS[:2], Settings(jurisdiction="us"))
    assert result.allocations == []


def test_book__us_method_by_year_switches_at_the_tax_year():
    events = [
        buy("b1", "2024-01-10", "1", "100"),
        buy("b2", "2024-02-10", "1", "300"),
        buy("b3", "2024-03-10", "1", "200"),
        sell("s2024", "2024-12-01", "1", "250"),
        sell("s2025", "2025-02-01", "1", "250"),
    ]
    result = book(events, Settings(method="fifo", method_by_year={2025: "hifo"}, jurisdiction="us"))
    assert [(g.disposal_id, g.lot_id, g.method) for g in result.gains] == [("s2024", "b1", "fifo"), ("s2025", "b2", "hifo")]


def test_book__us_wash_sale_rule_is_off_for_crypto():
    # TAX-RULES §1.4: loss fully allowed; the buy-back's basis is its purchase price.
    events = [buy("b1", "2025-01-10", "1", "100"), sell("s1", "2025-02-01", "1", "60"), buy("b2", "2025-02-10", "1", "65")]
    result = book(events, Settings(jurisdiction="us"))
    assert total_gain(result) == D(-40)
    assert lots(result) == [("main", "b2", D(1), D(65))]
