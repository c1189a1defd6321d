"""A list of report rows kept on disk: a 1,000,000-fill year's gains and fees are not held in memory.

``RowStore`` takes rows as they come (``append``/``extend``: the booking's gain batches, a query's
rows), keeps the first ``head`` of them in memory (what the statement shows and drills into) and
pickles the rest in chunks to an anonymous temporary file (removed when the store is closed or
collected). It reads back in order as often as a writer iterates it: ``len``, iteration, ``[:n]``
and ``[i]`` behave as a list's. Rows are the engine's immutable tuples and dataclasses; nothing is
changed on the way (pickle round-trips ``Decimal``, ``datetime`` and named tuples exactly).
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

__all__ = ["RowStore"]


class RowStore:
    CHUNK = 10_000

    def __init__(self, head: int = 2_000) -> None:
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
        pickle.dump(self._buf, self._file, protocol=pickle.HIGHEST_PROTOCOL)
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
            while True:
                self._file.seek(pos)
                try:
                    chunk = pickle.load(self._file)
                except EOFError:
                    break
                pos = self._file.tell()
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
