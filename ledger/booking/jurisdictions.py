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

- AU (ITAA 1997 s.115-25): held at least 12 months, the acquisition and disposal days excluded, so
  bought 1 July 2023 the first sale that qualifies for the discount is on 2 July 2024.

All three come to the same comparison; only the zone of the tax day differs. An acquisition on
29 February has its anniversary on 28 February (BGB §188(3)).

Rules that change by year (the DE Freigrenze, the US per-account boundary and Form 8949 boxes, the UK
annual exempt amount, the CA inclusion rate, the AU discount) are ``Jurisdiction.rules``: per name, a
tuple of ``(first year, value)`` steps; ``Jurisdiction.rule(name, year)`` is the value in force in a
tax year, so last year's report is rebuilt with last year's rule.

Times everywhere in the engine are aware UTC datetimes (``ledger.types.UTCDateTime`` gives them
from the database on both backends); the exports print them with ``iso_utc``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timezone, tzinfo
from decimal import Decimal
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
    "Rule",
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
    #: What a long holding (the engine's term 'long') means here, or "" where the term is not used.
    holding_rule: str = ""
    #: How income in kind (lending interest, rewards) and perpetuals are treated (shown in every report).
    income_treatment: str = ""
    perp_treatment: str = ""
    #: Versioned values: name -> ((first tax year, value), ...) in year order (``rule``).
    rules: tuple[tuple[str, tuple[tuple[int, object], ...]], ...] = ()
    #: A one-line name of the jurisdiction for the side-by-side view.
    title: str = ""

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

    def rule(self, name: str, year: int):
        """The value of versioned rule ``name`` in force in tax year ``year`` (``KeyError`` if the rule
        is unknown here or has no value that early)."""
        for n, steps in self.rules:
            if n == name:
                value, found = None, False
                for first, v in steps:
                    if year >= first:
                        value, found = v, True
                if not found:
                    raise KeyError(f"{self.name}: rule {name!r} has no value for {year} (first from {steps[0][0]})")
                return value
        raise KeyError(f"{self.name}: no rule {name!r}; known: {[n for n, _ in self.rules]}")

    def has_rule(self, name: str) -> bool:
        return any(n == name for n, _ in self.rules)

    def per_account_instant(self, zone_name: str | None = None) -> datetime | None:
        """The instant basis becomes per account, or None."""
        if self.per_account_from is None:
            return None
        return datetime.combine(self.per_account_from, time.min, zone(zone_name or self.zone)).astimezone(UTC)


_LOT_METHODS = ("fifo", "lifo", "hifo", "lofo", "average")
D = Decimal

#: A versioned rule: ((first tax year, value), ...). Years before the first step have no value.
Rule = tuple[tuple[int, object], ...]

JURISDICTIONS: MappingProxyType[str, Jurisdiction] = MappingProxyType(
    {
        "us": Jurisdiction(
            "us", "UTC", (1, 1), "fifo", _LOT_METHODS, "universal", per_account_from=date(2025, 1, 1),
            holding_rule="long-term: held more than one year (a sale on the anniversary is short-term; Pub. 544)",
            income_treatment="ordinary income at value when received (becomes basis)",
            perp_treatment="capital gain or loss on close (usually short-term); funding ordinary income/expense (election)",
            rules=(
                # Rev. Proc. 2024-28: basis per wallet or account for dispositions from 1 January 2025.
                ("per_account", ((2000, False), (2025, True))),
                # Form 8949 boxes (short, long) by 1099 status: A-F before 2025, G-L (digital assets) from 2025.
                ("form_8949_boxes", ((2000, {"basis-reported": ("A", "D"), "basis-not-reported": ("B", "E"), "none": ("C", "F")}),
                                     (2025, {"basis-reported": ("G", "J"), "basis-not-reported": ("H", "K"), "none": ("I", "L")}))),
                ("capital_loss_limit", ((2000, D(3000)),)),
            ),
            title="United States (Form 8949 / Schedule D)",
        ),
        "uk": Jurisdiction(
            "uk", "Europe/London", (4, 6), "uk", ("uk",), "universal", currency="GBP", method_rule="HMRC share identification",
            income_treatment="miscellaneous income at value when received (SA100), tokens join the pool at that value",
            perp_treatment="reported separately, treatment chosen by the user",
            rules=(("annual_exempt_amount", ((2020, D(12300)), (2023, D(6000)), (2024, D(3000)))),),
            title="United Kingdom (SA108)",
        ),
        "de": Jurisdiction(
            "de", "Europe/Berlin", (1, 1), "fifo", ("fifo",), "account", currency="EUR", method_rule="§23(1) Nr. 2 S. 3 EStG",
            holding_rule="tax-free: held more than one year (a sale on the anniversary is taxable; §§187(1)/188(2) BGB)",
            income_treatment="§22 Nr. 3 EStG other income, tax-free below its own Freigrenze (EUR 256)",
            perp_treatment="Termingeschäfte (§20 Abs. 2 Nr. 3 EStG, capital income, Anlage KAP), apart from Anlage SO",
            rules=(
                # §23 Abs. 3 Satz 5 EStG: a Freigrenze (all or nothing) on the year's total private-sale gains.
                ("freigrenze_23", ((2000, D(600)), (2024, D(1000)))),
                # §22 Nr. 3 Satz 2 EStG: other income (lending, rewards) tax-free when below EUR 256.
                ("freigrenze_22_3", ((2000, D(256)),)),
            ),
            title="Germany (Anlage SO §23 EStG)",
        ),
        "ca": Jurisdiction(
            "ca", "America/Toronto", (1, 1), "acb", ("acb",), "universal", currency="CAD",
            method_rule="adjusted cost base of identical properties (ITA s.47) with the superficial-loss rule (s.54)",
            income_treatment="income at value when received; the units join the ACB at that value",
            perp_treatment="reported separately (income or capital by the user's facts)",
            rules=(("inclusion_rate", ((2000, D("0.5")),)),),  # the proposed 2/3 was cancelled in 2025
            title="Canada (Schedule 3, ACB)",
        ),
        "au": Jurisdiction(
            "au", "Australia/Sydney", (7, 1), "fifo", ("fifo", "hifo", "lofo"), "universal", currency="AUD",
            method_rule="FIFO parcels, or specific identification as a standing order (hifo, lofo) recorded before the disposals; not LIFO",
            holding_rule="discount: held at least 12 months, the acquisition and disposal days excluded (ITAA 1997 s.115-25)",
            income_treatment="ordinary income at value when received (the parcel's cost base)",
            perp_treatment="reported separately (revenue or capital by the user's facts)",
            rules=(("cgt_discount", ((2000, D("0.5")),)),),  # individuals and trusts (super funds: 1/3)
            title="Australia (CGT schedule)",
        ),
        "jp": Jurisdiction(
            "jp", "Asia/Tokyo", (1, 1), "total-average", ("total-average", "moving-average"), "universal", currency="JPY",
            method_rule="total average (総平均法), or moving average (移動平均法) by election, per asset per calendar year",
            income_treatment="miscellaneous income (雑所得) at value when received; the units join the average at that value",
            perp_treatment="miscellaneous income, reported separately",
            title="Japan (雑所得, miscellaneous income)",
        ),
        "generic": Jurisdiction("generic", "UTC", (1, 1), "fifo", (*_LOT_METHODS, "uk"), "universal", title="generic (gains by term)"),
    }
)


def jurisdiction(name: str) -> Jurisdiction:
    """The jurisdiction called ``name``; ``KeyError`` names the known ones."""
    try:
        return JURISDICTIONS[name]
    except KeyError:
        raise KeyError(f"unknown jurisdiction {name!r}; expected one of {list(JURISDICTIONS)}") from None
