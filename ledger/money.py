"""Exact money: Decimal built only from str, int or Decimal; never float, never bool.

The global decimal context is never changed. Arithmetic on quantities that come from the
exchange is exact at the default context's 28 significant digits for additions of values of
that size; where a product or quotient is taken (cost basis apportioning) the engine uses an
explicit local context (``EXACT``) with enough digits, and rounds only for presentation.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import Decimal
from typing import Union

__all__ = ["D", "ZERO", "Amount", "MoneyError", "EXACT", "plain", "DecimalLike"]

DecimalLike = Union[str, int, Decimal]

ZERO = Decimal(0)

#: A local context for products and quotients in basis arithmetic: 60 significant digits,
#: far beyond any quantity (20 integer + 18 fractional digits) times any price.
EXACT = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_EVEN, traps=[decimal.InvalidOperation, decimal.FloatOperation])


class MoneyError(ValueError):
    """A value that cannot be exact money (a float, a bool, garbage text, NaN or infinity)."""


def D(value: DecimalLike) -> Decimal:
    """Parse an exact decimal. Rejects float, bool, NaN and infinities with a MoneyError."""
    if type(value) is str:  # the hot path: decimals arrive as JSON strings
        try:
            d = Decimal(value)
        except decimal.InvalidOperation:
            d = None
        if d is not None and d.is_finite():
            return d
    if isinstance(value, bool) or isinstance(value, float):
        raise MoneyError(f"refusing inexact {type(value).__name__} {value!r}: pass a str, int or Decimal")
    if isinstance(value, Decimal):
        d = value
    elif isinstance(value, int):
        d = Decimal(value)
    elif isinstance(value, str):
        try:
            d = Decimal(value.strip())
        except decimal.InvalidOperation:
            raise MoneyError(f"not a decimal number: {value!r}") from None
    else:
        raise MoneyError(f"refusing {type(value).__name__} {value!r}: pass a str, int or Decimal")
    if not d.is_finite():
        raise MoneyError(f"not a finite decimal: {value!r}")
    return d


def plain(d: Decimal) -> str:
    """Render a decimal as a plain string, never in exponent notation; trailing zeros trimmed."""
    if not d.is_finite():
        raise MoneyError(f"not a finite decimal: {d!r}")
    if d == 0:
        return "0"
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


@dataclass(frozen=True, slots=True)
class Amount:
    """A quantity of one asset. Adding amounts of different assets is an error."""

    quantity: Decimal
    asset: str

    def __post_init__(self) -> None:
        if not isinstance(self.quantity, Decimal) or isinstance(self.quantity, bool):
            raise MoneyError(f"Amount quantity must be a Decimal, got {type(self.quantity).__name__}")
        if not self.asset:
            raise MoneyError("Amount needs an asset")

    def __add__(self, other: "Amount") -> "Amount":
        if not isinstance(other, Amount):
            return NotImplemented
        if other.asset != self.asset:
            raise MoneyError(f"cannot add {other.asset} to {self.asset}")
        return Amount(self.quantity + other.quantity, self.asset)

    def __sub__(self, other: "Amount") -> "Amount":
        if not isinstance(other, Amount):
            return NotImplemented
        if other.asset != self.asset:
            raise MoneyError(f"cannot subtract {other.asset} from {self.asset}")
        return Amount(self.quantity - other.quantity, self.asset)

    def __neg__(self) -> "Amount":
        return Amount(-self.quantity, self.asset)

    def __str__(self) -> str:
        return f"{plain(self.quantity)} {self.asset}"
