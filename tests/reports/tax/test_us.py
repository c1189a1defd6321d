"""US exports against EXPORT-FORMATS.md §1-2's worked examples (the sample account), on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

from tests.reports.tax.sample import read_csv, run_cli, sample_entries, spot


def _export(ledger, tmp_path, *extra, year=2025):
    out = tmp_path / f"us-{year}"
    rc = run_cli("export", "tax", "--year", year, "--jurisdiction", "us", "--method", "fifo", "--out", out, "--db", ledger.url, *extra)
    return rc, out


def test_us__form_8949_boxes_match_the_reference(ledger, tmp_path):
    ledger.post(sample_entries())
    rc, out = _export(ledger, tmp_path)
    assert rc == 0
    box_i = read_csv(out / "form-8949-box-I.csv")
    cols = ("(a) Description of property", "(b) Date acquired", "(c) Date sold or disposed of", "(d) Proceeds", "(e) Cost or other basis", "(h) Gain or (loss)")
    rows = sorted(tuple(r[c] for c in cols) for r in box_i if r[cols[0]] != "Totals")
    assert rows == sorted([("1.5 SOL", "01/10/2025", "03/01/2025", "210.00", "150.00", "60.00"), ("0.005 BTC", "02/10/2024", "02/01/2025", "500.00", "525.00", "-25.00")])
    (tot,) = [r for r in box_i if r[cols[0]] == "Totals"]
    assert (tot["(d) Proceeds"], tot["(e) Cost or other basis"], tot["(h) Gain or (loss)"]) == ("710.00", "675.00", "35.00")
    box_l = [r for r in read_csv(out / "form-8949-box-L.csv") if r[cols[0]] != "Totals"]
    assert [tuple(r[c] for c in cols) for r in box_l] == [("0.01 BTC", "01/10/2024", "02/01/2025", "1000.00", "450.00", "550.00")]
    # The BTC disposal drew on a short and a long lot: two rows, one per term, with the same disposal id.
    assert {r["disposal_id"] for r in box_l} & {r["disposal_id"] for r in box_i} == {"main:9060#out"}
    assert not (out / "form-8949-box-I-summary.csv").exists()  # two rows: no Exception 2 needed
    # The caption of the box heads the human-facing file.
    first = (out / "form-8949-box-I.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    assert first.startswith("Form 8949 2025 Part I (short-term) Box I: Short-term digital asset transactions not reported to you on Form 1099-DA")


def test_us__schedule_d_lines(ledger, tmp_path):
    ledger.post(sample_entries())
    rc, out = _export(ledger, tmp_path)
    assert rc == 0
    sd = {r["line"]: r for r in read_csv(out / "schedule-d.csv")}
    assert list(sd) == ["1b", "2", "3", "7", "8b", "9", "10", "15", "16"]
    assert (sd["3"]["(d) proceeds"], sd["3"]["(e) cost or other basis"], sd["3"]["(h) gain or (loss)"]) == ("710.00", "675.00", "35.00")
    assert sd["7"]["(h) gain or (loss)"] == "35.00" and sd["10"]["(h) gain or (loss)"] == "550.00" and sd["15"]["(h) gain or (loss)"] == "550.00"
    assert sd["16"]["(h) gain or (loss)"] == "585.00" and sd["1b"]["(h) gain or (loss)"] == "0.00"


def test_us__turbotax_csv_and_txf(ledger, tmp_path):
    ledger.post(sample_entries())
    rc, out = _export(ledger, tmp_path, "--format", "csv,txf")
    assert rc == 0
    raw = (out / "turbotax.csv").read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw  # a tool-import file: no BOM, RFC 4180 line ends
    rows = sorted(tuple(r.values()) for r in read_csv(out / "turbotax.csv"))
    assert rows == sorted([("1.5", "SOL", "01/10/2025", "03/01/2025", "210.00", "150.00"), ("0.005", "BTC", "02/10/2024", "02/01/2025", "500.00", "525.00"),
                           ("0.01", "BTC", "01/10/2024", "02/01/2025", "1000.00", "450.00")])
    lines = (out / "turbotax.txf").read_text().splitlines()
    assert lines[:2] == ["V042", "Abackpack-reconcile"] and lines[2].startswith("D") and lines[3] == "^"
    records = "\n".join(lines[4:]).split("\n^")
    sol = next(r for r in records if "P1.5 SOL" in r).strip().splitlines()
    assert sol == ["TD", "N712", "C1", "L1", "P1.5 SOL", "D01/10/2025", "D03/01/2025", "$150.00", "$210.00"]
    btc_long = next(r for r in records if "P0.01 BTC" in r).strip().splitlines()
    assert btc_long == ["TD", "N714", "C1", "L1", "P0.01 BTC", "D01/10/2024", "D02/01/2025", "$450.00", "$1000.00"]


def test_us__income_summary_lists_the_ledger_categories(ledger, tmp_path):
    ledger.post(sample_entries())
    rc, out = _export(ledger, tmp_path)
    assert rc == 0
    inc = {r["category"]: r for r in read_csv(out / "income-summary.csv")}
    assert inc["interest received"]["value USD (exact)"] == "0.42"
    assert inc["perp realized P&L"]["value USD (exact)"] == "12.3" and "position lots" in inc["perp realized P&L"]["treatment"]
    assert inc["perp funding"]["value USD (exact)"] == "-0.05"
    assert inc["  of which perp funding paid"]["value USD (exact)"] == "-0.05" and inc["  of which perp funding received"]["value USD (exact)"] == "0"


def test_us__exception_2_summary_and_statement_pdf(ledger, tmp_path):
    entries = [spot("b", "2025-01-02T10:00:00", "buy", "SOL", "12", "1200")]
    entries += [spot(f"s{i:02d}", f"2025-02-{i + 1:02d}T10:00:00", "sell", "SOL", "1", str(100 + i)) for i in range(12)]
    ledger.post(entries)
    rc, out = _export(ledger, tmp_path, "--format", "csv,pdf")
    assert rc == 0
    (summary,) = read_csv(out / "form-8949-box-I-summary.csv")
    assert summary["(a) Description of property"] == "Backpack - see attached statement" and summary["(f) Code(s)"] == "M"
    assert (summary["(b) Date acquired"], summary["(c) Date sold or disposed of"]) == ("", "")
    assert summary["(d) Proceeds"] == f"{sum(100 + i for i in range(12))}.00" and summary["(e) Cost or other basis"] == "1200.00"
    assert summary["(h) Gain or (loss)"] == f"{sum(i for i in range(12))}.00"
    pdf = (out / "form-8949-box-I-statement.pdf").read_bytes()
    assert pdf.startswith(b"%PDF")
    import re
    import zlib

    text = b"".join(zlib.decompress(m) for m in re.findall(rb"stream\r?\n(.*?)endstream", pdf, re.S)).decode("latin-1")
    lines = [re.sub(r"\\(.)", r"\1", m) for m in re.findall(r"\(((?:[^()\\]|\\.)*)\) Tj", text)]
    rows = [l for l in lines if l.startswith("1 SOL")]
    assert len(rows) == 12 and rows[0].split()[:7] == ["1", "SOL", "01/02/2025", "02/01/2025", "100.00", "100.00", "0.00"]
    assert any("Part I (short-term), Box I" in l for l in lines) and any(l.startswith("Totals") and "1266.00" in l and "66.00" in l for l in lines)
    assert "form-8949-box-I-statement.pdf" in (out / "README.txt").read_text()


def test_us__1099da_setting_chooses_g_and_j(ledger, tmp_path):
    ledger.post(sample_entries())
    cfg = tmp_path / "reconcile.toml"
    cfg.write_text('[tax.form_1099da]\nmain = { 2025 = "basis-reported" }\n')
    rc, out = _export(ledger, tmp_path, "--config", cfg)
    assert rc == 0
    names = {p.name for p in out.iterdir()}
    assert {"form-8949-box-G.csv", "form-8949-box-J.csv"} <= names and "form-8949-box-I.csv" not in names
    sd = {r["line"]: r for r in read_csv(out / "schedule-d.csv")}
    assert sd["1b"]["(h) gain or (loss)"] == "35.00" and sd["8b"]["(h) gain or (loss)"] == "550.00"
    txf = out / "turbotax.txf"
    assert not txf.exists()  # txf only when asked


def test_us__years_before_2025_use_c_and_f(ledger, tmp_path):
    ledger.post([spot("b", "2023-01-02T10:00:00", "buy", "SOL", "2", "20"), spot("s1", "2024-01-01T10:00:00", "sell", "SOL", "1", "30"),
                 spot("s2", "2024-06-01T10:00:00", "sell", "SOL", "1", "5")])
    rc, out = _export(ledger, tmp_path, year=2024)
    assert rc == 0
    c = [r for r in read_csv(out / "form-8949-box-C.csv") if r["(a) Description of property"] != "Totals"]
    f = [r for r in read_csv(out / "form-8949-box-F.csv") if r["(a) Description of property"] != "Totals"]
    assert [r["(h) Gain or (loss)"] for r in c] == ["20.00"] and [r["(h) Gain or (loss)"] for r in f] == ["-5.00"]
    assert "A-F" in (out / "README.txt").read_text()


def test_us__incomplete_data_exits_4_and_writes_nothing(ledger, tmp_path, capsys):
    ledger.post([spot("s", "2025-02-01T10:00:00", "sell", "SOL", "1", "100")])  # sold, never bought: overspend
    rc, out = _export(ledger, tmp_path)
    assert rc == 4 and not out.exists()
    assert capsys.readouterr().err.splitlines()[0].startswith("reconcile: incomplete data:")
    rc, out = _export(ledger, tmp_path, "--allow-incomplete", "--format", "csv,xlsx")
    assert rc == 0
    assert "WARNING: INCOMPLETE DATA" in (out / "README.txt").read_text()
    for name in ("form-8949-box-I.csv", "schedule-d.csv", "income-summary.csv", "findings.csv"):
        assert (out / name).read_text(encoding="utf-8-sig").startswith("WARNING: INCOMPLETE DATA"), name
    from openpyxl import load_workbook

    ws = load_workbook(out / "schedule-d.xlsx").active
    assert str(ws.cell(1, 1).value).startswith("WARNING: INCOMPLETE DATA")
    assert read_csv(out / "turbotax.csv")[0]["Proceeds"] == "100.00"  # the import file keeps its exact layout


def test_us__rounding_reconciliation_line(ledger, tmp_path):
    ledger.post([spot("b", "2025-01-02T10:00:00", "buy", "SOL", "3", "10"), spot("s1", "2025-02-01T10:00:00", "sell", "SOL", "1", "5.005"),
                 spot("s2", "2025-02-02T10:00:00", "sell", "SOL", "1", "5.005")])
    rc, out = _export(ledger, tmp_path)
    assert rc == 0
    rec = {(r["box"], r["column"]): r for r in read_csv(out / "form-8949-reconciliation.csv")}
    p = rec[("I", "proceeds")]
    assert (p["exact total"], p["rounded total"], p["rounding difference"]) == ("10.01", "10.02", "0.01")
    c = rec[("I", "cost")]
    assert Decimal(c["exact total"]) + Decimal(c["rounding difference"]) == Decimal(c["rounded total"])


def test_us__streamed_xlsx_and_statement_hold_the_csv_rows(ledger, tmp_path):
    """The streamed export writes each box's rows once (spooled as booked); the XLSX sheet and the PDF statement
    are read back from that spool: the same cells as the CSV, in the same order, warnings and totals included."""
    import csv

    from openpyxl import load_workbook

    entries = [spot("b", "2025-01-02T10:00:00", "buy", "SOL", "40", "4000"), spot("b2", "2024-01-02T10:00:00", "buy", "SOL", "5", "250")]
    entries += [spot(f"s{i:02d}", f"2025-02-{i % 27 + 1:02d}T{10 + i // 27:02d}:00:00", "sell", "SOL", "1", str(90 + i)) for i in range(45)]
    ledger.post(entries)
    rc, out = _export(ledger, tmp_path, "--format", "csv,xlsx,pdf")
    assert rc == 0
    for box in ("I", "L"):
        with open(out / f"form-8949-box-{box}.csv", encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.reader(fh))
        sheet = [[("" if v is None else str(v)) for v in r] for r in load_workbook(out / f"form-8949-box-{box}.xlsx", read_only=True).active.iter_rows(values_only=True)]
        assert [r + [""] * (len(rows[-1]) - len(r)) for r in sheet] == [r + [""] * (len(rows[-1]) - len(r)) for r in rows]
        assert rows[-1][0] == "Totals" and len(rows) > 3
    # FIFO: the first five sells in time take the 2024 lot (long-term, box L), the other forty the 2025 lot (box I)
    sells = sorted(((f"2025-02-{i % 27 + 1:02d}T{10 + i // 27:02d}", Decimal(90 + i)) for i in range(45)))
    for box, part in (("L", sells[:5]), ("I", sells[5:])):
        body = [r for r in read_csv(out / f"form-8949-box-{box}.csv") if r["(a) Description of property"] != "Totals"]
        assert len(body) == len(part) and [Decimal(r["(d) Proceeds"]) for r in body] == [p for _t, p in part]
        import re
        import zlib

        pdf = (out / f"form-8949-box-{box}-statement.pdf").read_bytes()
        text = b"".join(zlib.decompress(m) for m in re.findall(rb"stream\r?\n(.*?)endstream", pdf, re.S)).decode("latin-1")
        lines = [re.sub(r"\\(.)", r"\1", m) for m in re.findall(r"\(((?:[^()\\]|\\.)*)\) Tj", text)]
        printed = [l.split() for l in lines if l.startswith("1 SOL")]
        assert [(l[2], l[3], l[4], l[5]) for l in printed] == [(r["(b) Date acquired"], r["(c) Date sold or disposed of"], r["(d) Proceeds"],
                                                               r["(e) Cost or other basis"]) for r in body]
