"""The streamed XLSX writer: what a spreadsheet reads back is the text written, escaped or not."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from reports.tax.common import XlsxWriter

# XML 1.0 text: no control characters other than tab, line feed and carriage return (cells come through text_cell).
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff") | st.sampled_from("&<>\"'\r\t\n"), max_size=12)


@settings(max_examples=30, deadline=None)
@given(rows=st.lists(st.lists(TEXT, min_size=1, max_size=5), min_size=1, max_size=8))
def test_xlsx_writer__cells_read_back_as_written(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("x") / "t.xlsx"
    x = XlsxWriter(path)
    x.sheet("s", 5)
    for r in rows:
        x.row(r)
    x.close()
    ws = load_workbook(path, read_only=True).active
    got = [[c.value for c in row] for row in ws.iter_rows()]
    # An empty cell is not written: openpyxl reads None there (and drops trailing empty rows).
    want = [[v if v else None for v in r] for r in rows]
    width = max(len(r) for r in want)
    want = [r + [None] * (width - len(r)) for r in want]
    got = [r + [None] * (width - len(r)) for r in got]
    while want and all(v is None for v in want[-1]):
        want.pop()
    assert got[: len(want)] == want
    assert all(all(v is None for v in r) for r in got[len(want):])


def test_xlsx_writer__a_row_with_markup_is_escaped_and_a_plain_row_is_not(tmp_path):
    path = tmp_path / "t.xlsx"
    x = XlsxWriter(path)
    x.sheet("s", 3)
    x.row(["1.5 BTC", "01/02/2025", "100.00"])
    x.row(["a & b", "<script>", 'say "hi"\r'])
    x.close()
    ws = load_workbook(path).active
    assert [c.value for c in ws[1]] == ["1.5 BTC", "01/02/2025", "100.00"]
    assert [c.value for c in ws[2]] == ["a & b", "<script>", 'say "hi"\r']
