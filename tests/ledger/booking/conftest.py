"""Booking tests: mixing float into Decimal arithmetic is an error in every test here."""

from __future__ import annotations

import decimal

import pytest


@pytest.fixture(autouse=True)
def _trap_float_operation():
    with decimal.localcontext() as ctx:
        ctx.traps[decimal.FloatOperation] = True
        yield
