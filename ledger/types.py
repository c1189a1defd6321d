"""Column types that keep money exact and time in UTC on SQLite and PostgreSQL.

SQLite has no decimal type: SQLAlchemy's ``Numeric`` there goes through float and loses digits.
``ExactDecimal`` stores the decimal's own text on SQLite and an unconstrained ``NUMERIC`` (arbitrary
precision, exact) on PostgreSQL. ``tests/ledger/test_types.py`` proves the round trip of values with
20 integer and 18 fractional digits on both, and that no float is ever involved.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from .money import D, MoneyError

__all__ = ["ExactDecimal", "UTCDateTime", "db_time", "decimal_to_db_text", "utc_from_db"]


def decimal_to_db_text(value: Decimal) -> str:
    """The text stored on SQLite for a decimal: fixed-point, never exponent notation."""
    if not isinstance(value, Decimal) or isinstance(value, bool):
        raise MoneyError(f"exact decimal column given {type(value).__name__}: pass a Decimal")
    if not value.is_finite():
        raise MoneyError(f"exact decimal column given {value!r}")
    return format(value, "f")


class ExactDecimal(TypeDecorator[Decimal]):
    """An exact decimal: NUMERIC on PostgreSQL, decimal text on SQLite. Rejects float."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects import postgresql  # imported when needed: a third of SQLite commands' import time otherwise

            return dialect.type_descriptor(postgresql.NUMERIC(asdecimal=True))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        d = value if isinstance(value, Decimal) else D(value)
        if dialect.name == "postgresql":
            if not d.is_finite():
                raise MoneyError(f"exact decimal column given {d!r}")
            return d
        return decimal_to_db_text(d)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if isinstance(value, Decimal):
            return value
        if isinstance(value, (str, int)):
            return D(value)
        raise MoneyError(f"exact decimal column returned {type(value).__name__}")


_fromiso = datetime.fromisoformat


def utc_from_db(value: Any) -> datetime | None:
    """The one parser of a stored timestamp: SQLite's text (``YYYY-MM-DD HH:MM:SS[.ffffff]``, UTC,
    as SQLAlchemy stores it), or a driver's datetime (naive UTC, or aware). Always aware UTC."""
    if value is None:
        return None
    if type(value) is str:
        if len(value) == 26 or len(value) == 19:  # the stored form: a naive UTC time
            return _fromiso(value + "+00:00")
        value = _fromiso(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value if value.tzinfo is timezone.utc else value.astimezone(timezone.utc)


def db_time(conn: Any, t: datetime | None):
    """A datetime as the column stores it, to bind in a raw query (the inverse of ``utc_from_db``): as
    is on PostgreSQL; on SQLite the UTC text SQLAlchemy's DateTime writes (``YYYY-MM-DD
    HH:MM:SS.ffffff``), so ORM reads agree with bulk writes and text comparisons order as time."""
    if t is None or conn.dialect.name == "postgresql":
        return t
    if t.tzinfo is not timezone.utc:
        t = t.astimezone(timezone.utc)
    return t.replace(tzinfo=None).isoformat(" ", "microseconds")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime. Naive values are refused on the way in."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError("UTCDateTime needs a timezone-aware datetime")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return utc_from_db(value)
