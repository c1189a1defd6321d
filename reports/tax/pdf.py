"""The Form 8949 attached statement (Exception 2) as a PDF laid out like the form, one per box.

reportlab's canvas is used directly (not platypus tables): a statement of a large year has hundreds
of thousands of rows, and one text line per row keeps it linear. Columns (a)-(h) as on the form,
a header naming the part and box, a page total carried on each page and the box totals at the end.
"""

from __future__ import annotations


__all__ = ["form_8949_statement"]

_ROWS_PER_PAGE = 40
_HEAD = ["(a) Description", "(b) Acquired", "(c) Sold", "(d) Proceeds", "(e) Cost/basis", "(f)", "(g) Adjust.", "(h) Gain/(loss)"]


def _ascii(s: str, n: int) -> str:
    if not (s.isascii() and s.isprintable()):
        s = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in s)
    return s if len(s) <= n else s[: n - 1] + "~"


def form_8949_statement(path, *, run, box, caption, part, rows, totals, warnings, count: int | None = None) -> None:
    """The statement of one box. ``rows``: ``Form8949Row`` objects, or (streamed, with ``count``) the box's
    cell rows as its CSV has them (columns (a)-(h), ..., disposal_id), read once, a page at a time."""
    from reportlab import rl_config
    from reportlab.lib.pagesizes import landscape, letter
    from reportlab.pdfgen import canvas

    a85, rl_config.useA85 = rl_config.useA85, 0  # zlib streams as binary, not ASCII85 (a third of the PDF's time)
    try:
        _statement(canvas, landscape(letter), path, run=run, box=box, caption=caption, part=part, rows=rows, totals=totals, warnings=warnings, count=count)
    finally:
        rl_config.useA85 = a85


def _statement(canvas, pagesize, path, *, run, box, caption, part, rows, totals, warnings, count=None) -> None:
    from itertools import islice

    from .us import _paren

    q = run.rounding
    width, height = (int(v) for v in pagesize)  # page points: US letter is 612 x 792, whole points
    c = canvas.Canvas(str(path.with_name(path.name + ".partial")), pagesize=(width, height), pageCompression=1)
    c.setTitle(f"Form 8949 {run.label} box {box} attached statement")
    n = len(rows) if count is None else count
    pages = max(1, -(-n // _ROWS_PER_PAGE))

    def header(page: int) -> int:
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
        c.setFont("Courier-Bold", 7)
        c.drawString(40, y, "".join(h.ljust(w) if i in (0, 1, 2, 5) else h.rjust(w - 1) + " " for i, (h, w) in enumerate(zip(_HEAD, [31, 13, 13, 16, 16, 5, 14, 16])))
                     + " disposal id")
        c.line(40, y - 3, width - 40, y - 3)
        return y - 13

    # One text object per page, one fixed-width (Courier) line per row: a draw call per cell made the
    # statement of a large year most of the export's time.

    def line(r) -> str:
        if isinstance(r, list):  # the CSV's cells: (a) .. (h), term, account, disposal_id, ...
            h = r[7]
            return (f"{_ascii(r[0], 30):<31}{r[1]:<13}{r[2]:<13}{r[3]:>15} {r[4]:>15} {_ascii(r[5], 4):<5}{r[6]:>13} "
                    f"{'(' + h[1:] + ')' if h.startswith('-') else h:>15} {_ascii(r[10], 40)}")
        d, e = q(r.proceeds), q(r.cost)
        g = q(r.adjustment) if r.adjustment else None
        h = d - e + g if g is not None else d - e
        return (f"{_ascii(r.description, 30):<31}{r.acquired:<13}{r.disposed:<13}{d:>15f} {e:>15f} {_ascii(r.code, 4):<5}{'' if g is None else format(g, 'f'):>13} "
                f"{_paren(q, h):>15} {_ascii(r.disposal_id, 40)}")

    it = iter(rows)
    page = 1
    last = 0
    for start in range(0, max(1, n), _ROWS_PER_PAGE):
        if start:
            c.showPage()
            page += 1
        y = header(page)
        t = c.beginText(40, y)
        t.setFont("Courier", 7)
        t.setLeading(11)
        last = 0
        for r in islice(it, _ROWS_PER_PAGE):
            t.textLine(line(r))
            last += 1
        c.drawText(t)
    y -= 11 * last
    y -= 4
    c.line(40, y + 8, width - 40, y + 8)
    c.setFont("Courier-Bold", 7)
    tot = ["Totals", "", "", format(totals.proceeds, "f"), format(totals.cost, "f"), "", format(totals.adjustment, "f"), _paren(q, totals.gain)]
    c.drawString(40, y - 2, "".join(v.ljust(w) if i in (0, 1, 2, 5) else v.rjust(w - 1) + " " for i, (v, w) in enumerate(zip(tot, [31, 13, 13, 16, 16, 5, 14, 16]))))
    c.setFont("Helvetica", 7)
    c.drawString(40, y - 14, f"{n} transactions; carry the totals to Form 8949 line 2 and Schedule D")
    c.showPage()
    c.save()
    path.with_name(path.name + ".partial").replace(path)
