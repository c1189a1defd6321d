"""The gains CSV's fast writer is the csv module's text, whatever the fields hold."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.booking import Gain
from reports.gains import GAINS_COLUMNS, gain_cells, write_gains, write_table

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
texts = st.text(alphabet=st.sampled_from('ab,"\n\r x#:=+-@\t\x00\x1b\u202e'), max_size=6)
decimals = st.builds(lambda n, e: Decimal(n).scaleb(e), st.integers(-(10**12), 10**12), st.integers(-12, 4))


def _row(i: int, a="main", asset="BTC", lot_id=None, disposal_id=None, source=None, q=Decimal("0.5"), p=Decimal("10"), c=Decimal("4")) -> tuple:
    acquired = T0 + timedelta(seconds=i)
    return Gain(a, asset, q, acquired, acquired + timedelta(days=400), p, c, p - c, "long", "hifo", lot_id or f"lot{i}", disposal_id or f"d{i}", source or f"src{i}")


def _same_as_csv_module(tmp: Path, rows: list[tuple]) -> bool:
    write_gains(tmp / "fast.csv", "csv", rows)
    write_table(tmp / "ref.csv", "csv", GAINS_COLUMNS, (gain_cells(g) for g in rows))
    return (tmp / "fast.csv").read_bytes() == (tmp / "ref.csv").read_bytes()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(texts, texts, texts, texts, texts, decimals, decimals, decimals), min_size=0, max_size=8))
def test_write_gains__csv_equals_csv_module(tmp_path_factory, fields):
    rows = [_row(i, a, asset, lot_id, disposal_id, source, q, p, c) for i, (a, asset, lot_id, disposal_id, source, q, p, c) in enumerate(fields)]
    assert _same_as_csv_module(tmp_path_factory.mktemp("csv"), rows)


def test_write_gains__quoting_in_a_later_chunk_only(tmp_path):
    """A field that needs quoting in the second 20,000-line chunk: that chunk goes through the csv
    module, the first stays on the fast path, and the file is still the csv module's text."""
    rows = [_row(i) for i in range(20_005)]
    rows[20_003] = _row(20_003, source='fill "7", odd\nline')
    assert _same_as_csv_module(tmp_path, rows)
    assert b'"fill ""7"", odd\nline"' in (tmp_path / "fast.csv").read_bytes()


def test_write_gains__rows_sharing_a_disposal_id_are_each_checked_and_timed(tmp_path):
    """The fast path takes nothing from an earlier row with the same disposal id: a later row's text
    is checked on its own (a formula in its account is neutralised) and its own time is printed."""
    a, b = _row(0, disposal_id=":"), _row(5, a="=cmd", disposal_id=":")
    assert a.disposed != b.disposed
    assert _same_as_csv_module(tmp_path, [a, b])
    lines = (tmp_path / "fast.csv").read_text().splitlines()
    assert lines[2].startswith("'=cmd,") and "2025-02-04T00:00:05.000000Z" in lines[2]
    # and on the fast path (nothing to neutralise): each row's own disposal time
    c, d = _row(0, disposal_id="dx"), _row(7, disposal_id="dx")
    assert _same_as_csv_module(tmp_path, [c, d])
    assert "2025-02-04T00:00:07.000000Z" in (tmp_path / "fast.csv").read_text().splitlines()[2]


def test_write_gains__formula_and_control_text_is_neutralised(tmp_path):
    """Exchange text that a spreadsheet would run or a terminal would obey is defused in the file;
    negative numbers stay numbers."""
    rows = [_row(0, asset="=HYPERLINK(1)", source="@x", p=Decimal("-5"), c=Decimal("4")), _row(1, a="-main", lot_id="\x1b[31m")]
    assert _same_as_csv_module(tmp_path, rows)
    text = (tmp_path / "fast.csv").read_text()
    assert ",'=HYPERLINK(1)," in text and ",'@x" in text and "\n-main" not in text and "'-main," in text and "\\x1b[31m" in text
    assert ",-5,4,-9," in text


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 12, 31), timezones=st.just(timezone.utc)),
    st.sampled_from((("uk", "Europe/London"), ("uk", "UTC"), ("generic", "UTC"), ("us", "America/New_York"), ("de", "Europe/Berlin"))),
)
def test_tax_year__against_an_independent_calendar_rule(t, rule):
    """The tax year of an instant is the year of its local date in the tax zone, the UK's starting on
    6 April: checked against zoneinfo directly, around 5/6 April and the new year in each zone."""
    from zoneinfo import ZoneInfo

    from ledger.booking import Settings

    jurisdiction, zone = rule
    settings = Settings(jurisdiction=jurisdiction, tax_timezone=zone)
    for moment in (t, t.replace(month=4, day=5, hour=23), t.replace(month=4, day=6, hour=0), t.replace(month=12, day=31, hour=23, minute=30)):
        local = moment.astimezone(ZoneInfo(zone)).date()
        expected = local.year - (1 if jurisdiction == "uk" and (local.month < 4 or (local.month == 4 and local.day < 6)) else 0)
        assert settings.tax_year(moment) == expected
        start, end = settings.year_bounds(expected)
        assert start <= moment < end
