"""Errors for user-supplied input files (CSV price files, FX rates, opening lots)."""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """A user file that cannot be used: the message names the file, the line and the problem."""
