"""A list of report rows kept on disk: a 1,000,000-fill year's gains and fees are not held in memory.

``RowStore`` takes rows as they come (``append``/``extend``: the booking's gain batches, a query's
rows), keeps the first ``head`` of them in memory (what the statement shows and drills into) and
writes the rest in chunks to an anonymous temporary file (``marshal`` through a ``TupleCodec``, or pickle) (removed when the store is closed or
collected). The file is unbuffered: a forked process that writes or reads it (``share``; the workbook's
sheets written by two processes) holds no buffered bytes of the parent's to write again. It reads back in order as often as a writer iterates it: ``len``, iteration, ``[:n]``
and ``[i]`` behave as a list's. Rows are the engine's immutable tuples and dataclasses; nothing is
changed on the way (pickle round-trips ``Decimal``, ``datetime`` and named tuples exactly).
"""

from __future__ import annotations

import marshal
import pickle
import struct
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from itertools import islice, repeat
from operator import add, floordiv, mul, sub
from typing import Any

__all__ = ["RowStore", "TupleCodec"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_US = timedelta(microseconds=1)
_LEN = struct.Struct("<Q")


class TupleCodec:
    """Rows of one named-tuple class as columns of plain strings and integers, for ``marshal`` (several
    times faster than pickling the decimals and datetimes; a column at a time, so each conversion is one
    ``map`` at C speed): a ``Decimal`` field as its exact text (``Decimal(str(d)) == d``, exponent kept),
    an aware ``datetime`` as microseconds since the epoch (read back in UTC: the same instant), other
    fields (``str``, ``int``, ``None``) as they are. The field kinds come from the class's annotations; a
    field annotated ``| None`` may hold None."""

    def __init__(self, cls) -> None:
        self.cls = cls
        kinds = []
        for name in cls._fields:
            ann = str(cls.__annotations__.get(name, ""))
            kind = "D" if "Decimal" in ann else ("T" if "datetime" in ann else "")
            kinds.append(kind + ("?" if kind and "None" in ann else ""))
        self.kinds = tuple(kinds)

    def pack(self, rows: list) -> bytes:
        cols = []
        for col, kind in zip(zip(*rows), self.kinds):
            if kind == "D":
                col = list(map(str, col))
            elif kind == "T":
                col = list(map(floordiv, map(sub, col, repeat(_EPOCH)), repeat(_ONE_US)))
            elif kind == "D?":
                col = [None if v is None else str(v) for v in col]
            elif kind == "T?":
                col = [None if v is None else (v - _EPOCH) // _ONE_US for v in col]
            cols.append(col)
        return marshal.dumps(cols)

    def unpack(self, data: bytes) -> list:
        cols = []
        for col, kind in zip(marshal.loads(data), self.kinds):
            if kind == "D":
                col = map(Decimal, col)
            elif kind == "T":
                col = map(add, repeat(_EPOCH), map(mul, col, repeat(_ONE_US)))
            elif kind == "D?":
                col = [None if v is None else Decimal(v) for v in col]
            elif kind == "T?":
                col = [None if v is None else _EPOCH + v * _ONE_US for v in col]
            cols.append(col)
        return list(map(tuple.__new__, repeat(self.cls), zip(*cols)))


class RowStore:
    CHUNK = 10_000

    def __init__(self, head: int = 2_000, codec: TupleCodec | None = None, spill: bool = True) -> None:
        self._codec = codec
        self._head_n = head
        #: False: rows past the head are counted and not kept (a statement shows the head only);
        #: iterating such a store past its head raises instead of yielding part of the rows.
        self._spill = spill
        self._head: list = []
        self._buf: list = []
        self._file = None
        self._n = 0

    def append(self, row: Any) -> None:
        self._n += 1
        if len(self._head) < self._head_n:
            self._head.append(row)
            return
        self._buf.append(row)
        if len(self._buf) >= self.CHUNK:
            self._flush()

    def extend(self, rows: Iterable) -> None:
        rows = rows if isinstance(rows, list) else list(rows)
        if not rows:
            return
        self._n += len(rows)
        room = self._head_n - len(self._head)
        if room > 0:
            self._head += rows[:room]
            rows = rows[room:]
        if rows:
            self._buf += rows
            if len(self._buf) >= self.CHUNK:
                self._flush()

    def _flush(self) -> None:
        if not self._buf:
            return
        if not self._spill:
            self._buf = []
            return
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="reconcile-rows-", buffering=0)
        self._file.seek(0, 2)
        buf, size = self._buf, self.CHUNK
        for at in range(0, len(buf), size):  # chunks of at most CHUNK rows, however many came at once
            part = buf[at:at + size]
            data = self._codec.pack(part) if self._codec is not None else pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL)
            self._file.write(_LEN.pack(len(data)) + data)
        self._buf = []

    # -- filled by a forked process -------------------------------------------------------------
    def share(self) -> RowStore:
        """Open the store's file now, so that a process forked after this writes into it (the open file
        is inherited); the parent then passes what that process's ``hand_over`` returned to ``take_over``."""
        if self._spill and self._file is None:
            self._file = tempfile.TemporaryFile(prefix="reconcile-rows-", buffering=0)
        return self

    def hand_over(self) -> tuple[list, int]:
        """In the forked process: every row written to the shared file but the head; the head and count."""
        self._flush()
        if self._file is not None:
            self._file.flush()
        return self._head, self._n

    def take_over(self, state: tuple[list, int]) -> None:
        """In the parent: the rows the forked process wrote (``hand_over``'s state)."""
        self._head, self._n = state
        self._buf = []

    def __len__(self) -> int:
        return self._n

    def __bool__(self) -> bool:
        return self._n > 0

    def __iter__(self) -> Iterator:
        self._whole()
        yield from self._head
        unpack = self._codec.unpack if self._codec is not None else pickle.loads
        for data in self._stored():
            yield from unpack(data)
        yield from self._buf

    def column_chunks(self) -> Iterator[list[list]]:
        """The rows in order as chunks of columns in the codec's stored form (decimal text, microseconds;
        ``reports.xlsx_fast.columns_of``'s form): what a writer of text needs, without rebuilding the
        rows. Needs a codec."""
        codec = self._codec
        if codec is None:
            raise TypeError("column_chunks needs a TupleCodec")
        self._whole()
        if self._head:
            yield marshal.loads(codec.pack(self._head))
        for data in self._stored():
            yield marshal.loads(data)
        if self._buf:
            yield marshal.loads(codec.pack(self._buf))

    def _whole(self) -> None:
        """Refuse a full read of a store that kept only its head (``spill=False``)."""
        if not self._spill and self._n > len(self._head):
            raise RuntimeError(f"this store kept only its first {len(self._head)} of {self._n} rows (spill=False)")

    def _stored(self) -> Iterator[bytes]:
        """The chunks written to the file, in order, as written (codec or pickle bytes)."""
        if self._file is None:
            return
        self._file.flush()
        pos = 0
        while True:
            self._file.seek(pos)
            head = self._file.read(_LEN.size)
            if len(head) < _LEN.size:
                return
            (n,) = _LEN.unpack(head)
            yield self._file.read(n)
            pos += _LEN.size + n

    @property
    def fields(self) -> tuple[str, ...] | None:
        """The row class's fields when a codec stores the rows (the columns ``column_chunks`` gives)."""
        return self._codec.cls._fields if self._codec is not None else None

    def __getitem__(self, i):
        if isinstance(i, slice):
            start, stop, step = i.indices(self._n)
            if step == 1 and stop <= len(self._head):
                return self._head[start:stop]
            return list(islice(iter(self), start, stop, step))
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        if i < len(self._head):
            return self._head[i]
        return next(islice(iter(self), i, None))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __del__(self) -> None:  # pragma: no cover - the file is anonymous; closing frees its space at once
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass
