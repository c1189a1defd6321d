"""The large sheets' rows as SheetML text, spliced into the package openpyxl wrote.

openpyxl's write-only writer builds an lxml element per cell (20-40 µs a cell on this machine); a
1,000,000-fill year has about fifteen million cells in its detail sheets. Here openpyxl writes every
sheet as before (head, column widths, frozen header, auto-filter, print setup, the header row) and,
for a large sheet, one *prototype* row as its last row: one cell per style the rows need (money,
price, date, quantity formats, bold). After ``wb.save`` the package is copied member by member; in a
large sheet's XML the prototype row is read for its style ids and replaced by the real rows, written
as text with one f-string per cell (inline strings, numbers as their exact decimal text, dates as
Excel serial numbers, formulas as ``<f>``), streamed into the new zip: the rows are never held. On a
large workbook a forked process writes a share of the sheets whose rows are on disk (``splice``).

Every text cell still goes through ``reports.safety.text_cell`` and is XML-escaped; characters XML
cannot carry at all are escaped the same way.
"""

from __future__ import annotations

import os
import re

from openpyxl.utils import get_column_letter
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from itertools import islice
from pathlib import Path

from .safety import text_cell

__all__ = ["FastSheet", "splice", "STYLE_KEYS", "columns_of"]

#: The styles every large sheet's prototype row carries, in this order (then one per quantity format).
STYLE_KEYS = ("money", "price", "date", "day", "int", "bold", "boldmoney")

_UNIX = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_US = timedelta(microseconds=1)
_EXCEL_DAY0 = date(1899, 12, 30).toordinal()
#: Microseconds from Excel's day 0 (1899-12-30) to 1970-01-01.
_UNIX_FROM_EXCEL_US = (date(1970, 1, 1).toordinal() - _EXCEL_DAY0) * 86_400_000_000
_DAY_US = Decimal(86_400_000_000)
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ESC = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def col_letter(i: int) -> str:
    """The spreadsheet column of 0-based index ``i`` (0 -> A, 26 -> AA): openpyxl's ``get_column_letter``."""
    return get_column_letter(i + 1)


_PREFIXES = frozenset("=+-@\t\r\n\x00")


def _xml_text(v: str) -> str:
    if v.isprintable() and v[:1] not in _PREFIXES and "&" not in v and "<" not in v and ">" not in v:
        return v  # nothing to neutralise or escape (isprintable: no control, bidi or unassigned character)
    v = text_cell(v)
    if _XML_BAD.search(v):
        v = _XML_BAD.sub(lambda m: f"\\u{ord(m.group()):04x}", v)
    return v.translate(_ESC)


def columns_of(rows: Iterable[Sequence], kinds: Sequence[str], size: int = 10_000) -> Iterator[list[list]]:
    """Rows of Python values as chunks of columns in the cell form ``FastSheet`` writes: a ``Decimal``
    as its exact text, an aware ``datetime`` as microseconds since 1970 (UTC), a ``date`` as its day
    number, text, integers and None as they are (the form ``reports.rowstore.TupleCodec`` stores)."""
    it = iter(rows)
    while True:
        chunk = list(islice(it, size))
        if not chunk:
            return
        cols = []
        for col, kind in zip(zip(*chunk), kinds):
            if kind != "text":
                col = [_primitive(v) for v in col]
            cols.append(col)
        yield cols


def _primitive(v):
    if type(v) is Decimal:
        return str(v)
    if isinstance(v, datetime):
        return ((v if v.tzinfo else v.replace(tzinfo=timezone.utc)) - _UNIX) // _ONE_US
    if isinstance(v, date):
        return _Day(v.toordinal() - _EXCEL_DAY0)
    return v


class _Day(int):
    """A day number (a ``date`` column's value), told apart from a time's microseconds."""


@dataclass
class FastSheet:
    """A large sheet: ``columns`` as ``reports.workbook._Sheet`` has them ((header, kind, width)),
    ``first`` the row number of its first data row, ``chunks()`` its rows as chunks of columns in the
    form ``columns_of`` gives, ``count`` the rows written (at most), ``qty_of``: the quantity format of a
    row from the value of its column ``qty_key`` (an asset), ``totals`` the columns summed in a bold
    ``total`` row after them, ``tail`` text rows after that."""

    title: str
    columns: Sequence[tuple[str, str, float]]
    first: int
    count: int
    chunks: Callable[[], Iterable[list[list]]]
    qty_formats: Sequence[str]
    totals: Sequence[int] = ()
    tail: Callable[[], Sequence[str]] = field(default=lambda: ())
    qty_key: int | None = None
    qty_of: Callable[[str], str] | None = None
    #: The rows need no database connection (a ``RowStore`` on disk): a forked process may write them.
    aside: bool = False

    @property
    def proto_row(self) -> int:
        return self.first

    def style_keys(self) -> list[str]:
        return list(STYLE_KEYS) + [f"qty:{f}" for f in self.qty_formats]

    def xml_rows(self, styles: dict[str, str]) -> Iterable[str]:
        """The data rows, the totals row and the tail as SheetML ``<row>`` elements (``styles``: key -> s).

        A column at a time: each column's cells are made by one ``map`` (a distinct text once per
        chunk), then joined into rows. Cells carry no reference (``r``): they follow one another, an
        empty ``<c/>`` holding the place of a missing value."""
        default_qty = styles.get("qty:#,##0.########", "0")
        qty_style: dict = {}
        if self.qty_of is not None:
            of, by_fmt = self.qty_of, {f: styles.get(f"qty:{f}", default_qty) for f in self.qty_formats}

            def _qs(key):
                st = qty_style[key] = by_fmt.get(of(key), default_qty) if key is not None else default_qty
                return st

            qty_style = _Missing(_qs)
        serial = _Missing(_serial)
        r = self.first
        n = 0
        for cols in self.chunks():
            rows = len(cols[0]) if cols else 0
            if n + rows > self.count:
                rows = self.count - n
                cols = [c[:rows] for c in cols]
            if rows <= 0:
                break
            cells = []
            for (_h, kind, _w), col in zip(self.columns, cols):
                if kind == "text":
                    made = {v: _text_xml(v) for v in set(col)}
                    cells.append(list(map(made.__getitem__, col)))
                    continue
                if kind == "date":
                    col = [None if v is None else serial[v] for v in col] if None in col else list(map(serial.__getitem__, col))
                if kind.startswith("qty") and self.qty_key is not None:
                    fmt = '<c s="{}"><v>{}</v></c>'.format
                    st = list(map(qty_style.__getitem__, cols[self.qty_key]))
                    cells.append([fmt(a, v) if v is not None else "<c/>" for a, v in zip(st, col)] if None in col else list(map(fmt, st, col)))
                    continue
                s = default_qty if kind.startswith("qty") else styles.get(kind, "0")
                fmt = f'<c s="{s}"><v>{{}}</v></c>'.format
                cells.append([fmt(v) if v is not None else "<c/>" for v in col] if None in col else list(map(fmt, col)))
            yield "".join(map('<row r="{}">{}</row>'.format, range(r, r + rows), map("".join, zip(*cells))))
            r += rows
            n += rows
            if n >= self.count:
                break
        out: list[str] = []
        add = out.append
        if self.totals:
            if n == 0:  # an empty sheet: a blank data row, so the total's range never holds the total itself
                r += 1
            last = max(r - 1, self.first)
            add(f'<row r="{r}"><c r="A{r}" t="inlineStr" s="{styles.get("bold", "0")}"><is><t>total</t></is></c>')
            for i in sorted(self.totals):
                L = col_letter(i)
                add(f'<c r="{L}{r}" s="{styles.get("boldmoney", "0")}"><f>SUM({L}{self.first}:{L}{last})</f></c>')
            add("</row>")
            r += 1
        for line in self.tail():
            add(f'<row r="{r}"><c r="A{r}" t="inlineStr"><is><t xml:space="preserve">{_xml_text(line)}</t></is></c></row>')
            r += 1
        yield "".join(out)


class _Missing(dict):
    """A dict that fills a missing key with ``make(key)``."""

    def __init__(self, make) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, key):
        v = self[key] = self._make(key)
        return v


def _serial(v: int) -> str:
    """The Excel serial number (days since 1899-12-30, time as the fraction) of microseconds since 1970
    (UTC), or of a day number (``_Day``)."""
    if type(v) is _Day:
        return str(int(v))
    return format(Decimal(v + _UNIX_FROM_EXCEL_US) / _DAY_US, "f")


def _text_xml(v) -> str:
    if v is None:
        return "<c/>"
    if not isinstance(v, str):
        v = str(v)
    return f'<c t="inlineStr"><is><t xml:space="preserve">{_xml_text(v)}</t></is></c>'


def _styles_of(proto: str, keys: list[str]) -> dict[str, str]:
    out = {}
    cells = re.findall(r"<c\b[^>]*>", proto)
    for key, c in zip(keys, cells):
        m = re.search(r'\bs="(\d+)"', c)
        out[key] = m.group(1) if m else "0"
    return out


#: Below this many cells in the sheets a forked process could write, the splice writes every sheet itself.
ASIDE_MIN_CELLS = 2_000_000


def splice(src: Path, dst: Path, sheets: dict[str, FastSheet], order: list[str]) -> None:
    """Copy the package ``src`` to ``dst``, the prototype row of each sheet in ``sheets`` replaced by its
    rows. ``order``: the workbook's sheet titles in order (openpyxl names their parts sheet1.xml, ...).

    On a large workbook the sheets whose rows need no database (``FastSheet.aside``) are shared with a
    forked process (the machine's second core): it writes the rows of its share as SheetML into files
    beside ``dst`` while this process writes the others into the package; its sheets are then copied in
    last (a package's parts may come in any order). If that process fails, its sheets are written here."""
    part = {f"xl/worksheets/sheet{i + 1}.xml": title for i, title in enumerate(order)}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zout:
        heads: dict[str, tuple[zipfile.ZipInfo, str, int, int, dict[str, str]]] = {}
        for info in zin.infolist():
            title = part.get(info.filename)
            fast = sheets.get(title) if title is not None else None
            if fast is not None:
                xml = zin.read(info.filename).decode("utf-8")
                at = xml.find(f'<row r="{fast.proto_row}"')
                end = xml.find("</row>", at)
                if at < 0 or end < 0:
                    raise RuntimeError(f"the prototype row of sheet {title!r} is missing")
                heads[info.filename] = (info, xml, at, xml.find("</sheetData>", end), _styles_of(xml[at:end], fast.style_keys()))
        aside = _Aside.start(dst, {name: (sheets[part[name]], h[4]) for name, h in heads.items()})
        try:
            for info in zin.infolist():
                if info.filename in aside.files:
                    continue
                if info.filename not in heads:
                    zout.writestr(info, zin.read(info.filename), compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
                    continue
                _, xml, at, tail_at, styles = heads[info.filename]
                _member(zout, info, xml, at, tail_at, (chunk.encode("utf-8") for chunk in sheets[part[info.filename]].xml_rows(styles)))
            done = aside.join()
            for name in aside.files:
                info, xml, at, tail_at, styles = heads[name]
                rows = aside.read(name) if done else (chunk.encode("utf-8") for chunk in sheets[part[name]].xml_rows(styles))
                _member(zout, info, xml, at, tail_at, rows)
        finally:
            aside.close()


def _member(zout: zipfile.ZipFile, info: zipfile.ZipInfo, xml: str, at: int, tail_at: int, rows: Iterable[bytes]) -> None:
    """A large sheet's part: its head, the rows, its tail."""
    zi = zipfile.ZipInfo(info.filename, date_time=info.date_time)
    zi.compress_type = zipfile.ZIP_DEFLATED
    zi._compresslevel = 1  # type: ignore[attr-defined]  # what ZipFile.open(mode="w") reads
    with zout.open(zi, "w", force_zip64=True) as fh:
        fh.write(xml[:at].encode("utf-8"))
        _write_behind(fh, rows)
        fh.write(xml[tail_at:].encode("utf-8"))


def _cost(fast: FastSheet) -> int:
    return fast.count * len(fast.columns)


class _Aside:
    """The sheets a forked process writes (``files``: part name -> the file its rows go to)."""

    def __init__(self, files: dict[str, Path], proc=None) -> None:
        self.files, self.proc = files, proc

    @classmethod
    def start(cls, dst: Path, sheets: dict[str, tuple[FastSheet, dict[str, str]]]) -> _Aside:
        """Fork the process for the best even share of the ``aside`` sheets (none if the work is small or
        no fork is possible)."""
        import multiprocessing
        import tempfile

        movable = [name for name, (f, _s) in sheets.items() if f.aside]
        if sum(_cost(sheets[n][0]) for n in movable) < ASIDE_MIN_CELLS or "fork" not in multiprocessing.get_all_start_methods():
            return cls({})
        total = sum(_cost(f) for f, _s in sheets.values())
        best: tuple[int, tuple[str, ...]] = (total, ())
        for mask in range(1, 1 << len(movable)):  # a handful of sheets: every share is tried
            share = tuple(n for i, n in enumerate(movable) if mask >> i & 1)
            there = sum(_cost(sheets[n][0]) for n in share)
            best = min(best, (max(there, total - there), share))
        if not best[1]:
            return cls({})
        files = {}
        for name in best[1]:
            fd, path = tempfile.mkstemp(prefix=dst.name + ".", suffix=".rows", dir=dst.parent)
            os.close(fd)
            files[name] = Path(path)
        work = [(sheets[n][0], sheets[n][1], files[n]) for n in best[1]]
        try:
            proc = multiprocessing.get_context("fork").Process(target=_write_aside, args=(work,), daemon=True)
            proc.start()
        except OSError:
            proc = None
        return cls(files, proc)

    def join(self) -> bool:
        """Whether the forked process wrote every file of its share."""
        if self.proc is None:
            return False
        self.proc.join()
        ok = self.proc.exitcode == 0
        self.proc = None
        return ok

    def read(self, name: str, size: int = 1 << 20) -> Iterator[bytes]:
        with self.files[name].open("rb") as fh:
            while data := fh.read(size):
                yield data

    def close(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.join()
            self.proc = None
        for path in self.files.values():
            path.unlink(missing_ok=True)


def _write_aside(work: list[tuple[FastSheet, dict[str, str], Path]]) -> None:
    """In the forked process: each sheet's rows into its file; exit code 0 only if all were written."""
    code = 1
    try:
        for fast, styles, path in work:
            with path.open("wb") as fh:
                for chunk in fast.xml_rows(styles):
                    fh.write(chunk.encode("utf-8"))
        code = 0
    finally:
        os._exit(code)  # no cleanup of the parent's state (its open files, its atexit handlers)


def _write_behind(fh, chunks: Iterable[bytes]) -> None:
    """Write ``chunks`` to ``fh`` from a thread while the next ones are made: the zip member's deflate
    and CRC run in zlib, which lets go of the interpreter, so they take the second core meanwhile."""
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=4)
    failed: list[BaseException] = []

    def drain() -> None:
        while (data := q.get()) is not None:
            if not failed:
                try:
                    fh.write(data)
                except BaseException as exc:  # noqa: BLE001 - raised again by the caller's thread
                    failed.append(exc)

    t = threading.Thread(target=drain, name="xlsx-deflate", daemon=True)
    t.start()
    try:
        for data in chunks:
            if failed:
                break
            q.put(data)
    finally:
        q.put(None)
        t.join()
    if failed:
        raise failed[0]
