"""A list of report rows kept on disk: a 1,000,000-fill year's gains and fees are not held in memory.

``RowStore`` takes rows as they come (``append``/``extend``: the booking's gain batches, a query's
rows), keeps the first ``head`` of them in memory (what the statement shows and drills into) and
writes the rest in chunks to an anonymous temporary file (``marshal`` through a ``TupleCodec``, or pickle) (removed when the store is closed or
collected). It reads back in order as often as a writer iterates it: ``len``, iteration, ``[:n]``
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
from itertools import islice
from typing import Any

__all__ = ["RowStore", "TupleCodec"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_US = timedelta(microseconds=1)
_LEN = struct.Struct("<Q")


class TupleCodec:
    """Rows of one named-tuple class as tuples of plain strings and integers, for ``marshal`` (several
    times faster than pickling the decimals and datetimes): a ``Decimal`` field as its exact text
    (``Decimal(str(d)) == d``, exponent kept), an aware ``datetime`` as microseconds since the epoch
    (read back in UTC: the same instant), other fields (``str``, ``int``, ``None``) as they are. The
    field kinds come from the class's annotations."""

    def __init__(self, cls) -> None:
        self.cls = cls
        kinds = []
        for name in cls._fields:
            ann = str(cls.__annotations__.get(name, ""))
            kinds.append("D" if "Decimal" in ann else ("T" if "datetime" in ann else ""))
        self.kinds = tuple(kinds)

    def pack(self, row) -> tuple:
        return tuple(v if v is None or not k else (str(v) if k == "D" else (v - _EPOCH) // _ONE_US) for v, k in zip(row, self.kinds))

    def unpack(self, t: tuple):
        return self.cls._make(v if v is None or not k else (Decimal(v) if k == "D" else _EPOCH + timedelta(microseconds=v))
                              for v, k in zip(t, self.kinds))


class RowStore:
    CHUNK = 10_000

    def __init__(self, head: int = 2_000, codec: TupleCodec | None = None) -> None:
        self._codec = codec
        self._head_n = head
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
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="reconcile-rows-")
        self._file.seek(0, 2)
        if self._codec is not None:
            pack = self._codec.pack
            data = marshal.dumps([pack(r) for r in self._buf])
        else:
            data = pickle.dumps(self._buf, protocol=pickle.HIGHEST_PROTOCOL)
        self._file.write(_LEN.pack(len(data)))
        self._file.write(data)
        self._buf = []

    def __len__(self) -> int:
        return self._n

    def __bool__(self) -> bool:
        return self._n > 0

    def __iter__(self) -> Iterator:
        yield from self._head
        if self._file is not None:
            self._file.flush()
            pos = 0
            unpack = self._codec.unpack if self._codec is not None else None
            while True:
                self._file.seek(pos)
                head = self._file.read(_LEN.size)
                if len(head) < _LEN.size:
                    break
                (n,) = _LEN.unpack(head)
                data = self._file.read(n)
                pos += _LEN.size + n
                if unpack is not None:
                    chunk = [unpack(t) for t in marshal.loads(data)]
                else:
                    chunk = pickle.loads(data)
                yield from chunk
        yield from self._buf

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
