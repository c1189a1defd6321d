"""Cells and terminal text that are safe to hand to a spreadsheet or a person (EXPORT-FORMATS.md §9).

Every exporter passes exchange-supplied **text** (symbols, ids, notes, account names) through
``text_cell`` before it writes it to a CSV or XLSX file; numbers are written as numbers (or as their
plain decimal text, which never needs neutralising), never through it:

- formula injection (OWASP ASVS V1.2.10, CWE-1236): a text that starts with ``=``, ``+``, ``-``,
  ``@``, TAB, CR, LF or NUL gets a leading single quote, so no spreadsheet evaluates it;
- control characters (C0 except TAB/LF/CR, DEL, C1) and the bidirectional overrides and isolates
  (U+202A-U+202E, U+2066-U+2069) are shown as ``\\xNN`` / ``\\u202e`` escapes: the data stays
  visible and recoverable, but never acts as a control sequence (openpyxl refuses C0 characters
  outright: ``IllegalCharacterError``).

``terminal`` escapes the same characters (and ESC) for anything printed to a terminal.
"""

from __future__ import annotations

import re

__all__ = ["text_cell", "terminal", "terminal_line", "FORMULA_PREFIXES", "UNSAFE_CHARACTERS", "is_plain_number"]

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n", "\x00")
#: C0 controls (TAB, LF and CR are handled by the CSV quoting), DEL, C1, bidi embeddings/overrides/isolates.
UNSAFE_CHARACTERS = _UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_TERMINAL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def _escape(m: re.Match[str]) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def is_plain_number(s: str) -> bool:
    """Whether ``s`` is a plain decimal (``-?\\d+(\\.\\d+)?``): a numeric cell, written raw."""
    return _NUMBER.fullmatch(s) is not None


def text_cell(value: str) -> str:
    """A text cell for CSV or XLSX: control and bidi characters escaped, a formula prefix defused."""
    if not value:
        return value
    if _UNSAFE.search(value):
        value = _UNSAFE.sub(_escape, value)
    if value[0] in FORMULA_PREFIXES:
        return "'" + value
    return value


def terminal(value: object) -> str:
    """``str(value)`` with every control character (ESC included) and bidi override escaped."""
    s = str(value)
    return _UNSAFE_TERMINAL.sub(_escape, s) if _UNSAFE_TERMINAL.search(s) else s


def terminal_line(value: object) -> str:
    """``terminal``, and TAB and LF escaped too: text printed on one line or in one table cell, where
    a line break in exchange-supplied text would start a line of its own (one that could pass for
    the program's)."""
    s = str(value)
    return _UNSAFE_LINE.sub(_escape, s) if _UNSAFE_LINE.search(s) else s
