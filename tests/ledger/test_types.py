"""Exactness of decimal columns on SQLite and PostgreSQL (never through float)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ledger.journal import Entry, Journal, Leg
from ledger.money import D, MoneyError
from ledger.schema import Posting
from ledger.types import ExactDecimal

# 20 integer digits and 18 fractional digits, signed.
WIDE = st.builds(
    lambda sign, i, f: D(f"{sign}{i}.{f:018d}"),
    st.sampled_from(["", "-"]),
    st.integers(min_value=0, max_value=10**20 - 1),
    st.integers(min_value=0, max_value=10**18 - 1),
)

EXTREMES = [
    D("99999999999999999999.999999999999999999"),
    D("-99999999999999999999.999999999999999999"),
    D("0.000000000000000001"),
    D("12345678901234567890.123456789012345678"),
    D("0.1"),  # not representable in binary floating point
    D("1.50"),  # trailing zero kept
    D("3826.8888888888888888888888889"),  # a real entryPrice with 25 fractional digits
]


def _roundtrip(engine, values: list[Decimal]) -> list[Decimal]:
    t = datetime(2025, 1, 1, tzinfo=timezone.utc)
    entries = [
        Entry(
            key=f"rt:{i}:{v}",
            time=t,
            kind="test",
            description="round trip",
            legs=(Leg(account="Assets:Test", asset="X", quantity=v), Leg(account="Equity:Test", asset="X", quantity=-v)),
            venue_account="t",
            endpoint="test",
            source_key=str(i),
        )
        for i, v in enumerate(values)
    ]
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM postings")
        conn.exec_driver_sql("DELETE FROM journal_entries")
        Journal(conn).post(entries)
    with engine.connect() as conn:
        rows = conn.execute(select(Posting.c.quantity).order_by(Posting.c.id)).scalars().all()
    return rows[0::2]


def test_exact_decimal__extremes_round_trip(engine):
    got = _roundtrip(engine, EXTREMES)
    assert got == EXTREMES
    assert [str(g) for g in got] == [str(v) for v in EXTREMES]
    assert all(type(g) is Decimal for g in got)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(WIDE, min_size=1, max_size=20))
def test_exact_decimal__wide_values_round_trip(engine, values):
    assert _roundtrip(engine, values) == values


def test_exact_decimal__table_write_and_read(engine):
    """Through the ledger's own tables: the column types keep every digit and the UTC instant."""
    from ledger.schema import Account, Asset, JournalEntry

    with engine.begin() as conn:
        acc = conn.execute(Account.insert().values(name="Assets:X", type="Assets").returning(Account.c.id)).scalar_one()
        ast = conn.execute(Asset.insert().values(symbol="X").returning(Asset.c.id)).scalar_one()
        e = conn.execute(JournalEntry.insert().values(entry_key="core:1", timestamp=datetime(2025, 5, 1, 12, 0, 0, 123456, tzinfo=timezone.utc), kind="t",
                                                      description="d", venue_account="v", endpoint="e", source_key="k").returning(JournalEntry.c.id)).scalar_one()
        conn.execute(Posting.insert().values(entry_id=e, account_id=acc, asset_id=ast, quantity=EXTREMES[0], unit_price=D("0.000000000000000001")))
    with engine.connect() as conn:
        p = conn.execute(select(Posting)).one()
        assert p.quantity == EXTREMES[0] and str(p.quantity) == str(EXTREMES[0])
        assert p.unit_price == D("0.000000000000000001")
        got = conn.execute(select(JournalEntry.c.timestamp)).scalar_one()
        assert got == datetime(2025, 5, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
        assert got.tzinfo is not None


def test_exact_decimal__refuses_float():
    with pytest.raises(MoneyError):
        ExactDecimal().process_bind_param(0.1, _Dialect("sqlite"))


class _Dialect:
    def __init__(self, name):
        self.name = name


# Aware instants in any zone (offsets to the minute, both sides of UTC), microseconds included.
INSTANTS = st.builds(
    lambda naive, minutes: naive.replace(tzinfo=timezone(timedelta(minutes=minutes))),
    st.datetimes(min_value=datetime(2001, 1, 2), max_value=datetime(2099, 12, 30)),
    st.integers(min_value=-14 * 60 + 1, max_value=14 * 60 - 1),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(times=st.lists(INSTANTS, min_size=1, max_size=12, unique_by=lambda t: t.astimezone(timezone.utc)))
def test_stored_times__bound_and_read_by_raw_queries_round_trip_as_aware_utc(engine, times):
    """``db_time`` binds as the column stores it and ``utc_from_db`` parses what a raw query returns: the
    same instants, aware UTC, on both databases whatever the session's zone; the same values the column
    type reads; and a raw query's ORDER BY and range filter on the bound values agree with time order."""
    from sqlalchemy import text

    from ledger.schema import SyncState
    from ledger.types import db_time, utc_from_db

    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL TIME ZONE 'Asia/Kolkata'"))
        conn.execute(text("DELETE FROM sync_state"))
        for i, t in enumerate(times):
            conn.execute(text("INSERT INTO sync_state (venue_account, endpoint, high_water, records) VALUES (:a, 'e', :t, 0)"), {"a": f"a{i}", "t": db_time(conn, t)})
        raw = conn.execute(text("SELECT venue_account, high_water FROM sync_state ORDER BY high_water")).all()
        typed = dict(conn.execute(select(SyncState.c.venue_account, SyncState.c.high_water)).all())
        middle = sorted(times)[len(times) // 2]
        after = {a for (a,) in conn.execute(text("SELECT venue_account FROM sync_state WHERE high_water >= :t"), {"t": db_time(conn, middle)})}
    got = {a: utc_from_db(v) for a, v in raw}
    for i, t in enumerate(times):
        assert got[f"a{i}"] == t and got[f"a{i}"].tzinfo is timezone.utc
        assert typed[f"a{i}"] == t
    assert [utc_from_db(v) for _a, v in raw] == sorted(times)
    assert after == {f"a{i}" for i, t in enumerate(times) if t >= middle}
