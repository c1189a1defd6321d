"""The secrets row of the matrix (issue 20; docs/reliability.md): a whole demo run (sync, prices,
check, exports, statements), then every report and export on its ledger (report, export tax in every
format, income, perps, lots, the interop and plain-text journals, status, check), with every log
record kept at DEBUG, then every output (XLSX members and PDF streams unpacked) scanned for each
API secret in every encoding it could leak in: zero hits. The ``*.secret`` files (the secrets' own
store, mode 600) are the only files allowed to hold them."""

from __future__ import annotations

import base64
import logging
import re
import tomllib
import zipfile
import zlib
from pathlib import Path
from urllib.parse import quote, quote_plus

from reconcile.cli import main


def _encodings(secret_b64: str) -> dict[str, bytes]:
    raw = base64.b64decode(secret_b64)
    seed = raw[:32]
    forms = {
        "base64": secret_b64, "base64_unpadded": secret_b64.rstrip("="),
        "base64_urlsafe": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "percent": quote(secret_b64, safe=""), "percent_plus": quote_plus(secret_b64),
        "json_escaped": secret_b64.replace("/", "\\/"),
        "hex": seed.hex(), "HEX": seed.hex().upper(), "base32": base64.b32encode(seed).decode().rstrip("="),
        "repr_bytes": repr(seed)[2:-1],
    }
    out = {k: v.encode() for k, v in forms.items()}
    out["raw_seed"] = seed
    out["utf16"] = secret_b64.encode("utf-16-le")
    # a leak of a part: the first 16 characters of the base64 (96 bits) are enough to call it a leak
    out["base64_prefix"] = secret_b64[:16].encode()
    return out


def _blobs(work: Path) -> dict[str, bytes]:
    blobs = {}
    for p in sorted(work.rglob("*")):
        if not p.is_file() or p.suffix == ".secret":
            continue
        data = p.read_bytes()
        blobs[str(p.relative_to(work))] = data
        if zipfile.is_zipfile(p):  # XLSX: the sheets are compressed
            with zipfile.ZipFile(p) as z:
                for name in z.namelist():
                    blobs[f"{p.name}!{name}"] = z.read(name)
        if data.startswith(b"%PDF-"):  # PDF: the page contents are zlib streams
            for i, m in enumerate(re.finditer(rb"stream\r?\n", data)):
                end = data.find(b"endstream", m.end())
                try:
                    blobs[f"{p.name}!stream{i}"] = zlib.decompress(data[m.end():end].rstrip(b"\r\n"))
                except zlib.error:
                    continue
    return blobs


#: Every report and export beyond what the demo itself writes, run on the demo's ledger (the exchange
#: is gone by then: these read the database only). ``{w}`` is the work directory.
AFTER_DEMO = [
    (["report", "--year", "2025", "--out", "{w}/report", "--allow-incomplete"], "report"),
    (["export", "tax", "--year", "2025", "--format", "csv,xlsx,pdf,txf", "--out", "{w}/tax-us", "--allow-incomplete"], "tax-us"),
    (["export", "tax", "--year", "2025", "--jurisdiction", "uk", "--method", "uk", "--format", "csv,xlsx,pdf", "--out", "{w}/tax-uk",
      "--allow-incomplete"], "tax-uk"),
    (["export", "income", "--year", "2025", "--out", "{w}/income.csv", "--allow-incomplete"], "income.csv"),
    (["export", "perps", "--year", "2025", "--format", "xlsx", "--out", "{w}/perps.xlsx"], "perps.xlsx"),
    (["export", "lots", "--at", "2025-12-31", "--format", "xlsx", "--out", "{w}/lots.xlsx"], "lots.xlsx"),
    (["export", "journal", "--format", "xlsx", "--out", "{w}/journal.xlsx"], "journal.xlsx"),
    (["export", "koinly", "--out", "{w}/koinly.csv"], "koinly.csv"),
    (["export", "cointracker", "--out", "{w}/cointracker.csv"], "cointracker.csv"),
    (["export", "awaken", "--out", "{w}/awaken.csv"], "awaken.csv"),
    (["export", "beancount", "--out", "{w}/ledger.beancount"], "ledger.beancount"),
    (["export", "hledger", "--out", "{w}/ledger.journal"], "ledger.journal"),
    (["status"], None),
    (["check"], None),
]


def test_secrets__a_whole_demo_run_never_writes_or_prints_a_secret(tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    work = tmp_path / "demo"
    code = main(["demo", "--fills", "200", "--workdir", str(work)])
    out = capsys.readouterr()
    assert code == 0, out.err
    demo_files = {p.name for p in work.iterdir()}
    printed = [out.out, out.err]
    for argv, produced in AFTER_DEMO:
        code = main([a.format(w=work) for a in argv] + ["--config", str(work / "reconcile.toml")])
        run = capsys.readouterr()
        printed += [run.out, run.err]
        assert code in (0, 3, 4), (argv, code, run.err)  # 3: a difference, 4: incomplete (the demo's data is, on purpose)
        if produced is not None:
            assert (work / produced).exists(), (argv, run.err)
    config = tomllib.loads((work / "reconcile.toml").read_text())
    secrets = {a["name"]: (work / a["api_secret_file"]).read_text().strip() for a in config["accounts"]}
    assert len(secrets) == 3 and all(len(base64.b64decode(s)) in (32, 64) for s in secrets.values())  # main, sub1, sub2
    blobs = _blobs(work)
    assert {"journal.csv", "demo.db"} <= demo_files and demo_files <= {k.split("/")[0] for k in blobs} | {p for p in demo_files if p.endswith(".secret")}
    assert any(k.endswith(".pdf") for k in blobs) and any(".pdf!stream" in k for k in blobs) and any(k.endswith(".txf") for k in blobs)
    assert any("!xl/" in k for k in blobs) and any(k.startswith("report/") for k in blobs)
    blobs["stdout"] = "\n".join(printed[0::2]).encode()
    blobs["stderr"] = "\n".join(printed[1::2]).encode()
    blobs["log"] = "\n".join(f"{r.name} {r.levelname} {r.getMessage()} {r.args!r}" for r in caplog.records).encode()
    assert len(caplog.records) > 50  # the client's DEBUG lines were kept: the scan covers them
    hits = [(name, form, where) for name, secret in secrets.items() for form, needle in _encodings(secret).items()
            for where, blob in blobs.items() if needle in blob]
    assert hits == []
    # the scan would see a leak: the secret files themselves hold the base64 form
    assert _encodings(secrets["main"])["base64"] in (work / "main.secret").read_bytes()
