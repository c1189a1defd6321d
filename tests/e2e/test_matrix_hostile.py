"""The hostile-data row of the matrix (issue 20; docs/reliability.md, docs/assumptions.md A-TEXT-1).

A scenario whose every string (asset symbols, order and client ids, deposit addresses and hashes)
carries script, formula, control, bidirectional and markup values is synced on both backends; every
report and export is written, and every file and terminal line is checked: no cell is a formula,
no text starts with a formula prefix, no control or bidi character is written raw, numbers stay plain
numbers. The refused values (NUL, over-long) stop the sync with one line naming endpoint, record and
field, alike on SQLite and PostgreSQL, with nothing of their page stored and no SQL in sight.
"""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from importers.backpack.simulator.scenario import parse_scenario
from reports.safety import FORMULA_PREFIXES, is_plain_number

from .helpers import cli, db_counts, write_config
from .hostile import CONTROL_CHARS, HOSTILE, hostile_scenario

EXPORTS = [
    ("export", "journal", "--format", "csv"), ("export", "journal", "--format", "xlsx"),
    ("export", "gains", "--year", "2025", "--format", "csv"), ("export", "gains", "--all-years", "--format", "xlsx"),
    ("export", "lots", "--at", "2025-12-31", "--format", "csv"), ("export", "lots", "--at", "2025-12-31", "--format", "xlsx"),
]


def _cells(path) -> list[str]:
    if path.suffix == ".csv":
        return [c for row in csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")) for c in row]
    wb = load_workbook(path)
    out = []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (path.name, cell.coordinate, cell.value)  # never a live formula
                if cell.value is not None:
                    out.append(str(cell.value))
    return out


def _assert_safe_cell(cell: str, where: str) -> None:
    for c in CONTROL_CHARS:
        assert c not in cell, (where, cell)
    if cell and cell[0] in FORMULA_PREFIXES:
        assert cell[0] == "-" and is_plain_number(cell), (where, cell)  # only a negative number may start with '-'


def _assert_safe_terminal(text: str, where: str) -> None:
    for c in CONTROL_CHARS:
        assert c not in text, (where, repr(text[:200]))


@pytest.fixture
def hostile(start_simulator, tmp_path):
    handle = start_simulator(world=parse_scenario(hostile_scenario()))
    return write_config(tmp_path / "cfg", handle.accounts, handle.base_url)


def test_hostile_strings__synced_on_both_backends_and_every_output_neutralises_them(db_url, hostile, tmp_path, capsys):
    config = hostile
    printed = []
    for args in (("sync",), ("prices", "--offline"), ("status",), ("check",)):
        code, out, err = cli(capsys, *args, "--config", config, "--db", db_url)
        assert code == 0, (args, err)
        printed.append((args, out + err))
    cells: dict[str, list[str]] = {}
    for i, command in enumerate(EXPORTS):
        out = tmp_path / f"out{i}.{command[-1]}"
        code, so, err = cli(capsys, *command, "--out", out, "--config", config, "--db", db_url)
        assert code == 0, (command, err)
        printed.append((command, so + err))
        cells[" ".join(command)] = _cells(out)
    for where, text in printed:
        _assert_safe_terminal(text, str(where))
    for where, values in cells.items():
        assert values, where
        for cell in values:
            _assert_safe_cell(cell, where)
    # The data is kept, visibly: each hostile symbol is in the journal and the gains, defused.
    journal, gains = set(cells["export journal --format csv"]), set(cells["export gains --year 2025 --format csv"])
    assert "'" + HOSTILE["formula"] in journal and "'" + HOSTILE["formula"] in gains
    assert "'" + HOSTILE["at"] in gains and "'" + HOSTILE["plus"] in gains and "'" + HOSTILE["minus"] in gains
    assert HOSTILE["script"] in gains and HOSTILE["markup"] in gains
    assert "\\x1b[31mRED\\x1b[0m\\x07" in gains and "\\u202egnp.exe\\u2066x\\u2069" in gains
    assert "'\tTAB" in gains
    xlsx_gains = set(cells["export gains --all-years --format xlsx"])
    assert "'" + HOSTILE["formula"] in xlsx_gains and "\\x1b[31mRED\\x1b[0m\\x07" in xlsx_gains
    # Numbers stay numbers: the gains of the eleven assets, unquoted.
    assert cells["export gains --year 2025 --format csv"].count("1.983") == len(HOSTILE)


REFUSED_CASES = {
    # value, the first field of the fill that carries it (orderId carries it too), why
    "nul_in_symbol": ("SOL\x00X", "orderId", "contains a NUL character, which the ledger does not store"),
    "symbol_65_chars": ("S" * 65, "symbol", "is 70 characters long; the ledger stores at most 64"),
}


@pytest.mark.parametrize("where", ["snapshot", "history"])
@pytest.mark.parametrize("case", sorted(REFUSED_CASES))
def test_refused_strings__one_line_naming_endpoint_record_field_alike_on_both_backends(db_url, start_simulator, tmp_path, capsys, case, where):
    value, field, reason = REFUSED_CASES[case]
    doc = hostile_scenario({"v": value})
    if where == "history":  # the exchange's balances served as given, without the asset: the fills page refuses it
        doc["balances"] = {"USDC": {"available": "99978.978", "locked": "0", "staked": "0"}}
        expected_start, expected_end = "reconcile: error: fills: record fills:1:", f"(#0): field '{field}' {reason}"
        expected_counts = {"raw_records": 1, "journal_entries": 1}  # the deposit; no fill of the refused page
    else:  # the snapshot's balances carry the asset: refused before anything is stored
        expected_start, expected_end = "reconcile: error: balances: record #", f": asset name {reason.replace('70', '65')}"
        expected_counts = {"raw_records": 0, "journal_entries": 0}
    handle = start_simulator(world=parse_scenario(doc))
    config = write_config(tmp_path / "cfg", handle.accounts, handle.base_url)
    for attempt in range(2):  # a rerun fails alike: one line, never a SQL dump
        code, out, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet")
        assert code == 1, err
        lines = [l for l in err.splitlines() if l.strip()]
        assert len(lines) == 1, err
        line = lines[0]
        assert line.startswith(expected_start) and line.endswith(expected_end), line
        assert "\x00" not in line and "INSERT" not in err and "100000" not in err + out and "99978" not in err + out
        counts = db_counts(db_url)
        assert {k: counts[k] for k in expected_counts} == expected_counts


def test_refused_order_id__over_255_characters(db_url, start_simulator, tmp_path, capsys):
    doc = hostile_scenario({"x": "X"}, as_symbols=False)
    for f in doc["fills"]:
        f["orderId"] = "9" * 300
    handle = start_simulator(world=parse_scenario(doc))
    config = write_config(tmp_path / "cfg", handle.accounts, handle.base_url)
    code, _o, err = cli(capsys, "sync", "--config", config, "--db", db_url, "--quiet")
    assert code == 1
    assert err.strip().endswith("field 'orderId' is 300 characters long; the ledger stores at most 255"), err
    assert len(err.strip().splitlines()) == 1
    assert "99999999999999999999999999999999999999999999999999999999999999999999999999999999999" not in err  # the key is cut
