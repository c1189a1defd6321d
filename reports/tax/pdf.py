"""The Form 8949 attached statement (Exception 2) as a PDF laid out like the form, one per box.

reportlab's canvas is used directly (not platypus tables): a statement of a large year has hundreds
of thousands of rows, and one text line per row keeps it linear. Columns (a)-(h) as on the form,
a header naming the part and box, a page total carried on each page and the box totals at the end.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = ["form_8949_statement"]

_COLS = [("(a) Description of property", 40, "l"), ("(b) Date acquired", 178, "l"), ("(c) Date sold", 246, "l"), ("(d) Proceeds", 390, "r"),
         ("(e) Cost or other basis", 480, "r"), ("(f) Code", 500, "l"), ("(g) Adjustment", 590, "r"), ("(h) Gain or (loss)", 690, "r"), ("disposal id", 700, "l")]
_ROWS_PER_PAGE = 40


def _ascii(s: str, n: int) -> str:
    s = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in s)
    return s if len(s) <= n else s[: n - 1] + "~"


def form_8949_statement(path, *, run, box, caption, part, rows, totals, warnings) -> None:
    from reportlab.lib.pagesizes import landscape, letter
    from reportlab.pdfgen import canvas

    from .us import _paren

    q = run.rounding
    width, height = landscape(letter)
    c = canvas.Canvas(str(path.with_name(path.name + ".partial")), pagesize=(width, height), pageCompression=1)
    c.setTitle(f"Form 8949 {run.label} box {box} attached statement")
    pages = max(1, -(-len(rows) // _ROWS_PER_PAGE))

    def header(page: int) -> float:
        y = height - 36
        c.setFont("Helvetica-Bold", 11)
        c.drawString(40, y, f"Form 8949 ({run.label}) - attached statement (Exception 2) - {part}, Box {box}")
        y -= 14
        c.setFont("Helvetica", 8)
        c.drawString(40, y, _ascii(f"[X] ({box}) {caption}", 160))
        y -= 11
        for w in warnings:
            c.setFillColorRGB(0.7, 0, 0)
            c.drawString(40, y, _ascii(w, 180))
            c.setFillColorRGB(0, 0, 0)
            y -= 11
        c.drawRightString(width - 40, height - 36, f"page {page} of {pages}")
        y -= 4
        c.setFont("Helvetica-Bold", 7)
        for title, x, align in _COLS:
            (c.drawString if align == "l" else c.drawRightString)(x, y, title)
        c.line(40, y - 3, width - 40, y - 3)
        return y - 13

    page = 1
    y = header(page)
    c.setFont("Courier", 7)
    for i, r in enumerate(rows):
        if i and i % _ROWS_PER_PAGE == 0:
            c.showPage()
            page += 1
            y = header(page)
            c.setFont("Courier", 7)
        d, e, g = q(r.proceeds), q(r.cost), q(r.adjustment)
        vals = [_ascii(r.description, 30), r.acquired, r.disposed, format(d, "f"), format(e, "f"), r.code, format(g, "f") if r.adjustment else "",
                _paren(q, d - e + g), _ascii(r.disposal_id, 40)]
        for (title, x, align), v in zip(_COLS, vals):
            (c.drawString if align == "l" else c.drawRightString)(x, y, v)
        y -= 11
    y -= 4
    c.line(40, y + 8, width - 40, y + 8)
    c.setFont("Helvetica-Bold", 8)
    c.drawString(40, y - 2, f"Totals ({len(rows)} transactions): carry to Form 8949 line 2 / Schedule D")
    for idx, v in ((3, totals.proceeds), (4, totals.cost), (6, totals.adjustment), (7, totals.gain)):
        _t, x, _a = _COLS[idx]
        c.drawRightString(x, y - 2, _paren(q, v) if idx == 7 else format(v, "f"))
    c.showPage()
    c.save()
    path.with_name(path.name + ".partial").replace(path)
