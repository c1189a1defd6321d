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
