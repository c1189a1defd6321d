"""Shared set-up for the report tests: a CLI runner with a clean environment."""

from __future__ import annotations

import pytest


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECONCILE_CONFIG", raising=False)
    monkeypatch.delenv("RECONCILE_DB", raising=False)
    return tmp_path
