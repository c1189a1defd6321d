"""Config files: every problem is one line naming the file, the key and the problem; exit 2; nothing written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconcile.cli import main
from reconcile.config import ConfigError, load_config, resolve_db_url

KEY = "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ="
SECRET = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="


def _write(tmp_path: Path, text: str, secret_mode: int = 0o600) -> Path:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET + "\n")
    os.chmod(secret, secret_mode)
    cfg = tmp_path / "reconcile.toml"
    cfg.write_text(text)
    return cfg


GOOD = f"""
[database]
url = "sqlite:///x.db"
[[accounts]]
name = "main"
api_key = "{KEY}"
api_secret_file = "secret.txt"
base_url = "http://127.0.0.1:9999"
[reporting]
currency = "EUR"
jurisdiction = "uk"
method = "uk"
"""


def test_config__good_file_loads(tmp_path):
    cfg = load_config(_write(tmp_path, GOOD))
    acc = cfg.account("main")
    assert acc.base_url == "http://127.0.0.1:9999"
    assert acc.read_secret() == SECRET
    assert cfg.reporting.currency == "EUR" and cfg.reporting.method == "uk"
    assert SECRET not in repr(cfg) and SECRET not in repr(acc)


@pytest.mark.parametrize(
    "text,needle",
    [
        ("[database\nurl=1", "TOML syntax error"),
        ("[database]\nurl = 'x'\ncolour = 1", "database.colour: unknown key"),
        ("[[accounts]]\nname='main'\napi_key='k'", "missing secret"),
        (f"[[accounts]]\nname='main'\napi_key='{KEY}'\napi_secret='{SECRET}'", "accounts[0].api_secret: unknown key"),
        ("[reporting]\nmethod='fofi'", "reporting.method: 'fofi' is not one of"),
        ("[[accounts]]\nname='a'\napi_key='k'\napi_secret_env='X'\nwindow_ms=70000", "window_ms: 70000 is outside"),
        ("[[accounts]]\nname='a'\napi_key='k'\napi_secret_env='X'\nbase_url='ftp://x'", "base_url"),
    ],
)
def test_config__bad_file_one_line_naming_key(tmp_path, text, needle):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert needle in msg and str(path) in msg and "\n" not in msg
    assert SECRET not in msg


def test_config__secret_file_readable_by_others(tmp_path):
    cfg = load_config(_write(tmp_path, GOOD, secret_mode=0o644))
    with pytest.raises(ConfigError, match=r"api_secret_file: .*readable by others \(mode 644\)"):
        cfg.account("main").read_secret()


def test_config__missing_secret_env(tmp_path, monkeypatch):
    monkeypatch.delenv("BPX_NOPE", raising=False)
    cfg = load_config(_write(tmp_path, f"[[accounts]]\nname='m'\napi_key='{KEY}'\napi_secret_env='BPX_NOPE'"))
    with pytest.raises(ConfigError, match="BPX_NOPE is not set"):
        cfg.account("m").read_secret()


def test_config__db_precedence(tmp_path, monkeypatch):
    cfg = load_config(_write(tmp_path, GOOD))
    monkeypatch.delenv("RECONCILE_DB", raising=False)
    assert resolve_db_url(None, load_config(None)) == "sqlite:///reconcile.db"
    assert resolve_db_url(None, cfg) == "sqlite:///x.db"
    monkeypatch.setenv("RECONCILE_DB", "sqlite:///env.db")
    assert resolve_db_url(None, cfg) == "sqlite:///env.db"
    assert resolve_db_url("sqlite:///cli.db", cfg) == "sqlite:///cli.db"


def test_cli__bad_config_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path, "[database]\nurl = 'sqlite:///should-not-exist.db'\nbogus = 1")
    assert main(["init", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "database.bogus: unknown key" in err and str(path) in err
    assert not (tmp_path / "should-not-exist.db").exists()


def test_cli__config_from_env_variable(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECONCILE_DB", raising=False)
    path = _write(tmp_path, f"[database]\nurl = 'sqlite:///{tmp_path}/fromcfg.db'")
    monkeypatch.setenv("RECONCILE_CONFIG", str(path))
    assert main(["init"]) == 0
    assert (tmp_path / "fromcfg.db").exists()
