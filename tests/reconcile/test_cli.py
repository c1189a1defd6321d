"""The CLI skeleton: version, help on every command, init idempotent on both databases."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ledger.db import current_revision, head_revision, make_engine
from reconcile.cli import main


def test_cli__version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("reconcile ")


@pytest.mark.parametrize("cmd", [[], ["init"], ["simulate"], ["demo"], ["export"]])
def test_cli__help_on_every_command(cmd, capsys):
    assert main([*cmd, "--help"]) == 0
    assert "Usage" in capsys.readouterr().out


def test_cli__init_twice_is_harmless(db_url, capsys):
    assert main(["init", "--db", db_url]) == 0
    assert "upgraded from empty" in capsys.readouterr().out
    assert main(["init", "--db", db_url]) == 0
    assert "is up to date" in capsys.readouterr().out
    engine = make_engine(db_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_cli__bad_db_url_exits_2(capsys):
    assert main(["init", "--db", "mysql://nope"]) == 2
    assert "only sqlite and postgresql" in capsys.readouterr().err


def test_cli__console_script_installed():
    out = subprocess.run([sys.executable, "-m", "reconcile.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "reconcile" in out.stdout
