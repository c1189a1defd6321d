"""reports.rowstore.RowStore: a list of rows on disk reads back as the list it was given."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from ledger.booking import Gain
from reports.rowstore import RowStore


def _gain(i: int) -> Gain:
    t = datetime(2025, 1, 1, tzinfo=timezone.utc)
    return Gain("main", "BTC", Decimal(f"0.{i:09d}"), t, t, Decimal(i) / 7, Decimal(i), Decimal(i) / 7 - Decimal(i), "short", "fifo",
                f"lot{i}", f"d{i}#out", f"d{i}")


def test_rowstore__reads_back_in_order_across_head_chunks_and_buffer(monkeypatch):
    monkeypatch.setattr(RowStore, "CHUNK", 7)
    rows = [_gain(i) for i in range(53)]
    store = RowStore(head=5)
    store.extend(rows[:3])
    store.append(rows[3])
    for i in range(4, 53, 6):
        store.extend(rows[i:i + 6])
    assert len(store) == 53 and bool(store) and store._file is not None  # some rows went to disk
    assert list(store) == rows and list(store) == rows  # read as often as asked
    assert store[:5] == rows[:5] and store[:20] == rows[:20] and store[10:30:3] == rows[10:30:3]
    assert store[0] == rows[0] and store[40] == rows[40] and store[-1] == rows[-1]
    assert [g.proceeds for g in store] == [g.proceeds for g in rows]  # exact decimals back
    store.close()
    assert not RowStore()


def test_rowstore__marshal_codec_round_trips_gains_and_fee_rows_exactly(monkeypatch):
    from reports.report import FeeRow
    from reports.rowstore import TupleCodec

    monkeypatch.setattr(RowStore, "CHUNK", 4)
    rows = [_gain(i) for i in range(30)] + [_gain(7)._replace(quantity=Decimal("1E-8"), lot_id="")]
    store = RowStore(head=3, codec=TupleCodec(Gain))
    store.extend(rows)
    back = list(store)
    assert back == rows and all(type(g) is Gain for g in back)
    assert str(back[-1].quantity) == "1E-8" and back[5].acquired.utcoffset().total_seconds() == 0
    t = datetime(2025, 3, 1, 12, 30, 1, 123456, tzinfo=timezone.utc)
    fees = [FeeRow(t, "main", "Trading", "USDC", Decimal("0.1"), None, None, f"k{i}", None if i % 2 else i) for i in range(9)]
    fs = RowStore(head=2, codec=TupleCodec(FeeRow))
    for f in fees:
        fs.append(f)
    assert list(fs) == fees


def test_rowstore__without_spill_keeps_the_head_counts_all_and_refuses_a_full_read(monkeypatch):
    import pytest

    monkeypatch.setattr(RowStore, "CHUNK", 4)
    rows = [_gain(i) for i in range(25)]
    store = RowStore(head=6, spill=False)
    store.extend(rows[:10])
    for r in rows[10:]:
        store.append(r)
    assert len(store) == 25 and store._file is None  # nothing written
    assert store[:6] == rows[:6] and store[2] == rows[2]
    with pytest.raises(RuntimeError, match="first 6 of 25"):
        list(store)
    small = RowStore(head=6, spill=False)
    small.extend(rows[:5])
    assert list(small) == rows[:5]  # all of it fits the head: a full read is the list


def test_rowstore__column_chunks_are_the_stored_form_in_chunks_of_at_most_CHUNK_rows(monkeypatch):
    from reports.rowstore import TupleCodec

    monkeypatch.setattr(RowStore, "CHUNK", 4)
    rows = [_gain(i) for i in range(30)]
    store = RowStore(head=3, codec=TupleCodec(Gain))
    store.extend(rows)  # 27 rows past the head at once: written as 7 chunks, not one
    chunks = list(store.column_chunks())
    assert [len(c[0]) for c in chunks] == [3, 4, 4, 4, 4, 4, 4, 3]
    assert store.fields == Gain._fields and all(len(c) == len(Gain._fields) for c in chunks)
    proceeds = [v for c in chunks for v in c[5]]
    assert proceeds == [str(g.proceeds) for g in rows]  # decimals as their exact text
    acquired = [v for c in chunks for v in c[3]]
    assert acquired == [(g.acquired - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1) for g in rows]
