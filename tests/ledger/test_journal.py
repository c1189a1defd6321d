"""The one writer of entries: balanced by construction, proved with properties."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.db import balances, trial_balance
from ledger.journal import Entry, Journal, Leg, LedgerError, UnbalancedEntry, entry_count, posting_count
from ledger.money import D

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
ACCOUNTS = ["Assets:Backpack:main:Spot", "Assets:Backpack:main:Lent", "Liabilities:Backpack:main:Borrowed", "Income:Interest", "Expenses:Fees", "Equity:Trading", "Equity:External"]
ASSETS = ["SOL", "USDC", "BTC", "SOL_USDC_PERP"]

quantity = st.decimals(min_value=D("-1000000"), max_value=D("1000000"), places=8, allow_nan=False, allow_infinity=False)


@st.composite
def balanced_entry(draw, n: int):
    legs = []
    for asset in draw(st.lists(st.sampled_from(ASSETS), min_size=1, max_size=3, unique=True)):
        qs = draw(st.lists(quantity, min_size=1, max_size=4))
        accounts = draw(st.lists(st.sampled_from(ACCOUNTS), min_size=len(qs) + 1, max_size=len(qs) + 1))
        for acc, q in zip(accounts, qs):
            legs.append(Leg(account=acc, asset=asset, quantity=q))
        legs.append(Leg(account=accounts[-1], asset=asset, quantity=-sum(qs, Decimal(0))))
    return Entry(
        key=f"prop:{n}:{draw(st.uuids())}",
        time=T0 + timedelta(seconds=draw(st.integers(0, 10**8))),
        kind="test",
        description="generated",
        legs=tuple(draw(st.permutations(legs))),
        venue_account="main",
        endpoint="test",
        source_key=str(n),
    )


def _entry(key: str, *legs: tuple[str, str, str]) -> Entry:
    return Entry(
        key=key,
        time=T0,
        kind="test",
        description="test",
        legs=tuple(Leg(account=a, asset=s, quantity=D(q)) for a, s, q in legs),
        venue_account="main",
        endpoint="test",
        source_key=key,
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batches=st.lists(st.lists(st.integers(0, 10**6).flatmap(balanced_entry), min_size=1, max_size=8), min_size=1, max_size=5))
def test_journal__any_sequence_of_posted_entries_has_zero_trial_balance(engine, batches):
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM postings")
        conn.exec_driver_sql("DELETE FROM journal_entries")
    posted = 0
    for batch in batches:
        with engine.begin() as conn:
            Journal(conn).post(batch)
        posted += len(batch)
    with engine.connect() as conn:
        assert entry_count(conn) == posted
        tb = trial_balance(conn)
        assert tb and all(v == 0 for v in tb.values()), tb
        # and the per-account balances add up to the same zero, per asset
        per_asset: dict[str, Decimal] = {}
        for (_acc, asset), q in balances(conn).items():
            per_asset[asset] = per_asset.get(asset, Decimal(0)) + q
        assert all(v == 0 for v in per_asset.values())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entry=st.integers(0, 10**6).flatmap(balanced_entry), skew=quantity.filter(lambda q: q != 0))
def test_journal__unbalanced_entry_refused_and_nothing_written(engine, entry, skew):
    first = entry.legs[0]
    broken = Entry(
        key=entry.key + ":broken",
        time=entry.time,
        kind=entry.kind,
        description=entry.description,
        legs=(Leg(account=first.account, asset=first.asset, quantity=first.quantity + skew),) + entry.legs[1:],
        venue_account="main",
        endpoint="test",
        source_key="x",
    )
    with engine.connect() as conn:
        before = (entry_count(conn), posting_count(conn))
    with pytest.raises(UnbalancedEntry) as info:
        with engine.begin() as conn:
            Journal(conn).post([entry, broken])  # the good one is refused with it
    assert info.value.residue == {first.asset: skew}
    with engine.connect() as conn:
        assert (entry_count(conn), posting_count(conn)) == before


def test_journal__entry_with_two_assets_must_balance_each(engine):
    ok = _entry("trade", ("Assets:Spot", "SOL", "1"), ("Equity:Trading", "SOL", "-1"), ("Assets:Spot", "USDC", "-100"), ("Equity:Trading", "USDC", "100"))
    bad = _entry("bad", ("Assets:Spot", "SOL", "1"), ("Assets:Spot", "USDC", "-1"))
    with engine.begin() as conn:
        Journal(conn).post([ok])
    with pytest.raises(UnbalancedEntry, match="does not balance"):
        with engine.begin() as conn:
            Journal(conn).post([bad])
    with engine.connect() as conn:
        assert entry_count(conn) == 1
        assert balances(conn, prefix="Assets:Spot") == {("Assets:Spot", "SOL"): D("1"), ("Assets:Spot", "USDC"): D("-100")}


@pytest.mark.parametrize(
    "legs,match",
    [((), "no postings"), ((("Cash:Wrong", "SOL", "1"), ("Equity:X", "SOL", "-1")), "is not under")],
)
def test_journal__malformed_entry_refused(engine, legs, match):
    with pytest.raises(LedgerError, match=match):
        with engine.begin() as conn:
            Journal(conn).post([_entry("m", *legs)])


def test_journal__float_quantity_refused(engine):
    e = Entry(key="f", time=T0, kind="t", description="d", legs=(Leg(account="Assets:A", asset="X", quantity=0.5),), venue_account="v", endpoint="e", source_key="k")  # type: ignore[arg-type]
    with pytest.raises(LedgerError, match="not Decimal"):
        with engine.begin() as conn:
            Journal(conn).post([e])


def test_journal__duplicate_entry_key_rejected_by_database(engine):
    e = _entry("dup", ("Assets:A", "X", "1"), ("Equity:B", "X", "-1"))
    with engine.begin() as conn:
        Journal(conn).post([e])
    with pytest.raises(Exception):
        with engine.begin() as conn:
            Journal(conn).post([e])
    with engine.connect() as conn:
        assert entry_count(conn) == 1


# Names a LIKE pattern would confuse: case variants and the wildcards ``_`` and ``%``.
TRICKY = ["Assets:Backpack:main:Spot", "Assets:Backpack:Main:Spot", "Assets:Backpack:ma_n:Spot", "Assets:Backpack:maXn:Spot",
          "Assets:Backpack:m%:Lent", "Assets:Backpack:main:Lent", "Expenses:Fees", "Expenses:Fees:Trading", "Expenses:FeesX", "Equity:Trading"]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(legs=st.lists(st.tuples(st.sampled_from(TRICKY), st.sampled_from(ASSETS), quantity, st.integers(0, 5)), min_size=1, max_size=30),
       prefix=st.sampled_from([None, "Expenses:Fees", "Assets:Backpack:ma_n:Spot", "Assets"]),
       starts=st.lists(st.sampled_from(["Assets:Backpack:main:", "Assets:Backpack:ma_n:", "Assets:Backpack:m%:", "Expenses:Fees"]), max_size=2),
       until_day=st.one_of(st.none(), st.integers(0, 5)))
def test_balances__equal_a_plain_sum_of_the_postings_with_names_matched_exactly(engine, legs, prefix, starts, until_day):
    """``balances`` with any filter is the sum of the posted legs per (account, asset) up to ``until``,
    names matched exactly (a ``_``, ``%`` or another case in a name is not a wildcard), on both databases."""
    entries = [Entry(key=f"b:{i}", time=T0 + timedelta(days=day), kind="test", description="d",
                     legs=(Leg(account=acc, asset=asset, quantity=q), Leg(account="Equity:External", asset=asset, quantity=-q)),
                     venue_account="main", endpoint="test", source_key=str(i))
               for i, (acc, asset, q, day) in enumerate(legs)]
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM postings")
        conn.exec_driver_sql("DELETE FROM journal_entries")
        Journal(conn).post(entries)
    until = None if until_day is None else T0 + timedelta(days=until_day)
    expected: dict[tuple[str, str], Decimal] = {}
    for e in entries:
        if until is None or e.time <= until:
            for leg in e.legs:
                if (not prefix or leg.account == prefix or leg.account.startswith(prefix + ":")) \
                        and (not starts or any(leg.account.startswith(s) for s in starts)):
                    expected[(leg.account, leg.asset)] = expected.get((leg.account, leg.asset), Decimal(0)) + leg.quantity
    with engine.connect() as conn:
        got = balances(conn, prefix=prefix, starts=tuple(starts), until=until)
    assert got == expected
    assert list(got) == sorted(got)
