"""The bridge's read in a child process (ledger/sqlite_reader.py) gives what the read in process gives."""

from __future__ import annotations

import io

import pytest

import ledger.basis as basis
from ledger.basis import BridgeSettings, booking_rows
from ledger.money import D
from ledger.posting import cash, deposit, lent, withdrawal
from ledger.sqlite_reader import read_frames
from tests.ledger.test_basis import buy, post, priced, sell, src


@pytest.fixture
def sqlite_engine(tmp_path):
    from ledger.db import make_engine, upgrade

    eng = make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    upgrade(eng)
    yield eng
    eng.dispose()


def _mixed_ledger(engine, n: int = 30) -> None:
    """Conversions (one unpriced, one with a fee in a third asset), income, an outside round trip, a
    sub-account transfer, across two venue accounts, posted out of time order."""
    entries = []
    for i in range(n):
        day = f"2024-01-{1 + i % 28:02d}T{i % 24:02d}:00:00"
        entries.append(buy(f"b{i}", day, "0.5", str(100 + i)))
        entries.append(sell(f"s{i}", day.replace(":00:00", ":30:00"), "0.25", str(60 + i), acct="sub" if i % 3 == 0 else "main"))
    entries.append(buy("fee3", "2024-02-01T00:00:00", "1", "100", fee="2", fee_asset="SOL"))
    unpriced = buy("nopx", "2024-02-02T00:00:00", "1", "100")
    entries.append(unpriced._replace(legs=tuple(leg._replace(unit_price=None) for leg in unpriced.legs)))
    entries.append(cash(src("i1", "2024-03-01T00:00:00", endpoint="history/interest"), kind="interest-income", asset="SOL", quantity=D("0.5"), counter="Income:Interest", wallet=lent("main", "SOL")))
    entries.append(priced(withdrawal(src("w", "2024-03-02T00:00:00", endpoint="capital/withdrawals"), asset="BTC", quantity=D("0.5"), fee=D("0.001"), internal=False), BTC="200"))
    entries.append(priced(deposit(src("d", "2024-03-03T00:00:00", endpoint="capital/deposits"), asset="BTC", quantity=D("0.6"), internal=False), BTC="250"))
    entries.append(withdrawal(src("tw", "2024-03-04T10:00:00", endpoint="capital/withdrawals"), asset="BTC", quantity=D("0.1"), fee=D("0"), internal=True))
    entries.append(deposit(src("td", "2024-03-04T10:05:00", acct="sub", endpoint="capital/deposits"), asset="BTC", quantity=D("0.1"), internal=True))
    post(engine, *reversed(entries))


def _both(engine, monkeypatch, **kw):
    out = []
    for threshold in (10**12, 1):  # in process, then in a child
        monkeypatch.setattr(basis, "CHILD_READ_ENTRIES", threshold)
        with engine.connect() as conn:
            rows, findings = booking_rows(conn, BridgeSettings(), **kw)
            text_rows, _ = booking_rows(conn, BridgeSettings(), text_times=True, **kw)
        out.append((sorted(rows), findings, sorted(text_rows)))
    return out


def test_child_read__same_rows_findings_and_times(sqlite_engine, monkeypatch):
    _mixed_ledger(sqlite_engine)
    spawned = []
    real = basis.subprocess.Popen
    monkeypatch.setattr(basis.subprocess, "Popen", lambda *a, **k: spawned.append(a) or real(*a, **k))
    here, child = _both(sqlite_engine, monkeypatch)
    assert len(spawned) == 2, "the child reader did not run (once with datetimes, once with text times)"
    assert here == child
    rows, findings, _ = child
    assert len(rows) > 60 and {f.kind for f in findings} >= {"unpriced"}
    assert any(r[1] == 1 for r in rows)  # the transfers came through, paired


def test_child_read__one_venue_account(sqlite_engine, monkeypatch):
    _mixed_ledger(sqlite_engine)
    here, child = _both(sqlite_engine, monkeypatch, venue_account="sub")
    assert here == child and here[0] and all(r[3] == "sub" for r in here[0] if r[1] != 1)


@pytest.mark.parametrize("key", ["odd\x1fkey", "odd\x1ekey", "odd\x1fkey\x1e2024"])
def test_child_read__a_separator_inside_a_key_falls_back_to_the_read_in_process(sqlite_engine, monkeypatch, key):
    post(sqlite_engine, buy(key, "2024-01-01T00:00:00", "1", "100"), sell("s", "2024-02-01T00:00:00", "1", "150"))
    here, child = _both(sqlite_engine, monkeypatch)
    assert here == child and any(key in r[2] for r in child[0])


@pytest.mark.parametrize("when", ["before its header", "half-way"])
def test_child_read__a_failing_child_falls_back_to_the_read_in_process(sqlite_engine, monkeypatch, tmp_path, when):
    """A child that dies before its header, or after a header and part of a chunk (exit 3): the
    read is done again in process, and nothing of the child's part is kept."""
    _mixed_ledger(sqlite_engine, n=5)
    bad = tmp_path / "bad_reader.py"
    body = "" if when == "before its header" else (
        "import pickle, struct\n"
        "h = pickle.dumps(({'1': 0}, {'1': 'BTC'}))\n"
        "out.write(struct.pack('<cI', b'H', len(h)) + h)\n"
        "out.write(struct.pack('<cI', b'T', 999) + struct.pack('<I', 3) + b'2024')\n"
    )
    bad.write_text("import sys\nout = sys.stdout.buffer\n" + body + "out.flush()\nsys.exit(3)\n")
    monkeypatch.setattr("ledger.sqlite_reader.__file__", str(bad))
    spawned = []
    real = basis.subprocess.Popen
    monkeypatch.setattr(basis.subprocess, "Popen", lambda *a, **k: spawned.append(a) or real(*a, **k))
    here, child = _both(sqlite_engine, monkeypatch)
    assert spawned and here == child and here[0]


def test_read_frames__truncated_stream_is_an_error():
    import pickle
    import struct

    header = pickle.dumps(({}, {}))
    stream = io.BytesIO(struct.pack("<cI", b"H", len(header)) + header + struct.pack("<cI", b"T", 100) + b"\x01\x00")
    frames = read_frames(stream)
    assert next(frames) == ({}, {})
    with pytest.raises(ValueError):
        next(frames)


def test_child_read__not_for_postgresql_or_small_ledgers(engine, monkeypatch):
    post(engine, buy("b", "2024-01-01T00:00:00", "1", "100"))
    called = []
    monkeypatch.setattr(basis.subprocess, "Popen", lambda *a, **k: called.append(a))
    with engine.connect() as conn:
        booking_rows(conn, BridgeSettings())
    assert not called  # 1 entry < CHILD_READ_ENTRIES, and never on PostgreSQL


def test_child_read__chunks_come_in_time_order_and_keep_an_instant_whole(sqlite_engine, monkeypatch):
    """Small chunks (3, 6, 7, 7, ...): each chunk's rows come after the previous chunk's, and the
    entries at one instant arrive in one chunk; together, the rows of the read in process."""
    _mixed_ledger(sqlite_engine)
    post(sqlite_engine, *[buy(f"same{j}", "2024-01-05T05:00:00", "0.1", str(50 + j)) for j in range(6)])
    monkeypatch.setattr(basis, "CHILD_READ_ENTRIES", 1)
    monkeypatch.setattr("ledger.sqlite_reader.FIRST_CHUNK_ENTRIES", 3)
    monkeypatch.setattr("ledger.sqlite_reader.CHUNK_ENTRIES", 7)
    findings: list = []
    with sqlite_engine.connect() as conn:
        chunks = list(basis.booking_row_chunks(conn, BridgeSettings(), findings, text_times=True))
        whole, whole_findings = booking_rows(conn, BridgeSettings(), text_times=True)
    assert len(chunks) > 10
    times = [sorted(r[0] for r in c) for c in chunks[:-1] if c]  # the last chunk: transfers never paired, at their own times
    assert all(a[-1] < b[0] for a, b in zip(times, times[1:]))
    assert sum(1 for c in chunks if any(r[2].startswith("main:same") for r in c)) == 1
    assert sorted(r for c in chunks for r in c) == sorted(whole) and findings == whole_findings


def test_child_read__entries_out_of_order_fall_back_to_the_read_in_process(sqlite_engine, monkeypatch, tmp_path):
    """A reader whose deposits and withdrawals come out of (time, key) order (their pairing depends
    on it): the read is done again in process."""
    _mixed_ledger(sqlite_engine, n=5)
    bad = tmp_path / "unordered_reader.py"
    bad.write_text(
        "import pickle, struct, sys\n"
        "out = sys.stdout.buffer\n"
        "def frame(kind, payload): out.write(struct.pack('<cI', kind, len(payload)) + payload)\n"
        "frame(b'H', pickle.dumps(({'1': 0}, {'1': 'BTC'})))\n"
        "fields = ['2024-03-03T00:00:00.000000Z', 'main:d', 'deposit', 'main', '1 1 0.6 250',\n"
        "          '2024-03-02T00:00:00.000000Z', 'main:w', 'withdrawal', 'main', '1 1 -0.5 200']\n"
        "frame(b'T', struct.pack('<I', 2) + '\\x1f'.join(fields).encode())\n"
        "frame(b'E', b'')\n"
        "out.flush()\n"
    )
    monkeypatch.setattr("ledger.sqlite_reader.__file__", str(bad))
    here, child = _both(sqlite_engine, monkeypatch)
    assert here == child and here[0]
