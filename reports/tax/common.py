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

import csv
import io
import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from ledger.money import EXACT, plain
from reports.safety import text_cell

__all__ = ["Num", "Fixed", "NumText", "cell", "csv_text", "write_csv", "write_xlsx", "Quantize", "ROUNDINGS", "mdy", "dmy", "RunFolder", "add", "ZERO", "EXIT_INCOMPLETE"]

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
        import re

        if not re.fullmatch(r"-?\d+([.,]\d+)?", s):
            raise ValueError(f"not a number text: {s!r}")
        return super().__new__(cls, s)


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


def cell(v) -> str:
    """The text of one cell: a ``Num``/``Decimal`` as plain decimal text, anything else through ``text_cell``."""
    if isinstance(v, NumText):
        return str(v)
    if isinstance(v, Fixed):
        return format(v.value, "f")
    if isinstance(v, Num):
        v = v.value
    if isinstance(v, Decimal):
        return plain(v)
    if v is None:
        return ""
    return text_cell(str(v))


def csv_text(header: Sequence[str], rows: Iterable[Sequence], *, delimiter: str = ",") -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n", delimiter=delimiter)
    w.writerow([text_cell(h) for h in header])
    for r in rows:
        w.writerow([cell(c) for c in r])
    return buf.getvalue()


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence], *, bom: bool = False, delimiter: str = ",", preamble: Sequence[str] = ()) -> int:
    """Write a CSV (via ``path.partial``, renamed). ``preamble`` lines (warnings) go above the header of a
    human-facing file, each as a one-cell row. Returns the number of data rows."""
    tmp = path.with_name(path.name + ".partial")
    n = 0
    with open(tmp, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\r\n", delimiter=delimiter)
        for line in preamble:
            w.writerow([text_cell(line)])
        w.writerow([text_cell(h) for h in header])
        for r in rows:
            w.writerow([cell(c) for c in r])
            n += 1
    os.replace(tmp, path)
    return n


def write_xlsx(path: Path, sheets: Sequence[tuple[str, Sequence[str], Sequence[Sequence]]], *, preamble: Sequence[str] = ()) -> None:
    """An XLSX with one sheet per table; every cell is an inline string (text cells neutralised, numbers as
    their exact text, so no spreadsheet re-rounds or evaluates them)."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for title, header, rows in sheets:
        ws = wb.create_sheet(title[:31])
        for line in preamble:
            ws.append([text_cell(line)])
        ws.append([text_cell(h) for h in header])
        for r in rows:
            ws.append([cell(c) for c in r])
        for row in ws.iter_rows():
            for c in row:
                if c.value is not None:
                    c.data_type = "s"
    tmp = path.with_name(path.name + ".partial")
    wb.save(tmp)
    os.replace(tmp, path)


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
