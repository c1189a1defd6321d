"""The public books API (ledger/books.py): settings resolution, booking the ledger, tax years."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from ledger.books import book_ledger, resolve_settings
from ledger.booking import SettingsError
from ledger.money import D
from tests.ledger.test_basis import at, buy, post, sell


@dataclass(frozen=True)
class Reporting:
    currency: str = "USD"
    jurisdiction: str = "us"
    method: str = "fifo"
    scope: str | None = None
    stablecoin_policy: str = "par"
    opening_lots: str | None = None
    transfer_fee_policy: str = "disposal"
    method_by_year: dict = field(default_factory=dict)


def test_resolve_settings_jurisdiction_brings_its_defaults():
    s = resolve_settings(Reporting(method="hifo"), jurisdiction="uk")
    assert (s.booking.method, s.booking.scope, s.tax_zone) == ("uk", "universal", "Europe/London")
    assert resolve_settings(Reporting(method="hifo")).booking.method == "hifo"
    assert resolve_settings(Reporting(), method="lifo").booking.method == "lifo"
    with pytest.raises(SettingsError):
        resolve_settings(Reporting(), jurisdiction="de", method="hifo")


def test_uk_tax_year_edges():
    s = resolve_settings(Reporting(jurisdiction="uk", method="uk"))
    assert s.tax_year(at("2025-04-05T22:59:59.999999")) == 2024  # 23:59:59 BST on 5 April
    assert s.tax_year(at("2025-04-05T23:00:00")) == 2025  # midnight BST: 6 April
    start, end = s.year_bounds(2025)
    assert (start, end) == (at("2025-04-05T23:00:00"), at("2026-04-05T23:00:00"))


def test_book_ledger_gains_by_year_and_until(engine):
    post(engine,
         buy("b1", "2024-03-01T10:00:00", "1", "100"),
         sell("s1", "2024-12-31T23:00:00", "0.5", "80"),
         sell("s2", "2025-01-02T10:00:00", "0.5", "30"))
    s = resolve_settings(Reporting())
    with engine.connect() as conn:
        books = book_ledger(conn, s)
        assert [g.gain for g in books.gains_in(2024)] == [D("30")]
        assert [g.gain for g in books.gains_in(2025)] == [D("-20")]
        early = book_ledger(conn, s, until=at("2024-12-31T23:00:00"))
    assert [(lot.quantity, lot.cost) for lot in early.open_lots] == [(D("0.5"), D("50"))]


def test_book_ledger_without_gains_books_the_same_and_the_rollforward_holds_only_its_period(engine):
    """``gains=False`` (the lots at a date, income, allocations) books exactly what the full booking does
    and keeps no gain; ``basis_rollforward``, which keeps only its period's gains, equals the roll-forward
    computed from every gain of the full booking."""
    from ledger.books import basis_rollforward
    from ledger.reconcile import basis_rollforward as rollforward_from_gains

    post(engine,
         buy("b1", "2024-03-01T10:00:00", "1", "100"),
         buy("b2", "2024-06-01T10:00:00", "2", "300"),
         sell("s1", "2024-12-31T23:00:00", "0.5", "80"),
         sell("s2", "2025-01-02T10:00:00", "0.5", "30"),
         buy("b3", "2025-03-01T10:00:00", "1", "90"),
         sell("s3", "2025-06-01T10:00:00", "4", "600"))  # more than held: an overspend finding
    s = resolve_settings(Reporting(method="hifo"))
    with engine.connect() as conn:
        for until in (None, at("2025-01-01T00:00:00"), at("2025-03-01T10:00:00")):
            full = book_ledger(conn, s, until=until)
            bare = book_ledger(conn, s, until=until, gains=False)
            assert full.gains and bare.gains == []
            assert (bare.open_lots, bare.income, bare.findings, bare.allocations) == (full.open_lots, full.income, full.findings, full.allocations)
        assert any(f.kind == "overspend" for f in book_ledger(conn, s, gains=False).findings)
        for end in (at("2025-12-31T00:00:00"), at("2025-03-01T10:00:00")):
            start = at("2025-01-01T00:00:00")
            full = book_ledger(conn, s, until=end)
            expected = rollforward_from_gains(start, end, book_ledger(conn, s, until=start).open_lots, full.open_lots, full.gains)
            assert basis_rollforward(conn, s, end) == expected
            assert expected.relieved > 0
