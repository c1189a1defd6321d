"""The bridge's read of a SQLite ledger, run in a separate process (docs/gains-export.md).

``ledger.basis`` reads each journal entry with its postings aggregated into one text
(``entries_sql``). Most of that read is SQLite's own work in C; on a large ledger it runs here,
in a child process, while the parent turns the chunks already read into engine events: the read
and the bridge overlap on two cores. The child is a fresh interpreter running this file (standard
library only: no package import, no state inherited from the parent), so it shares no SQLite
connection or lock with the parent.

Protocol on the child's stdout, one frame after another: a type byte and a 4-byte little-endian
length, then the payload:

- ``H``: pickle of ``(classes, symbols)``: the class of each account read (by id, as text) and the
  asset symbols, read in the same transaction as the entries;
- ``T``: a chunk of entries: their number (4 bytes) and their UTF-8 text, all their fields (five
  an entry: ISO-8601 UTC time, key, kind, venue account, postings) joined by U+001F. A key, kind
  or account name holding that separator (never seen, but not impossible) shows as more than five
  fields an entry: the parent then reads in process;
- ``E``: the end, after the read transaction committed.

The chunks come in the order the bridge processes entries, (timestamp, entry key): each chunk is
a half-open range of timestamps (an index walk finds the next bound about ``CHUNK_ENTRIES`` on),
so entries at one instant are never split between chunks, and its entries are sorted inside it.
The parent can then bridge and book each chunk as it arrives (``ledger.basis``).

Every chunk comes from one read transaction (``BEGIN`` before the first query, ``COMMIT`` after
the last), so the parent sees one state of the ledger even while a sync writes. The parent trusts
the frames only when the child exits 0 after ``E``; anything else and it reads in process.
"""

from __future__ import annotations

import pickle
import sqlite3
import struct
import sys

__all__ = ["SPOT", "LENT", "BORROWED", "FEE", "classify", "entries_sql", "read_frames", "FIELD", "CHUNK_ENTRIES", "FIRST_CHUNK_ENTRIES", "ID_RANGE_SQL", "NEXT_BOUND_SQL"]

#: Classes of the postings the bridge reads; no other posting is fetched.
SPOT, LENT, BORROWED, FEE = 0, 1, 2, 3
FIELD = "\x1f"
#: Entries per chunk (by timestamp range): small enough that the first arrives soon, large
#: enough that a query's fixed cost is spread.
CHUNK_ENTRIES = 10_000
#: The lowest and highest entry id: two subqueries, as ``min(id), max(id)`` in one select scans the table.
ID_RANGE_SQL = "SELECT (SELECT min(id) FROM journal_entries), (SELECT max(id) FROM journal_entries)"
#: The next chunk's lower bound: the timestamp that many entries (the second parameter, less one) after
#: the first parameter, on the timestamp index; none for the last chunk.
NEXT_BOUND_SQL = "SELECT timestamp FROM journal_entries WHERE timestamp > ? ORDER BY timestamp LIMIT 1 OFFSET ?"
#: Above every stored timestamp ('YYYY-MM-DD HH:MM:SS.ffffff'): the last chunk's upper bound.
_END = "\uffff"
#: The first chunk is smaller, so that the parent has work sooner; each next one is twice the last,
#: up to ``CHUNK_ENTRIES``: the parent, which takes longer over a chunk than this process, then
#: hardly waits for the next.
FIRST_CHUNK_ENTRIES = 2_000
_HEAD = struct.Struct("<cI")
_COUNT = struct.Struct("<I")


def classify(name: str) -> int | None:
    """The class of an account by its name, or None for an account the bridge does not read."""
    if name.startswith("Expenses:Fees"):
        return FEE
    if name.startswith(("Assets:", "Liabilities:")):
        for cls, marker in ((SPOT, ":Spot:"), (LENT, ":Lent:"), (BORROWED, ":Borrowed:")):
            if marker in name:
                return cls
    return None


def entries_sql(ids: str, *, timed: bool = False, venue: bool = False, text: bool = False) -> str:
    """SQLite's query for the entries (``timestamp, key, kind, venue account, postings text``) with
    postings in the accounts ``ids`` (a comma-separated list of integers). The postings are
    aggregated in one pass over the ``entry_id`` index, then joined to their entries: half the time
    of a correlated subquery per entry; printf builds each posting's text in one step (a tenth
    cheaper than three concatenations). Entries without a posting read are left out.

    ``timed``: only entries with a timestamp from the first parameter up to (not including) the
    second, sorted by (timestamp, entry key); ``venue``: one venue account (a further parameter);
    ``text``: the number of entries and the whole result as one text, every field (five an entry)
    followed by ``FIELD`` but the last, and the timestamp in the bridge's form (``iso_utc``:
    ``YYYY-MM-DDTHH:MM:SS.ffffffZ``) where it is stored in SQLAlchemy's (``YYYY-MM-DD
    HH:MM:SS.ffffff``); the child has time to spare, the parent has not."""
    where = " AND entry_id IN (SELECT id FROM journal_entries WHERE timestamp >= ? AND timestamp < ?)" if timed else ""
    inner = (
        "SELECT entry_id, group_concat(printf('%d %d %s %s', account_id, asset_id, quantity, ifnull(unit_price, '-')), ' ') g"
        f" FROM postings WHERE account_id IN ({ids}){where} GROUP BY entry_id"
    )
    sql = (
        f"SELECT e.timestamp AS ts, e.entry_key AS k, e.kind AS kind, e.venue_account AS venue, p.g AS g FROM ({inner}) p"
        " JOIN journal_entries e ON e.id = p.entry_id WHERE e.kind <> 'perp-fill'"
    )
    if venue:
        sql += " AND e.venue_account = ?"
    if timed:
        sql += " ORDER BY e.timestamp, e.entry_key"  # BINARY collation: code point order, as Python sorts text
    if text:  # one printf an entry: one string built, where each || would build another
        # SQLite aggregates a sorted subquery's rows in its order (not promised by the documentation, so the
        # parent checks the order where it matters: ledger.basis).
        iso = "iif(length(ts) = 26, printf('%.10sT%sZ', ts, substr(ts, 12)), ts)"
        sql = f"SELECT count(*), group_concat(printf('%s{FIELD}%s{FIELD}%s{FIELD}%s{FIELD}%s', {iso}, k, kind, venue, g), char(31)) FROM ({sql})"
    return sql


def _frame(out, kind: bytes, payload: bytes) -> None:
    out.write(_HEAD.pack(kind, len(payload)))
    out.write(payload)


def main(argv: list[str]) -> int:
    """``python sqlite_reader.py DATABASE [VENUE_ACCOUNT [FIRST_CHUNK CHUNK]]``: the frames on stdout
    (an empty venue account: all; the chunk sizes default to ``FIRST_CHUNK_ENTRIES`` and
    ``CHUNK_ENTRIES``)."""
    path, venue = argv[0], (argv[1] if len(argv) > 1 and argv[1] else None)
    first, most = (int(argv[2]), int(argv[3])) if len(argv) > 3 else (FIRST_CHUNK_ENTRIES, CHUNK_ENTRIES)
    out = sys.stdout.buffer
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA cache_size=-65536")
        con.execute("BEGIN")
        classes = {}
        for aid, name in con.execute("SELECT id, name FROM accounts"):
            c = classify(name)
            if c is not None:
                classes[str(aid)] = c
        symbols = {str(i): sym for i, sym in con.execute("SELECT id, symbol FROM assets")}
        _frame(out, b"H", pickle.dumps((classes, symbols), protocol=pickle.HIGHEST_PROTOCOL))
        (lo,) = con.execute("SELECT min(timestamp) FROM journal_entries").fetchone()
        if classes and lo is not None:
            ids = ", ".join(sorted(classes, key=int))
            as_text = entries_sql(ids, timed=True, venue=venue is not None, text=True)
            size = first
            while lo is not None:
                bound = con.execute(NEXT_BOUND_SQL, (lo, size - 1)).fetchone()
                hi = _END if bound is None else bound[0]
                params: tuple = (lo, hi) + ((venue,) if venue is not None else ())
                n, text = con.execute(as_text, params).fetchone()
                if n:
                    _frame(out, b"T", _COUNT.pack(n) + text.encode("utf-8", "surrogatepass"))
                lo, size = (None if bound is None else hi), min(2 * size, most)
        con.execute("COMMIT")
    finally:
        con.close()
    _frame(out, b"E", b"")
    out.flush()
    return 0


def read_frames(stream):
    """The parent's side: ``(classes, symbols)`` from the first frame, then each chunk as a list of
    entries; raises ``ValueError`` on a malformed or truncated stream (no ``E`` frame)."""
    head = stream.read(_HEAD.size)
    if len(head) != _HEAD.size or head[:1] != b"H":
        raise ValueError("reader: no header frame")
    header = pickle.loads(_exact(stream, _HEAD.unpack(head)[1]))
    yield header
    while True:
        head = stream.read(_HEAD.size)
        if len(head) != _HEAD.size:
            raise ValueError("reader: stream ended before its end frame")
        kind, n = _HEAD.unpack(head)
        payload = _exact(stream, n)
        if kind == b"T":
            # A separator inside a key, kind or account name would add a field: more than five per entry.
            (count,) = _COUNT.unpack_from(payload)
            fields = payload[_COUNT.size:].decode("utf-8", "surrogatepass").split(FIELD)
            if len(fields) != 5 * count:
                raise ValueError("reader: a separator inside an entry's text")
            each = iter(fields)
            yield zip(each, each, each, each, each)  # the entries, once: one split for the chunk, not one per entry
        elif kind == b"E":
            return
        else:
            raise ValueError(f"reader: unknown frame {kind!r}")


def _exact(stream, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise ValueError("reader: truncated frame")
    return data


if __name__ == "__main__":
    try:
        raise SystemExit(main(sys.argv[1:]))
    except BrokenPipeError:  # the parent stopped reading: it reads in process instead
        raise SystemExit(1) from None
