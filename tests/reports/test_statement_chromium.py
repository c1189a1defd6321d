"""The HTML statement in headless Chromium (Debian's package, installed by the test set-up when missing):
it renders without console errors, its screenshot is not blank, and it prints to a sensible number of pages."""

from __future__ import annotations

import re
import struct
import subprocess
import zlib
from datetime import datetime, timedelta

import pytest

from ledger.journal import Journal
from ledger.money import D
from ledger.posting import Source, trade
from reconcile.cli import main
from tests.reports import office, report_ledger
from tests.reports.report_ledger import UTC, valued


def _run(args, tmp_path, timeout=240):
    exe = office.chromium()
    proc = subprocess.run([exe, *office.chromium_flags(tmp_path / "chromium-profile"), "--enable-logging=stderr", "--v=0", *args],
                          capture_output=True, text=True, timeout=timeout)
    return proc


def _console_errors(stderr: str) -> list[str]:
    return [l for l in stderr.splitlines() if "CONSOLE" in l or "Uncaught" in l or "Failed to load resource" in l]


def _png_pixels(path) -> bytes:
    """The decompressed image data of a PNG (filter bytes included: enough to tell blank from drawn)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    return zlib.decompress(idat)


def _pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", pdf))


def _statement(engine, db_url, tmp_path, extra=()):
    report_ledger.build(engine)
    if extra:
        with engine.begin() as conn:
            Journal(conn).post(list(extra))
    out = tmp_path / "s.html"
    assert main(["statement", "--year", "2025", "--out", str(out), "--db", db_url, "--jurisdiction", "us", "--method", "fifo", "--allow-incomplete"]) == 0
    return out


@pytest.mark.slow
def test_statement__renders_without_console_errors_and_is_not_blank(engine, db_url, clean_env, tmp_path):
    page = _statement(engine, db_url, tmp_path)
    # The detector works: a page with a script error is caught.
    bad = tmp_path / "bad.html"
    bad.write_text("<!doctype html><html><body><script>console.error('boom'); undefinedCall();</script></body></html>")
    proc = _run(["--dump-dom", bad.as_uri()], tmp_path)
    assert _console_errors(proc.stderr), proc.stderr[-2000:]
    proc = _run(["--dump-dom", page.as_uri()], tmp_path)
    assert proc.returncode == 0 and "Realized gains" in proc.stdout
    assert not _console_errors(proc.stderr), _console_errors(proc.stderr)
    shot = tmp_path / "shot.png"
    proc = _run(["--window-size=1280,1600", f"--screenshot={shot}", page.as_uri()], tmp_path)
    assert shot.exists(), proc.stderr[-2000:]
    pixels = _png_pixels(shot)
    assert len(set(pixels)) > 50 and pixels.count(255) < len(pixels) * 0.97  # drawn: many colours, not all white


@pytest.mark.slow
def test_statement__prints_to_a_sensible_number_of_pages(engine, db_url, clean_env, tmp_path):
    # 300 more round trips: 600 fills, 300 disposals in 2025.
    t = datetime(2025, 9, 1, tzinfo=UTC)
    extra = []
    for i in range(300):
        at = t + timedelta(minutes=10 * i)
        extra.append(valued(trade(Source("main", "fills", f"rb{i}", at), kind="spot-trade", base="BTC", quote="USDC", side="buy",
                                  quantity=D("0.01"), quote_quantity=D("4.5")), D(450)))
        extra.append(valued(trade(Source("main", "fills", f"rs{i}", at + timedelta(minutes=5)), kind="spot-trade", base="BTC", quote="USDC",
                                  side="sell", quantity=D("0.01"), quote_quantity=D("4.6")), D(460)))
    page = _statement(engine, db_url, tmp_path, extra)
    pdf = tmp_path / "s.pdf"
    proc = _run(["--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.as_uri()], tmp_path, timeout=400)
    assert pdf.exists(), proc.stderr[-2000:]
    n = _pages(pdf.read_bytes())
    # ~300 gain rows print at 25-40 a page, plus the summary, charts and aggregates: not the detail of every drill-down.
    assert 5 <= n <= 30, n
