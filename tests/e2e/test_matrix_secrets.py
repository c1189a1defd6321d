"""The secrets row of the matrix (issue 20; docs/reliability.md): a whole demo run (sync, prices,
check, exports, statements) with every log record kept at DEBUG, then every output scanned for each
API secret in every encoding it could leak in: zero hits. The ``*.secret`` files (the secrets' own
store, mode 600) are the only files allowed to hold them."""

from __future__ import annotations

import base64
import logging
import tomllib
import zipfile
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
    return blobs


def test_secrets__a_whole_demo_run_never_writes_or_prints_a_secret(tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    work = tmp_path / "demo"
    code = main(["demo", "--fills", "200", "--workdir", str(work)])
    out = capsys.readouterr()
    assert code == 0, out.err
    config = tomllib.loads((work / "reconcile.toml").read_text())
    secrets = {a["name"]: (work / a["api_secret_file"]).read_text().strip() for a in config["accounts"]}
    assert len(secrets) == 3 and all(len(base64.b64decode(s)) in (32, 64) for s in secrets.values())  # main, sub1, sub2
    blobs = _blobs(work)
    # every output of the demo: the ledger, the journal, the report (workbook, statement), the tax folder (CSV, XLSX,
    # PDF), the perpetuals workbook
    assert {"journal.csv", "demo.db", "report-2025/report-2025.xlsx", "report-2025/statement-2025.html", "perps-2025.xlsx",
            "tax-2025/README.txt"} <= set(blobs)
    assert any("!xl/" in k for k in blobs) and any(k.startswith("tax-2025/") and k.endswith(".pdf") for k in blobs)
    blobs["stdout"] = out.out.encode()
    blobs["stderr"] = out.err.encode()
    blobs["log"] = "\n".join(f"{r.name} {r.levelname} {r.getMessage()} {r.args!r}" for r in caplog.records).encode()
    assert len(caplog.records) > 50  # the client's DEBUG lines were kept: the scan covers them
    hits = [(name, form, where) for name, secret in secrets.items() for form, needle in _encodings(secret).items()
            for where, blob in blobs.items() if needle in blob]
    assert hits == []
    # the scan would see a leak: the secret files themselves hold the base64 form
    assert _encodings(secrets["main"])["base64"] in (work / "main.secret").read_bytes()
