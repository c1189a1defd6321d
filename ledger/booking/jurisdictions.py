"""Per-jurisdiction facts in one table, and the one place that turns UTC instants into tax days.

Every rule that differs by country is a field of a ``Jurisdiction`` (RP2's country plugins are the
model): the zone of the tax day, the first day of the tax year, the default and allowed booking
methods, the default scope and the day basis becomes per account (US, Rev. Proc. 2024-28). Adding a
jurisdiction is adding an entry to ``JURISDICTIONS``; the engine has no branch on a country's name.

Holding periods use calendar anniversaries, never day counts. A unit is held long-term when the
disposal's tax day is *after* the first anniversary of the acquisition's tax day:

- US (Pub. 544): the holding period starts the day after acquisition, so a sale on the anniversary
  is short-term, the day after is long-term.
- DE (§23(1) Nr. 2 EStG, §§187(1)/188(2) BGB): the year ends at the end of the anniversary, so a
  sale on the anniversary is within the year (taxable), the day after is tax-free.

Both come to the same comparison; only the zone of the tax day differs. An acquisition on
29 February has its anniversary on 28 February (BGB §188(3)).

Times everywhere in the engine are aware UTC datetimes (``ledger.types.UTCDateTime`` gives them
from the database on both backends); the exports print them with ``iso_utc``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timezone, tzinfo
from functools import lru_cache
from types import MappingProxyType
from zoneinfo import ZoneInfo

__all__ = [
    "Jurisdiction",
    "JURISDICTIONS",
    "jurisdiction",
    "zone",
    "tax_day",
    "anniversary",
    "is_long_term",
    "holding_term",
    "iso_utc",
]

UTC = timezone.utc


@lru_cache(maxsize=None)
def zone(name: str) -> tzinfo:
    """The tzinfo for a zone name; 'UTC' is the fixed UTC zone."""
    return UTC if name == "UTC" else ZoneInfo(name)


def tax_day(instant: datetime, zone_name: str) -> date:
    """The calendar date of an aware ``instant`` in the tax zone ``zone_name``."""
    if zone_name == "UTC":
        return instant.date() if instant.tzinfo is UTC else instant.astimezone(UTC).date()
    return instant.astimezone(zone(zone_name)).date()


@lru_cache(maxsize=65536)
def anniversary(acquired: date) -> date:
    """The first anniversary of ``acquired``; 29 February maps to 28 February."""
    try:
        return acquired.replace(year=acquired.year + 1)
    except ValueError:
        return acquired.replace(year=acquired.year + 1, day=28)


def is_long_term(acquired: date, disposed: date) -> bool:
    """Held more than one year: the disposal's tax day is after the first anniversary."""
    return disposed > anniversary(acquired)


def holding_term(acquired: datetime, disposed: datetime, zone_name: str) -> str:
    """'long' or 'short' for units acquired and disposed at these instants (the engine's rule)."""
    return "long" if is_long_term(tax_day(acquired, zone_name), tax_day(disposed, zone_name)) else "short"


def iso_utc(t: datetime, _days: dict = {}) -> str:  # noqa: B006 - memo of the date part (a few thousand days)
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ``: an instant as the exports print it (fixed width). The date and
    the time of day are formatted apart: the naive time formats in a third of the aware datetime's time."""
    if t.tzinfo is not UTC:
        t = t.astimezone(UTC)
    d = t.date()
    day = _days.get(d)
    if day is None:
        if len(_days) > 100_000:
            _days.clear()
        day = _days[d] = d.isoformat() + "T"
    s = t.time().isoformat()  # without timespec: cheaper; it leaves out a zero microsecond
    return f"{day}{s}Z" if len(s) == 15 else f"{day}{s}.000000Z"


@dataclass(frozen=True, slots=True)
class Jurisdiction:
    """The facts of one jurisdiction the engine and the reports need."""

    name: str
    #: IANA zone of the tax day.
    zone: str
    #: First (month, day) of the tax year; a tax year is named by the calendar year it starts in
    #: (UK 2025 = 6 April 2025 - 5 April 2026).
    year_start: tuple[int, int]
    default_method: str
    allowed_methods: tuple[str, ...]
    default_scope: str
    #: From this local day on, basis is tracked per account whatever the scope (US safe harbor).
    per_account_from: date | None = None
    #: The currency its forms are in.
    currency: str = "USD"
    #: Why the allowed methods are restricted (quoted in the error for another method).
    method_rule: str = ""

    def tax_day(self, t: datetime, zone_name: str | None = None) -> date:
        return tax_day(t, zone_name or self.zone)

    def tax_year(self, t: datetime, zone_name: str | None = None) -> int:
        """The tax year an instant falls in (in the jurisdiction's zone, or ``zone_name``)."""
        d = tax_day(t, zone_name or self.zone)
        return d.year - 1 if (d.month, d.day) < self.year_start else d.year

    def year_bounds(self, year: int, zone_name: str | None = None) -> tuple[datetime, datetime]:
        """[start, end) of tax year ``year`` as UTC instants (local midnights in the tax zone)."""
        tz = zone(zone_name or self.zone)
        month, day = self.year_start
        start = datetime(year, month, day, tzinfo=tz).astimezone(UTC)
        end = datetime(year + 1, month, day, tzinfo=tz).astimezone(UTC)
        return start, end

    def year_label(self, year: int) -> str:
        """'2025' or, for a year that does not start on 1 January, '2025/26'."""
        return str(year) if self.year_start == (1, 1) else f"{year}/{(year + 1) % 100:02d}"

    def per_account_instant(self, zone_name: str | None = None) -> datetime | None:
        """The instant basis becomes per account, or None."""
        if self.per_account_from is None:
            return None
        return datetime.combine(self.per_account_from, time.min, zone(zone_name or self.zone)).astimezone(UTC)


_LOT_METHODS = ("fifo", "lifo", "hifo", "lofo", "average")

JURISDICTIONS: MappingProxyType[str, Jurisdiction] = MappingProxyType(
    {
        "us": Jurisdiction("us", "UTC", (1, 1), "fifo", _LOT_METHODS, "universal", per_account_from=date(2025, 1, 1)),
        "uk": Jurisdiction("uk", "Europe/London", (4, 6), "uk", ("uk",), "universal", currency="GBP",
                           method_rule="HMRC share identification"),
        "de": Jurisdiction("de", "Europe/Berlin", (1, 1), "fifo", ("fifo",), "account", currency="EUR",
                           method_rule="§23(1) Nr. 2 S. 3 EStG"),
        "generic": Jurisdiction("generic", "UTC", (1, 1), "fifo", (*_LOT_METHODS, "uk"), "universal"),
    }
)


def jurisdiction(name: str) -> Jurisdiction:
    """The jurisdiction called ``name``; ``KeyError`` names the known ones."""
    try:
        return JURISDICTIONS[name]
    except KeyError:
        raise KeyError(f"unknown jurisdiction {name!r}; expected one of {list(JURISDICTIONS)}") from None
