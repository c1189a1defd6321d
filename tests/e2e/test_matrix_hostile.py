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
import re
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest
from openpyxl import load_workbook

from importers.backpack.simulator.scenario import parse_scenario
from reports.safety import FORMULA_PREFIXES, is_plain_number

from .helpers import cli, db_counts, write_config
from .hostile import CONTROL_CHARS, HOSTILE, hostile_scenario

#: Every export and report, each with the files it writes (relative to the run folder). A writer
#: added to the CLI must be added here: the hostile row goes through every one.
COMMANDS: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    (("export", "journal", "--format", "csv", "--out", "journal.csv"), ("journal.csv",)),
    (("export", "journal", "--format", "xlsx", "--out", "journal.xlsx"), ("journal.xlsx",)),
    (("export", "gains", "--year", "2025", "--format", "csv", "--out", "gains.csv"), ("gains.csv",)),
    (("export", "gains", "--all-years", "--format", "xlsx", "--out", "gains.xlsx"), ("gains.xlsx",)),
    (("export", "lots", "--at", "2025-12-31", "--format", "csv", "--out", "lots.csv"), ("lots.csv",)),
    (("export", "lots", "--at", "2025-12-31", "--format", "xlsx", "--out", "lots.xlsx"), ("lots.xlsx",)),
    (("export", "income", "--year", "2025", "--format", "csv", "--out", "income.csv"), ("income.csv",)),
    (("export", "income", "--year", "2025", "--format", "xlsx", "--out", "income.xlsx"), ("income.xlsx",)),
    (("export", "perps", "--year", "2025", "--format", "csv", "--out", "perps.csv"), ("perps*.csv",)),
    (("export", "perps", "--year", "2025", "--format", "xlsx", "--out", "perps.xlsx"), ("perps.xlsx",)),
    (("report", "--year", "2025", "--out", "report"), ("report/*",)),
    (("statement", "--year", "2025", "--format", "html", "--out", "statement.html"), ("statement.html",)),
    (("statement", "--year", "2025", "--format", "xlsx", "--out", "statement.xlsx"), ("statement.xlsx",)),
    (("export", "tax", "--year", "2025", "--jurisdiction", "us", "--format", "csv,xlsx,pdf,txf", "--out", "tax-us"), ("tax-us/*",)),
    (("export", "tax", "--year", "2025", "--jurisdiction", "uk", "--method", "uk", "--format", "csv,xlsx,pdf", "--out", "tax-uk"), ("tax-uk/*",)),
    (("export", "tax", "--year", "2025", "--jurisdiction", "de", "--format", "csv,xlsx,pdf", "--out", "tax-de"), ("tax-de/*",)),
    (("export", "tax", "--year", "2025", "--jurisdiction", "generic", "--format", "csv,xlsx,pdf", "--out", "tax-generic"), ("tax-generic/*",)),
    (("export", "koinly", "--out", "koinly.csv"), ("koinly.csv",)),
    (("export", "cointracker", "--out", "cointracker.csv"), ("cointracker.csv",)),
    (("export", "awaken", "--out", "awaken.csv"), ("awaken*.csv",)),
    (("export", "beancount", "--out", "ledger.beancount"), ("ledger.beancount",)),
    (("export", "hledger", "--out", "ledger.journal"), ("ledger.journal",)),
]


def _cells(path: Path) -> list[str]:
    """The text cells of a CSV or XLSX file (an XLSX formula cell fails here)."""
    if path.suffix == ".csv":
        text = path.read_text(encoding="utf-8-sig")
        delimiter = ";" if text.split("\n", 1)[0].count(";") > text.split("\n", 1)[0].count(",") else ","
        return [c for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) for c in row]
    wb = load_workbook(path)
    out, formulas = [], []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if cell.data_type == "f":  # only the writer's own formulas (totals over its cells), never data
                    assert path.name in OWN_FORMULAS_IN and _own_formula(cell.value), (path.name, ws.title, cell.coordinate, cell.value)
                    formulas.append(cell.value)
                elif cell.value is not None:
                    out.append(str(cell.value))
    with zipfile.ZipFile(path) as z:  # no other formula element anywhere in the sheets' XML either
        n = sum(z.read(name).count(b"<f>") + z.read(name).count(b"<f ") for name in z.namelist() if name.startswith("xl/worksheets/"))
        assert n == len(formulas), (path.name, n, len(formulas))
    return out


#: What is left of each hostile value once its formula prefix is cut: its trace in any output.
CORES = [v.lstrip("=+-@\t\r") for v in HOSTILE.values()]
#: The workbooks whose totals are formulas by design (reports/workbook.py: SUM/SUMIF over the rows).
OWN_FORMULAS_IN = ("report-2025.xlsx", "statement.xlsx")
_REFERENCES = re.compile(r"=[A-Z]+\(.*|=[A-Z]{1,3}\d+([-+*][A-Z]{1,3}\d+)*")


def _own_formula(f: str) -> bool:
    """A formula the writer built: references and functions, no trace of exchange data in it."""
    return bool(_REFERENCES.fullmatch(f)) and not _carries_data(f) and not any(ch in f for ch in CONTROL_CHARS)


def _pdf_text(path: Path) -> bytes:
    """The decompressed content streams of a PDF (reportlab: FlateDecode, no ASCII85)."""
    data = path.read_bytes()
    assert data.startswith(b"%PDF-"), path
    out = []
    for m in re.finditer(rb"stream\r?\n", data):
        end = data.find(b"endstream", m.end())
        try:
            out.append(zlib.decompress(data[m.end():end].rstrip(b"\r\n")))
        except zlib.error:
            continue
    return b"\n".join(out)


def _assert_safe_cell(cell: str, where: str) -> None:
    for c in CONTROL_CHARS:
        assert c not in cell, (where, cell)
    if cell and cell[0] in FORMULA_PREFIXES:
        # only a negative number may start with '-', or the writer's own label ('+ acquisitions'): never exchange data
        assert (cell[0] == "-" and is_plain_number(cell)) or not _carries_data(cell), (where, cell)


def _carries_data(text: str) -> bool:
    return any(core in text for core in CORES)


def _assert_safe_terminal(text: str, where: str) -> None:
    for c in CONTROL_CHARS:
        assert c not in text, (where, repr(text[:200]))


def _check_file(path: Path, where: str) -> set[str]:
    """Every hazard of one output file; returns the text it shows (cells, or the text itself)."""
    if path.suffix in (".csv", ".xlsx"):
        cells = _cells(path)
        for cell in cells:
            _assert_safe_cell(cell, f"{where}: {path.name}")
        return set(cells)
    if path.suffix == ".pdf":
        text = _pdf_text(path)
        assert text, path
        for c in CONTROL_CHARS:
            assert c.encode("latin-1", "ignore") not in text or not c.encode("latin-1", "ignore"), (where, path.name, c)
        return {text.decode("latin-1")}
    with open(path, encoding="utf-8", newline="") as f:  # as written: CR and CRLF kept
        text = f.read()
    _assert_safe_terminal(text, f"{where}: {path.name}")
    if path.suffix == ".html":
        # autoescaped: the script is text, never an element; no attribute or tag is opened by the data
        assert HOSTILE["script"] not in text and "<script>alert" not in text, (where, path.name)
    # line-oriented (LF or CRLF): the data's CR never splits a line
    assert "\r" not in text.replace("\r\n", ""), (where, path.name)
    if path.suffix == ".txf":  # CRLF records, each line a one-letter field code: the data's LF never splits one either
        for line in text.split("\r\n"):
            assert line == "" or line[0] in "VADTNCLP$^", (where, path.name, line)
    return {text}


@pytest.fixture
def hostile(start_simulator, tmp_path):
    handle = start_simulator(world=parse_scenario(hostile_scenario(income_and_perps=True)))
    return write_config(tmp_path / "cfg", handle.accounts, handle.base_url)


def test_hostile_strings__synced_on_both_backends_and_every_output_neutralises_them(db_url, hostile, tmp_path, capsys):
    config = hostile
    printed = []
    for args in (("sync",), ("prices", "--offline"), ("status",), ("check",)):
        code, out, err = cli(capsys, *args, "--config", config, "--db", db_url)
        assert code == 0, (args, err)
        printed.append((args, out + err))
    run = tmp_path / "run"
    run.mkdir()
    shown: dict[str, set[str]] = {}
    for command, produced in COMMANDS:
        argv = [str(run / a) if i and command[i - 1] == "--out" else a for i, a in enumerate(command)]
        code, so, err = cli(capsys, *argv, "--config", config, "--db", db_url)
        assert code == 0, (command, err)
        printed.append((command, so + err))
        files = sorted(p for pattern in produced for p in run.glob(pattern) if p.is_file())
        assert files, (command, produced)
        where = " ".join(command[:2])
        for f in files:
            shown.setdefault(where, set()).update(_check_file(f, where))
    for where, text in printed:
        _assert_safe_terminal(text, str(where))
        # a line break in an exchange-supplied name never starts a line of its own (one that could pass for ours)
        assert HOSTILE["lf"] not in text, where
    assert any("LF\\x0aX" in text for where, text in printed if where in (("status",), ("check",)))
    # The data is kept, visibly: each hostile symbol is in the journal and the gains, defused.
    journal, gains = shown["export journal"], shown["export gains"]
    assert "'" + HOSTILE["formula"] in journal and "'" + HOSTILE["formula"] in gains
    assert "'" + HOSTILE["at"] in gains and "'" + HOSTILE["plus"] in gains and "'" + HOSTILE["minus"] in gains
    assert HOSTILE["script"] in gains and HOSTILE["markup"] in gains
    assert "\\x1b[31mRED\\x1b[0m\\x07" in gains and "\\u202egnp.exe\\u2066x\\u2069" in gains
    assert "'\tTAB" in gains
    # Numbers stay numbers: the gains of the eleven assets, unquoted.
    gains_csv = _cells(run / "gains.csv")
    assert gains_csv.count("1.983") == len(HOSTILE)
    # Every report and export shows the hostile symbols (defused), not a placeholder: the formula as text,
    # ESC as its escape; the HTML shows the script as text.
    for where, texts in shown.items():
        blob = "\n".join(texts)
        assert "HYPERLINK" in blob, where
        if where != "export tax":  # the PDF statement shows '?' for a control character (ASCII only)
            assert "\\x1b[31mRED" in blob, where
    for where in ("report --year", "statement --year"):
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in "\n".join(shown[where]), where
    perps, income = shown["export perps"], shown["export income"]
    assert "'" + HOSTILE["formula"] + "_USDC_PERP" in perps and "'@cmd_USDC_PERP" in perps
    assert "'" + HOSTILE["formula"] in income and "\\u202egnp.exe\\u2066x\\u2069" in income
    # The plain-text journals stay valid: beancount's own checker reads the export without an error.
    bean_check = Path(sys.executable).with_name("bean-check")
    if bean_check.exists():
        proc = subprocess.run([str(bean_check), str(run / "ledger.beancount")], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    # Every line of the hledger journal is a directive, a posting, a comment or blank: no data line breaks out.
    for line in (run / "ledger.journal").read_text(encoding="utf-8").split("\n"):
        assert line == "" or line[0] in ";  " or re.match(r"(commodity|account) |\d{4}-\d\d-\d\d \* ", line), line


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
