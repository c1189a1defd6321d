"""What every tax export shares: cells, rounding, dates, atomic CSV/XLSX writing and the run folder.

A cell is either text (exchange-supplied or generated strings, always through
``reports.safety.text_cell``) or a number (a ``Decimal``, written as its plain decimal text,
never neutralised). Files are RFC 4180: CRLF line ends, fields with ``,`` ``"`` CR or LF quoted,
``"`` doubled (Python's csv module, ``QUOTE_MINIMAL``). Tool-import CSVs are plain UTF-8;
human-facing schedules (``bom=True``) start with a UTF-8 BOM so Excel reads them as UTF-8
(EXPORT-FORMATS.md §9).

Rounding happens only here, for presentation: ``cents`` (ROUND_HALF_UP to 0.01) or ``dollars``
(whole units). Every rounded total comes with a reconciliation line from the exact total.
"""

from __future__ import annotations

from openpyxl.utils import get_column_letter

import contextlib
import csv
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from ledger.money import EXACT, plain
from reports.safety import text_cell

__all__ = ["Num", "Fixed", "NumText", "Safe", "cell", "write_csv", "write_xlsx", "write_table", "XlsxWriter", "Quantize", "ROUNDINGS", "mdy", "dmy", "pct", "RunFolder", "add", "ZERO", "EXIT_INCOMPLETE"]

ZERO = Decimal(0)
#: Exit code of ``export tax`` when findings change the year's figures and ``--allow-incomplete`` is not given.
EXIT_INCOMPLETE = 4

#: Presentation rounding rules: name -> quantum.
ROUNDINGS = {"cents": Decimal("0.01"), "dollars": Decimal("1"), "exact": None}


class Num:
    """Marks a numeric cell: written raw (plain decimal text), never neutralised."""

    __slots__ = ("value",)

    def __init__(self, value: Decimal):
        self.value = value


class Fixed(Num):
    """A rounded amount: written with its places (``210.00``), not trimmed."""

    __slots__ = ()


class NumText(str):
    """A number already formatted for a locale (``-25,00``): written as is; only digits, one sign and one
    decimal comma or point are accepted, so it can never carry a formula."""

    __slots__ = ()

    def __new__(cls, s: str):
        if _NUMBER_TEXT(s) is None:
            raise ValueError(f"not a number text: {s!r}")
        return super().__new__(cls, s)


_NUMBER_TEXT = re.compile(r"-?\d+([.,]\d+)?").fullmatch


def add(values: Iterable[Decimal], start: Decimal = ZERO) -> Decimal:
    """An exact sum (the default context keeps 28 digits)."""
    total = start
    for v in values:
        total = EXACT.add(total, v)
    return total


class Quantize:
    """One presentation rounding rule (``cents``, ``dollars`` or ``exact``)."""

    def __init__(self, name: str):
        if name not in ROUNDINGS:
            raise ValueError(f"unknown rounding {name!r}; expected one of {list(ROUNDINGS)}")
        self.name = name
        self.quantum = ROUNDINGS[name]

    def __call__(self, d: Decimal) -> Decimal:
        if self.quantum is None:
            return d
        return d.quantize(self.quantum, rounding=ROUND_HALF_UP, context=EXACT)

    def text(self, d: Decimal) -> str:
        return plain(d) if self.quantum is None else format(self(d), "f")

    def describe(self) -> str:
        return {"cents": "every amount rounded half-up to cents (0.01)", "dollars": "every amount rounded half-up to whole units",
                "exact": "no rounding: exact decimals"}[self.name]


class Safe(str):
    """A cell text already made safe (through ``text_cell``, or a number's text): written as is."""

    __slots__ = ()


def _num(v: Num) -> str:
    return plain(v.value)


def _fixed(v: Fixed) -> str:
    return format(v.value, "f")


_CELL = {Safe: str.__str__, str: text_cell, Decimal: plain, Num: _num, Fixed: _fixed, NumText: str.__str__, type(None): lambda v: ""}


def cell(v) -> str:
    """The text of one cell: a ``Num``/``Decimal`` as plain decimal text, a ``Fixed`` with its places, ``Safe``
    and ``NumText`` as they are, any other text through ``text_cell``."""
    f = _CELL.get(type(v))
    if f is not None:
        return f(v)
    if isinstance(v, (Num, Decimal)):
        return plain(v.value if isinstance(v, Num) else v)
    return text_cell(str(v))


_XML_ESC = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\r": "&#13;"})
_XML_SPECIAL = re.compile('[&<>"\r]')  # the characters _XML_ESC replaces
_XLSX_STATIC = {
    "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>{sheets}</Types>',
    "_rels/.rels": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
}


def _col(i: int) -> str:
    """The spreadsheet column of 0-based index ``i`` (openpyxl's ``get_column_letter``)."""
    return get_column_letter(i + 1)


_COLS = [_col(i) for i in range(64)]


class XlsxWriter:
    """A one-sheet-at-a-time XLSX written as it goes: SpreadsheetML (content types, workbook, its relationships, a
    worksheet per table) straight into the zip, a row at a time, every cell an inline string: text cells
    neutralised (``cell``), numbers as their exact text, so no spreadsheet evaluates a formula or re-rounds a
    number (Excel keeps 15 digits). openpyxl, even write-only, took about 1 s per 10,000 rows of 13 cells (45 s
    of a 1M-fill year's export) and held them; this takes a few percent of that and holds one buffer.
    openpyxl reads these files back in the tests."""

    def __init__(self, path: Path):
        import zipfile

        self.path = path
        self.tmp = path.with_name(path.name + ".partial")
        self.z = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1)
        self.names: list[str] = []
        self.fh = None

    def sheet(self, title: str, ncols: int) -> None:
        self._end_sheet()
        self.names.append(title[:31])
        self.fh = self.z.open(f"xl/worksheets/sheet{len(self.names)}.xml", "w", force_zip64=True)
        self.fh.write(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>')
        self.buf: list[str] = []
        self.r = 0
        self.cols = _COLS if ncols <= len(_COLS) else [_col(i) for i in range(ncols)]

    def row(self, values: Sequence[str]) -> None:
        """One row of cell texts (already through ``cell``)."""
        self.r += 1
        r, buf, esc = self.r, self.buf, _XML_ESC
        buf.append(f'<row r="{r}">')
        if _XML_SPECIAL.search("".join(values)) is not None:  # the common row has nothing to escape: one search, not one translate a cell
            values = [v.translate(esc) for v in values]
        for col, v in zip(self.cols, values):
            if v:
                buf.append(f'<c r="{col}{r}" t="inlineStr"><is><t xml:space="preserve">{v}</t></is></c>')
        buf.append("</row>")
        if len(buf) > 20000:
            self.fh.write("".join(buf).encode("utf-8"))
            buf.clear()

    def _end_sheet(self) -> None:
        if self.fh is not None:
            self.buf.append("</sheetData></worksheet>")
            self.fh.write("".join(self.buf).encode("utf-8"))
            self.fh.close()
            self.fh = None

    def close(self) -> None:
        self._end_sheet()
        z, names, esc = self.z, self.names, _XML_ESC
        ct = "".join(f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
                     for i in range(1, len(names) + 1))
        z.writestr("[Content_Types].xml", _XLSX_STATIC["[Content_Types].xml"].replace("{sheets}", ct))
        z.writestr("_rels/.rels", _XLSX_STATIC["_rels/.rels"])
        z.writestr("xl/workbook.xml", '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                   'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
                   + "".join(f'<sheet name="{n.translate(esc)}" sheetId="{i}" r:id="rId{i}"/>' for i, n in enumerate(names, 1)) + "</sheets></workbook>")
        z.writestr("xl/_rels/workbook.xml.rels", '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                   + "".join(f'<Relationship Id="rId{i}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet{i}.xml"/>'
                             for i in range(1, len(names) + 1)) + "</Relationships>")
        z.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.z.close()
        with contextlib.suppress(OSError):
            self.tmp.unlink()


def write_table(csv_path: Path, header: Sequence[str], rows: Iterable[Sequence], *, xlsx_path: Path | None = None, sheet: str = "Sheet1", bom: bool = False,
                delimiter: str = ",", preamble: Sequence[str] = ()) -> int:
    """One pass over ``rows``: each row's cells made safe once (``cell``) and written to the CSV (via
    ``csv_path.partial``, renamed) and, if asked, the XLSX. ``preamble`` lines (warnings) go above the header
    of a human-facing file, each as a one-cell row. Returns the number of data rows."""
    tmp = csv_path.with_name(csv_path.name + ".partial")
    x = XlsxWriter(xlsx_path) if xlsx_path is not None else None
    n = 0
    try:
        with open(tmp, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
            w = csv.writer(fh, lineterminator="\r\n", delimiter=delimiter)
            if x is not None:
                x.sheet(sheet, len(header))
            for line in preamble:
                w.writerow([text_cell(line)])
                if x is not None:
                    x.row([text_cell(line)])
            head = [text_cell(h) for h in header]
            w.writerow(head)
            if x is not None:
                x.row(head)
            c = cell
            for r in rows:
                vals = [c(v) for v in r]
                w.writerow(vals)
                if x is not None:
                    x.row(vals)
                n += 1
        if x is not None:
            x.close()
        os.replace(tmp, csv_path)
    except BaseException:
        if x is not None:
            x.abort()
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return n


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence], *, bom: bool = False, delimiter: str = ",", preamble: Sequence[str] = ()) -> int:
    """Write a CSV (via ``path.partial``, renamed); see ``write_table``. Returns the number of data rows."""
    return write_table(path, header, rows, bom=bom, delimiter=delimiter, preamble=preamble)


def write_xlsx(path: Path, sheets: Sequence[tuple[str, Sequence[str], Iterable[Sequence]]], *, preamble: Sequence[str] = ()) -> None:
    """An XLSX with one sheet per table (``XlsxWriter``)."""
    x = XlsxWriter(path)
    try:
        for title, header, rows in sheets:
            x.sheet(title, len(header))
            for line in preamble:
                x.row([text_cell(line)])
            x.row([text_cell(h) for h in header])
            for r in rows:
                x.row([cell(c) for c in r])
        x.close()
    except BaseException:
        x.abort()
        raise


def pct(rate: Decimal) -> str:
    """A rate as a percentage: ``0.5`` -> ``50%``."""
    return f"{EXACT.multiply(rate, Decimal(100)).normalize():f}%"


def mdy(t: date) -> str:
    return f"{t.month:02d}/{t.day:02d}/{t.year:04d}"


def dmy(t: date) -> str:
    return f"{t.day:02d}.{t.month:02d}.{t.year:04d}"


@dataclass
class RunFolder:
    """One export run: files are written into ``<out>.partial/`` and the folder is renamed to ``<out>`` at
    the end, so a failure leaves nothing half-written. ``files`` names each file for the README."""

    out: Path
    files: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tmp = self.out.with_name(self.out.name + ".partial")
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir(parents=True)

    def path(self, name: str, what: str) -> Path:
        self.files.append((name, what))
        return self.tmp / name

    def commit(self) -> None:
        if self.out.exists():
            if not self.out.is_dir():
                raise FileExistsError(f"{self.out} exists and is not a folder")
            shutil.rmtree(self.out)
        os.replace(self.tmp, self.out)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
