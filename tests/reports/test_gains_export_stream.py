"""``export gains`` reads, books and writes a large SQLite ledger a chunk at a time (a child process
reads it in time order, ``ledger/sqlite_reader.py``; ``ledger.booking.RowBooking`` books each chunk
on arrival): the file and the summary line are those of the read in one piece, also when the
history leaves the engine's fast path part-way, when the child fails, and for one tax year."""

from __future__ import annotations

import pytest

import ledger.basis as basis
from ledger.money import D
from ledger.posting import deposit, withdrawal
from reconcile.cli import main
from tests.ledger.test_basis import buy, post, priced, sell, src


@pytest.fixture
def ledger_file(tmp_path, monkeypatch):
    from ledger.db import make_engine, upgrade

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECONCILE_CONFIG", raising=False)
    monkeypatch.delenv("RECONCILE_DB", raising=False)
    path = tmp_path / "ledger.db"
    eng = make_engine(f"sqlite:///{path}")
    upgrade(eng)
    yield eng, f"sqlite:///{path}"
    eng.dispose()


def _history(eng, extra: str) -> None:
    """Buys and sells over two years (five of them at one instant, which a chunk must not split),
    posted out of time order, and ``extra``: a deposit of unknown basis or a withdrawal part-way."""
    entries = []
    for i in range(40):
        month, day = 1 + i % 12, 1 + i % 27
        year = 2023 + i // 24
        entries.append(buy(f"b{i}", f"{year}-{month:02d}-{day:02d}T10:00:00", "0.5", str(100 + 7 * i)))
        entries.append(sell(f"s{i}", f"{year}-{month:02d}-{day:02d}T18:00:00", "0.3", str(90 + 11 * (i % 9))))
    for j in range(5):
        entries.append(buy(f"same{j}", "2024-03-03T03:03:03", "0.1", str(50 + j)))
    if extra == "deposit":
        entries.append(priced(deposit(src("d", "2024-06-01T00:00:00", endpoint="capital/deposits"), asset="BTC", quantity=D("0.7"), internal=False), BTC="300"))
    elif extra == "withdrawal":
        entries.append(priced(withdrawal(src("w", "2024-06-01T00:00:00", endpoint="capital/withdrawals"), asset="BTC", quantity=D("0.2"), fee=D("0.001"),
                                         internal=False), BTC="300"))
    post(eng, *reversed(entries))


def _export(monkeypatch, url, out, child: bool, *args) -> int:
    monkeypatch.setattr(basis, "CHILD_READ_ENTRIES", 1 if child else 10**12)
    monkeypatch.setattr("ledger.sqlite_reader.FIRST_CHUNK_ENTRIES", 3)
    monkeypatch.setattr("ledger.sqlite_reader.CHUNK_ENTRIES", 7)
    return main(["export", "gains", "--out", str(out), "--db", url, "--method", "hifo", *args])


@pytest.mark.parametrize("extra", ["none", "deposit", "withdrawal"])
@pytest.mark.parametrize("period", [("--all-years",), ("--year", "2024")])
def test_export_gains__chunked_read_writes_what_the_whole_read_writes(ledger_file, monkeypatch, tmp_path, capsys, extra, period):
    eng, url = ledger_file
    _history(eng, extra)
    spawned = []
    real = basis.subprocess.Popen
    monkeypatch.setattr(basis.subprocess, "Popen", lambda *a, **k: spawned.append(a) or real(*a, **k))
    assert _export(monkeypatch, url, tmp_path / "whole.csv", False, *period) == 0
    whole = capsys.readouterr()
    assert not spawned
    assert _export(monkeypatch, url, tmp_path / "chunks.csv", True, *period) == 0
    chunks = capsys.readouterr()
    assert len(spawned) == 1, "the child reader did not run"
    assert (tmp_path / "chunks.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert chunks.out.replace("chunks.csv", "whole.csv") == whole.out and chunks.err == whole.err
    assert (tmp_path / "whole.csv").read_text().count("\n") > 20
    assert not list(tmp_path.glob("*.partial"))


def test_export_gains__a_child_failing_part_way_leaves_the_whole_read(ledger_file, monkeypatch, tmp_path, capsys):
    """The child sends its header and a chunk, then dies: the export reads again in process and
    writes only what that read gives."""
    eng, url = ledger_file
    _history(eng, "none")
    assert _export(monkeypatch, url, tmp_path / "whole.csv", False, "--all-years") == 0
    bad = tmp_path / "bad_reader.py"
    real_reader = __import__("ledger.sqlite_reader", fromlist=["x"]).__file__
    bad.write_text(
        "import runpy, sys\n"
        "out = sys.stdout.buffer\n"
        "real_write = out.write\n"
        "frames = []\n"
        "class Out:\n"
        "    def write(self, b):\n"
        "        frames.append(b)\n"
        "        if len(frames) >= 4:\n"  # header (2 writes) and one chunk (2 writes): then stop
        "            for f in frames: real_write(f)\n"
        "            out.flush(); sys.stdout.flush(); import os; os._exit(3)\n"
        "    def flush(self): pass\n"
        "class Std:\n"
        "    buffer = Out()\n"
        "sys.stdout = Std()\n"
        f"sys.argv = [{real_reader!r}] + sys.argv[1:]\n"
        f"runpy.run_path({real_reader!r}, run_name='__main__')\n"
    )
    monkeypatch.setattr("ledger.sqlite_reader.__file__", str(bad))
    from reports.gains import GainsWriter

    written, restarts = [], []
    real_write, real_restart = GainsWriter.write, GainsWriter.restart
    monkeypatch.setattr(GainsWriter, "write", lambda self, gains: written.append(len(gains)) or real_write(self, gains))
    monkeypatch.setattr(GainsWriter, "restart", lambda self: restarts.append(sum(written)) or real_restart(self))
    assert _export(monkeypatch, url, tmp_path / "failed.csv", True, "--all-years") == 0
    assert restarts and restarts[0] > 0, "no gains were written before the child failed"
    assert (tmp_path / "failed.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
