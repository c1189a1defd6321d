"""The large sheets' rows as SheetML text, spliced into the package openpyxl wrote.

openpyxl's write-only writer builds an lxml element per cell (20-40 µs a cell on this machine); a
1,000,000-fill year has about fifteen million cells in its detail sheets. Here openpyxl writes every
sheet as before (head, column widths, frozen header, auto-filter, print setup, the header row) and,
for a large sheet, one *prototype* row as its last row: one cell per style the rows need (money,
price, date, quantity formats, bold). After ``wb.save`` the package is copied member by member; in a
large sheet's XML the prototype row is read for its style ids and replaced by the real rows, written
as text with one f-string per cell (inline strings, numbers as their exact decimal text, dates as
Excel serial numbers, formulas as ``<f>``), streamed into the new zip: the rows are never held.

Every text cell still goes through ``reports.safety.text_cell`` and is XML-escaped; characters XML
cannot carry at all are escaped the same way.
"""

from __future__ import annotations

import re

from openpyxl.utils import get_column_letter
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

from .safety import text_cell

__all__ = ["FastSheet", "splice", "STYLE_KEYS"]

#: The styles every large sheet's prototype row carries, in this order (then one per quantity format).
STYLE_KEYS = ("money", "price", "date", "day", "int", "bold", "boldmoney")

_EPOCH = datetime(1899, 12, 30)
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


@dataclass
class FastSheet:
    """A large sheet: ``columns`` as ``reports.workbook._Sheet`` has them ((header, kind, width)),
    ``first`` the row number of its first data row, ``rows()`` its rows (values, quantity format),
    ``totals`` the columns summed in a bold ``total`` row after them, ``tail`` text rows after that."""

    title: str
    columns: Sequence[tuple[str, str, float]]
    first: int
    count: int
    rows: Callable[[], Iterable[tuple[Sequence, str | None]]]
    qty_formats: Sequence[str]
    totals: Sequence[int] = ()
    tail: Callable[[], Sequence[str]] = field(default=lambda: ())

    @property
    def proto_row(self) -> int:
        return self.first

    def style_keys(self) -> list[str]:
        return list(STYLE_KEYS) + [f"qty:{f}" for f in self.qty_formats]

    def xml_rows(self, styles: dict[str, str]) -> Iterable[str]:
        """The data rows, the totals row and the tail as SheetML ``<row>`` elements (``styles``: key -> s)."""
        cols = []
        for i, (_h, kind, _w) in enumerate(self.columns):
            k = "qty" if kind.startswith("qty") else kind
            cols.append((col_letter(i), k, styles.get(k, "0")))
        qty_style = {f: styles.get(f"qty:{f}", "0") for f in self.qty_formats}
        default_qty = styles.get("qty:#,##0.########", "0")
        dates: dict[datetime, str] = {}
        r = self.first
        n = 0
        out: list[str] = []
        add = out.append
        for values, qfmt in self.rows():
            if n >= self.count:
                break
            add(f'<row r="{r}">')
            qs = qty_style.get(qfmt, default_qty) if qfmt else default_qty
            for (L, kind, s), v in zip(cols, values):
                if v is None:
                    continue
                if isinstance(v, str):
                    if kind != "text" and v.startswith("="):
                        add(f'<c r="{L}{r}" s="{s}"><f>{v[1:].translate(_ESC)}</f></c>')
                    else:
                        add(f'<c r="{L}{r}" t="inlineStr"><is><t xml:space="preserve">{_xml_text(v)}</t></is></c>')
                elif kind == "date" and isinstance(v, datetime):
                    sv = dates.get(v)
                    if sv is None:
                        t = v.astimezone(timezone.utc).replace(tzinfo=None) if v.tzinfo else v
                        d = t - _EPOCH
                        sv = dates[v] = format(Decimal((d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds) / _DAY_US, "f")
                    add(f'<c r="{L}{r}" s="{s}"><v>{sv}</v></c>')
                elif isinstance(v, (Decimal, int)) and not isinstance(v, bool):
                    add(f'<c r="{L}{r}" s="{qs if kind == "qty" else s}"><v>{format(v, "f") if type(v) is Decimal else v}</v></c>')
                elif isinstance(v, date):
                    d = datetime(v.year, v.month, v.day) - _EPOCH
                    add(f'<c r="{L}{r}" s="{s}"><v>{d.days}</v></c>')
                else:
                    add(f'<c r="{L}{r}" t="inlineStr"><is><t xml:space="preserve">{_xml_text(str(v))}</t></is></c>')
            add("</row>")
            r += 1
            n += 1
            if len(out) > 20_000:
                yield "".join(out)
                out.clear()
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


def _styles_of(proto: str, keys: list[str]) -> dict[str, str]:
    out = {}
    cells = re.findall(r"<c\b[^>]*>", proto)
    for key, c in zip(keys, cells):
        m = re.search(r'\bs="(\d+)"', c)
        out[key] = m.group(1) if m else "0"
    return out


def splice(src: Path, dst: Path, sheets: dict[str, FastSheet], order: list[str]) -> None:
    """Copy the package ``src`` to ``dst``, the prototype row of each sheet in ``sheets`` replaced by its
    rows. ``order``: the workbook's sheet titles in order (openpyxl names their parts sheet1.xml, ...)."""
    part = {f"xl/worksheets/sheet{i + 1}.xml": title for i, title in enumerate(order)}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zout:
        for info in zin.infolist():
            title = part.get(info.filename)
            fast = sheets.get(title) if title is not None else None
            if fast is None:
                zout.writestr(info, zin.read(info.filename), compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
                continue
            xml = zin.read(info.filename).decode("utf-8")
            at = xml.find(f'<row r="{fast.proto_row}"')
            end = xml.find("</row>", at)
            if at < 0 or end < 0:
                raise RuntimeError(f"the prototype row of sheet {title!r} is missing")
            styles = _styles_of(xml[at:end], fast.style_keys())
            tail_at = xml.find("</sheetData>", end)
            zi = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi._compresslevel = 1  # type: ignore[attr-defined]  # what ZipFile.open(mode="w") reads
            with zout.open(zi, "w", force_zip64=True) as fh:
                fh.write(xml[:at].encode("utf-8"))
                for chunk in fast.xml_rows(styles):
                    fh.write(chunk.encode("utf-8"))
                fh.write(xml[tail_at:].encode("utf-8"))
