"""TAX-RULES.md §4-6 worked cases (CA-1, CA-2, AU-1, AU-2 holding test, JP-1) booked by the one engine,
and the versioned rules of the jurisdiction table."""

from __future__ import annotations

from datetime import date

import pytest

from ledger.booking import Settings, book, jurisdiction
from ledger.booking.model import SettingsError
from ledger.money import D
from tests.ledger.booking.booking_scenarios import buy, move, sell

CA = Settings(jurisdiction="ca")


def test_ca1_acb_average_across_accounts():
    """CA-1: 10 @ 100 and 10 @ 200 (in two accounts: identical property is one pool); sell 5 @ 300."""
    r = book([buy("b1", "2024-01-10", "10", "1000", account="main"), buy("b2", "2024-02-10", "10", "2000", account="sub"),
              sell("s1", "2024-03-10", "5", "1500", account="main")], CA)
    (g,) = r.gains
    assert (g.proceeds, g.cost_basis, g.gain, g.term, g.method) == (D(1500), D(750), D(750), "acb", "acb")
    (lot,) = r.open_lots
    assert (lot.account, lot.quantity, lot.cost) == ("*", D(15), D(2250))
    assert lot.cost / lot.quantity == D(150)  # the unit cost after a disposal is unchanged


def test_ca2_superficial_loss_partial():
    """CA-2: buy 10 @ 100 (1 Jan), sell 10 @ 60 (1 Mar), buy 4 @ 65 (15 Mar), still held on 31 Mar."""
    r = book([buy("b1", "2024-01-01", "10", "1000"), sell("s1", "2024-03-01", "10", "600"), buy("b2", "2024-03-15", "4", "260")], CA)
    by_term = {g.term: g for g in r.gains}
    assert set(by_term) == {"superficial-loss", "acb"}
    assert by_term["superficial-loss"].gain == D(-160)  # denied
    assert by_term["acb"].gain == D(-240)  # allowed
    assert sum(g.proceeds for g in r.gains) == 600 and sum(g.cost_basis for g in r.gains) == 1000
    (lot,) = r.open_lots
    assert (lot.quantity, lot.cost, lot.cost / lot.quantity) == (D(4), D(420), D(105))


def test_ca2_variant_sold_again_before_the_window_ends_denies_nothing():
    r = book([buy("b1", "2024-01-01", "10", "1000"), sell("s1", "2024-03-01", "10", "600"), buy("b2", "2024-03-15", "4", "260"),
              sell("s2", "2024-03-20", "4", "260")], CA)
    assert {g.term for g in r.gains} == {"acb"}
    assert [g.gain for g in r.gains] == [D(-400), D(0)]
    assert r.open_lots == []


def test_ca_window_is_30_days_each_side_on_the_toronto_day():
    # A buy-back 31 days later is outside the window: the loss is allowed in full.
    r = book([buy("b1", "2024-01-01", "10", "1000"), sell("s1", "2024-03-01", "10", "600"), buy("b2", "2024-04-01", "4", "260")], CA)
    assert [g.term for g in r.gains] == ["acb"]
    # 30 days later is inside.
    r = book([buy("b1", "2024-01-01", "10", "1000"), sell("s1", "2024-03-01", "10", "600"), buy("b2", "2024-03-31", "4", "260")], CA)
    assert sorted(g.term for g in r.gains) == ["acb", "superficial-loss"]


def test_ca_a_unit_substitutes_for_one_disposed_unit_only():
    # Two loss disposals share one buy-back of 4: the earlier takes it, the later loss is allowed.
    r = book([buy("b1", "2024-01-01", "20", "2000"), sell("s1", "2024-03-01", "10", "600"), sell("s2", "2024-03-02", "10", "600"),
              buy("b2", "2024-03-15", "4", "260")], CA)
    denied = {g.disposal_id: g.gain for g in r.gains if g.term == "superficial-loss"}
    assert denied == {"s1": D(-160)}
    (lot,) = r.open_lots
    assert lot.cost == D(420)


def test_ca_gain_is_never_superficial():
    r = book([buy("b1", "2024-01-01", "10", "1000"), sell("s1", "2024-03-01", "5", "900"), buy("b2", "2024-03-15", "4", "260")], CA)
    assert [g.term for g in r.gains] == ["acb"]


def test_ca_rejects_other_methods():
    with pytest.raises(SettingsError, match="requires method 'acb'"):
        Settings(jurisdiction="ca", method="fifo")


@pytest.mark.parametrize(("sold", "term"), [("2024-07-01", "short"), ("2024-07-02", "long")])
def test_au1_twelve_months_excluding_both_days(sold, term):
    """AU-1: bought 1 Jul 2023; the first day the discount applies is 2 Jul 2024 (Sydney day)."""
    r = book([buy("b1", "2023-07-01T02:00:00+10:00", "1", "30000"), sell("s1", f"{sold}T12:00:00+10:00", "1", "50000")], Settings(jurisdiction="au"))
    (g,) = r.gains
    assert (g.gain, g.term) == (D(20000), term)


def test_au_income_year_is_1_july_in_sydney():
    au = jurisdiction("au")
    assert au.tax_year(datetime_at("2024-06-30T13:59:59+00:00")) == 2023  # 23:59:59 30 June in Sydney (AEST)
    assert au.tax_year(datetime_at("2024-06-30T14:00:00+00:00")) == 2024  # 1 July 00:00 in Sydney
    assert au.year_label(2024) == "2024/25"


def test_au_allows_specific_identification_orders_not_lifo():
    assert Settings(jurisdiction="au", method="hifo").method == "hifo"
    with pytest.raises(SettingsError):
        Settings(jurisdiction="au", method="lifo")


JP_EVENTS = [buy("b1", "2024-01-15", "1", "1000000"), sell("s1", "2024-03-15", "0.5", "750000"), buy("b2", "2024-06-15", "1", "2000000"),
             sell("s2", "2024-12-15", "1", "2500000")]


def test_jp1_total_average():
    r = book(JP_EVENTS, Settings(jurisdiction="jp"))
    assert sum(g.gain for g in r.gains) == D(1000000)
    assert sum(g.cost_basis for g in r.gains) == D(2250000)
    assert {g.cost_basis / g.quantity for g in r.gains} == {D(1500000)}
    (lot,) = r.open_lots
    assert (lot.quantity, lot.cost) == (D("0.5"), D(750000))


def test_jp1_moving_average():
    r = book(JP_EVENTS, Settings(jurisdiction="jp", method="moving-average"))
    march, december = r.gains
    assert march.gain == D(250000)
    assert abs(december.gain - D("833333.33")) < D("0.01")
    assert abs(sum(g.gain for g in r.gains) - D("1083333.33")) < D("0.01")
    (lot,) = r.open_lots
    assert abs(lot.cost - D("833333.33")) < D("0.01")
    # quantity and cost are conserved exactly
    assert lot.cost + sum(g.cost_basis for g in r.gains) == D(3000000)


def test_jp_total_average_is_per_calendar_year_in_tokyo():
    # 31 Dec 20:00 UTC is 1 Jan in Tokyo: that buy belongs to 2025's average, not 2024's.
    ev = [buy("b1", "2024-01-15", "1", "100"), sell("s1", "2024-06-15", "0.5", "100"), buy("b2", "2024-12-31T20:00:00+00:00", "1", "400"),
          sell("s2", "2025-02-01", "0.5", "300")]
    r = book(ev, Settings(jurisdiction="jp"))
    s1, s2 = r.gains
    assert s1.cost_basis == D(50)  # 2024: unit 100
    assert s2.cost_basis == D(150)  # 2025: (50 carried + 400) / 1.5 = 300 per unit
    assert s2.lot_id.endswith(":2025")


def test_jp_moving_average_election_by_year():
    ev = [buy("b1", "2024-01-15", "1", "100"), sell("s1", "2024-03-15", "0.5", "100"), buy("b2", "2024-06-15", "1", "400"),
          sell("s2", "2024-09-15", "0.5", "300")]
    total = book(ev, Settings(jurisdiction="jp"))
    moving = book(ev, Settings(jurisdiction="jp", method="total-average", method_by_year={2024: "moving-average"}))
    # total average: (100 + 400) / 2 for both; moving: 100 for March, (50 + 400) / 1.5 = 300 for September
    assert [g.cost_basis for g in total.gains] == [D(125), D(125)]
    assert [g.cost_basis for g in moving.gains] == [D(50), D(150)]


@pytest.mark.parametrize(("rounding", "unit"), [("exact", None), ("up", D(1000001)), ("half-up", D(1000000))])
def test_jp_unit_cost_rounding_is_a_switch(rounding, unit):
    # 3 units for 3,000,001.2: exact unit 1,000,000.4
    ev = [buy("b1", "2024-01-15", "3", "3000001.2"), sell("s1", "2024-03-15", "1", "2000000")]
    r = book(ev, Settings(jurisdiction="jp", unit_cost_rounding=rounding))
    (g,) = r.gains
    assert g.cost_basis == (D("1000000.4") if unit is None else unit)
    (lot,) = r.open_lots
    assert lot.cost == (D("2000000.8") if unit is None else 2 * unit)


def test_jp_overspend_is_zero_basis_with_a_finding():
    r = book([buy("b1", "2024-01-15", "1", "100"), sell("s1", "2024-03-15", "2", "400")], Settings(jurisdiction="jp"))
    assert [f.kind for f in r.findings] == ["overspend"]
    assert sum(g.quantity for g in r.gains) == 2 and sum(g.cost_basis for g in r.gains) == 100


def test_pooled_stages_ignore_own_transfers_and_book_the_fee():
    ev = [buy("b1", "2024-01-15", "2", "200", account="main"), move("t1", "2024-02-01", "1", "main", "sub", fee="0.1", fee_value="15"),
          sell("s1", "2024-03-15", "1", "150", account="sub")]
    for s in (Settings(jurisdiction="ca"), Settings(jurisdiction="jp")):
        r = book(ev, s)
        assert [g.disposal_id for g in r.gains] == ["t1:fee", "s1"]
        assert sum(g.cost_basis for g in r.gains) + sum(l.cost for l in r.open_lots) == 200
        assert sum(l.quantity for l in r.open_lots) == D("0.9")


def datetime_at(s):
    from datetime import datetime

    return datetime.fromisoformat(s)


# -- versioned rules -------------------------------------------------------------------------------
def test_versioned_rules_by_year():
    de, us, uk = jurisdiction("de"), jurisdiction("us"), jurisdiction("uk")
    assert (de.rule("freigrenze_23", 2023), de.rule("freigrenze_23", 2024), de.rule("freigrenze_23", 2031)) == (D(600), D(1000), D(1000))
    assert (us.rule("per_account", 2024), us.rule("per_account", 2025)) == (False, True)
    assert us.rule("form_8949_boxes", 2023)["none"] == ("C", "F") and us.rule("form_8949_boxes", 2025)["none"] == ("I", "L")
    assert us.per_account_from == date(2025, 1, 1) and us.rule("per_account", us.per_account_from.year) and not us.rule("per_account", us.per_account_from.year - 1)
    assert (uk.rule("annual_exempt_amount", 2023), uk.rule("annual_exempt_amount", 2024)) == (D(6000), D(3000))
    with pytest.raises(KeyError):
        de.rule("freigrenze_23", 1999)
    with pytest.raises(KeyError):
        de.rule("no such rule", 2024)


def test_every_jurisdiction_names_its_currency_zone_and_methods():
    from ledger.booking import JURISDICTIONS

    for name, j in JURISDICTIONS.items():
        assert j.default_method in j.allowed_methods, name
        Settings(jurisdiction=name)  # the defaults are valid settings
    assert {n: j.currency for n, j in JURISDICTIONS.items() if n in ("ca", "au", "jp")} == {"ca": "CAD", "au": "AUD", "jp": "JPY"}
