"""reports/safety.py: formula injection and control characters never reach a cell or a terminal."""

from __future__ import annotations

from hypothesis import given, strategies as st

from reports.safety import FORMULA_PREFIXES, is_plain_number, terminal, text_cell


def test_formula_prefixes_are_defused():
    for p in FORMULA_PREFIXES:
        out = text_cell(p + "SUM(A1)")
        assert out.startswith("'") or out.startswith("\\x00"), out
    assert text_cell("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert text_cell("SOL") == "SOL" and text_cell("") == ""


def test_controls_and_bidi_are_escaped():
    assert text_cell("A\x00B") == "A\\x00B"
    assert text_cell("\x1b[31mred") == "\\x1b[31mred"  # escaped first: no longer starts with a control
    assert text_cell("x\u202eevil") == "x\\u202eevil"
    assert terminal("\x1b[2J") == "\\x1b[2J"


@given(st.text())
def test_cells_never_start_a_formula_or_hold_a_control(s):
    out = text_cell(s)
    assert not out or out[0] not in FORMULA_PREFIXES
    assert not any(ord(c) < 0x20 and c not in "\t\r\n" for c in out)
    assert not any(0x7F <= ord(c) <= 0x9F or 0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069 for c in out)


def test_plain_numbers():
    assert is_plain_number("-25.00") and is_plain_number("3")
    assert not is_plain_number("1e5") and not is_plain_number("=1")


def test_terminal_line_escapes_line_breaks_and_tabs_too():
    from reports.safety import terminal, terminal_line

    assert terminal("LF\nX\tY") == "LF\nX\tY"  # multi-line text (the statement's raw records) keeps its lines
    assert terminal_line("LF\nX\tY\rZ\x1b") == "LF\\x0aX\\x09Y\\x0dZ\\x1b"
    assert terminal_line("plain BTC_USDC 1.5") == "plain BTC_USDC 1.5"
