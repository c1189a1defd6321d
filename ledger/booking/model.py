"""Records of the cost-basis engine: events in, lots, gains and findings out.

Events and the records the engine returns are NamedTuples: immutable, cheap to build and to
compare. The events' public constructors are keyword-only and validate (the boundary): money and
quantities are ``Decimal`` (a float, bool or int is refused: build values with
``ledger.money.D``), datetimes timezone-aware and normalised to UTC. An event's first three
fields are ``(time, rank, id)``, so events sort into the engine's processing order as plain
tuples. Code that builds events from already-checked data (the ledger bridge) builds them with
``tuple.__new__(Acquisition, (...))``, skipping the checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from types import MappingProxyType
from typing import NamedTuple, Union

from ledger.booking.jurisdictions import JURISDICTIONS as _JURISDICTIONS
from ledger.booking.jurisdictions import Jurisdiction

__all__ = [
    "ACQUISITION_KINDS",
    "DISPOSAL_KINDS",
    "METHODS",
    "SCOPES",
    "JURISDICTIONS",
    "TRANSFER_FEE_POLICIES",
    "BookingInputError",
    "SettingsError",
    "Acquisition",
    "Disposal",
    "Transfer",
    "Event",
    "OpeningLot",
    "Settings",
    "Lot",
    "Gain",
    "IncomeRow",
    "Finding",
    "SafeHarborAllocation",
    "BookingResult",
    "ACQUIRE",
    "TRANSFER",
    "DISPOSE",
]

#: Ranks: the order of events at one instant (units bought then are available to a sale then).
ACQUIRE, TRANSFER, DISPOSE = 0, 1, 2
ACQUISITION_KINDS = frozenset({"trade", "income", "deposit", "opening", "transfer-in"})
#: Acquisition kinds whose cost may be None (unknown basis: zero basis plus a finding).
BASISLESS_KINDS = frozenset({"deposit", "transfer-in"})
DISPOSAL_KINDS = frozenset({"trade", "fee", "dust", "spend", "interest-paid"})
METHODS = ("fifo", "lifo", "hifo", "lofo", "average", "uk", "acb", "total-average", "moving-average")
#: Methods booked by a stage at ``finish`` (they need later events), and the stage each belongs to:
#: methods of one stage may be mixed across years, with no other method (``ledger.booking.stages``).
STAGE_OF = {"uk": "uk", "acb": "ca", "total-average": "jp", "moving-average": "jp"}
#: Unit-cost rounding of the average stages (jp): exact, or to whole currency units up / half-up.
UNIT_COST_ROUNDINGS = ("exact", "up", "half-up")
SCOPES = ("universal", "account")
JURISDICTIONS = tuple(_JURISDICTIONS)
TRANSFER_FEE_POLICIES = ("disposal", "add-to-basis")

class BookingInputError(ValueError):
    """A record the engine cannot take at all (wrong type, naive datetime, duplicate id)."""


class SettingsError(ValueError):
    """Settings that contradict each other or name an unknown method, scope or jurisdiction."""


def _need_str(owner: str, name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise BookingInputError(f"{owner}.{name} must be a non-empty str, got {value!r}")


def _need_decimal(owner: str, name: str, value: object, *, positive: bool = False, non_negative: bool = False) -> None:
    if not isinstance(value, Decimal):
        raise BookingInputError(f"{owner}.{name} must be a Decimal (use ledger.money.D), got {type(value).__name__} {value!r}")
    if not value.is_finite():
        raise BookingInputError(f"{owner}.{name} must be finite, got {value!r}")
    if positive and not value > 0:
        raise BookingInputError(f"{owner}.{name} must be > 0, got {value}")
    if non_negative and value < 0:
        raise BookingInputError(f"{owner}.{name} must be >= 0, got {value}")


def _utc(owner: str, name: str, value: object) -> datetime:
    if not isinstance(value, datetime):
        raise BookingInputError(f"{owner}.{name} must be a datetime, got {type(value).__name__}")
    offset = value.utcoffset()
    if offset is None:
        raise BookingInputError(f"{owner}.{name} must be timezone-aware (UTC), got naive {value.isoformat()}")
    if value.tzinfo is timezone.utc:
        return value
    return value.astimezone(timezone.utc)


_new = tuple.__new__


def _rebuild(cls, values):  # pickle and copy: NamedTuple's default goes through the keyword-only __new__
    return _new(cls, values)


class _AcquisitionFields(NamedTuple):
    time: datetime
    rank: int
    id: str
    account: str
    asset: str
    quantity: Decimal
    cost: Decimal | None
    source: str
    kind: str


class Acquisition(_AcquisitionFields):
    """Units entering an account. ``cost`` is the total basis in the reporting currency,
    acquisition fees included; ``None`` only for a deposit or transfer-in of unknown basis."""

    __slots__ = ()
    RANK = ACQUIRE

    def __new__(cls, *, id: str, account: str, asset: str, quantity: Decimal, cost: Decimal | None, time: datetime, source: str, kind: str):
        q, c, t = quantity, cost, time
        if not (  # the common well-formed case in one expression; anything else takes the checks below
            type(q) is Decimal and q.is_finite() and q > 0 and type(c) is Decimal and c.is_finite() and c >= 0
            and type(t) is datetime and t.tzinfo is timezone.utc and kind in ACQUISITION_KINDS
            and type(id) is str and id and type(account) is str and account
            and type(asset) is str and asset and type(source) is str
        ):
            _need_str("Acquisition", "id", id)
            _need_str("Acquisition", "account", account)
            _need_str("Acquisition", "asset", asset)
            _need_decimal("Acquisition", "quantity", quantity, positive=True)
            if kind not in ACQUISITION_KINDS:
                raise BookingInputError(f"Acquisition {id}: kind {kind!r} is not one of {sorted(ACQUISITION_KINDS)}")
            if cost is None:
                if kind not in BASISLESS_KINDS:
                    raise BookingInputError(f"Acquisition {id}: cost may be None only for {sorted(BASISLESS_KINDS)}, not {kind!r}")
            else:
                _need_decimal("Acquisition", "cost", cost, non_negative=True)
            t = _utc("Acquisition", "time", time)
            if not isinstance(source, str):
                raise BookingInputError(f"Acquisition {id}: source must be a str")
        return _new(cls, (t, ACQUIRE, id, account, asset, quantity, cost, source, kind))

    def __reduce__(self):
        return (_rebuild, (type(self), tuple(self)))


class _DisposalFields(NamedTuple):
    time: datetime
    rank: int
    id: str
    account: str
    asset: str
    quantity: Decimal
    proceeds: Decimal
    source: str
    kind: str


class Disposal(_DisposalFields):
    """Units leaving an account in a taxable event. ``proceeds`` are net of disposal fees."""

    __slots__ = ()
    RANK = DISPOSE

    def __new__(cls, *, id: str, account: str, asset: str, quantity: Decimal, proceeds: Decimal, time: datetime, source: str, kind: str):
        q, p, t = quantity, proceeds, time
        if not (
            type(q) is Decimal and q.is_finite() and q > 0 and type(p) is Decimal and p.is_finite()
            and type(t) is datetime and t.tzinfo is timezone.utc and kind in DISPOSAL_KINDS
            and type(id) is str and id and type(account) is str and account
            and type(asset) is str and asset and type(source) is str
        ):
            _need_str("Disposal", "id", id)
            _need_str("Disposal", "account", account)
            _need_str("Disposal", "asset", asset)
            _need_decimal("Disposal", "quantity", quantity, positive=True)
            _need_decimal("Disposal", "proceeds", proceeds)
            if kind not in DISPOSAL_KINDS:
                raise BookingInputError(f"Disposal {id}: kind {kind!r} is not one of {sorted(DISPOSAL_KINDS)}")
            t = _utc("Disposal", "time", time)
            if not isinstance(source, str):
                raise BookingInputError(f"Disposal {id}: source must be a str")
        return _new(cls, (t, DISPOSE, id, account, asset, quantity, proceeds, source, kind))

    def __reduce__(self):
        return (_rebuild, (type(self), tuple(self)))


class _TransferFields(NamedTuple):
    time: datetime
    rank: int
    id: str
    from_account: str
    to_account: str
    asset: str
    quantity: Decimal
    fee: Decimal
    fee_value: Decimal | None
    source: str


class Transfer(_TransferFields):
    """Units moving between two of the owner's accounts. ``quantity`` arrives; ``fee`` more
    units of the same asset are consumed on the way; ``fee_value`` is their market value."""

    __slots__ = ()
    RANK = TRANSFER

    def __new__(cls, *, id: str, from_account: str, to_account: str, asset: str, quantity: Decimal, fee: Decimal, fee_value: Decimal | None,
                time: datetime, source: str):
        _need_str("Transfer", "id", id)
        _need_str("Transfer", "from_account", from_account)
        _need_str("Transfer", "to_account", to_account)
        _need_str("Transfer", "asset", asset)
        if from_account == to_account:
            raise BookingInputError(f"Transfer {id}: from_account and to_account are both {from_account!r}")
        _need_decimal("Transfer", "quantity", quantity, positive=True)
        _need_decimal("Transfer", "fee", fee, non_negative=True)
        if fee_value is not None:
            _need_decimal("Transfer", "fee_value", fee_value, non_negative=True)
        t = _utc("Transfer", "time", time)
        if not isinstance(source, str):
            raise BookingInputError(f"Transfer {id}: source must be a str")
        return _new(cls, (t, TRANSFER, id, from_account, to_account, asset, quantity, fee, fee_value, source))

    def __reduce__(self):
        return (_rebuild, (type(self), tuple(self)))


Event = Union[Acquisition, Disposal, Transfer]


@dataclass(frozen=True, slots=True, kw_only=True)
class OpeningLot:
    """Basis and date of units held before the imported history. A deposit of unknown basis
    into the same account and asset (``account='*'``: any account) claims opening lots,
    oldest first, instead of taking zero basis."""

    account: str
    asset: str
    quantity: Decimal
    acquired: datetime
    basis: Decimal

    def __post_init__(self) -> None:
        _need_str("OpeningLot", "account", self.account)
        _need_str("OpeningLot", "asset", self.asset)
        _need_decimal("OpeningLot", "quantity", self.quantity, positive=True)
        _need_decimal("OpeningLot", "basis", self.basis, non_negative=True)
        object.__setattr__(self, "acquired", _utc("OpeningLot", "acquired", self.acquired))


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """How to book. ``None`` for method, scope or tax_timezone means the jurisdiction's default
    (``ledger.booking.jurisdictions``); after construction the fields always hold the resolved values."""

    method: str | None = None
    scope: str | None = None
    jurisdiction: str = "generic"
    method_by_year: Mapping[int, str] = field(default_factory=dict)
    transfer_fee_policy: str = "disposal"
    currency: str = "USD"
    tax_timezone: str | None = None
    #: The average stages' unit cost (jp): ``exact`` (default) or rounded to whole units (``up``, ``half-up``).
    unit_cost_rounding: str = "exact"

    def __post_init__(self) -> None:
        j = _JURISDICTIONS.get(self.jurisdiction)
        if j is None:
            raise SettingsError(f"unknown jurisdiction {self.jurisdiction!r}; expected one of {list(JURISDICTIONS)}")
        method = j.default_method if self.method is None else self.method
        scope = j.default_scope if self.scope is None else self.scope
        zone = j.zone if self.tax_timezone is None else self.tax_timezone
        by_year = MappingProxyType(dict(self.method_by_year))
        for m in (method, *by_year.values()):
            if m not in METHODS:
                raise SettingsError(f"unknown method {m!r}; expected one of {list(METHODS)}")
        for y in by_year:
            if not isinstance(y, int) or isinstance(y, bool):
                raise SettingsError(f"method_by_year keys must be int years, got {y!r}")
        if scope not in SCOPES:
            raise SettingsError(f"unknown scope {scope!r}; expected one of {list(SCOPES)}")
        if self.transfer_fee_policy not in TRANSFER_FEE_POLICIES:
            raise SettingsError(f"unknown transfer_fee_policy {self.transfer_fee_policy!r}; expected one of {list(TRANSFER_FEE_POLICIES)}")
        stages = {STAGE_OF.get(m) for m in (method, *by_year.values())}
        if len(stages) > 1:
            m = next(m for m in (method, *by_year.values()) if m in STAGE_OF)
            what = "HMRC share pooling" if m == "uk" else "a pooled method booked at the end"
            raise SettingsError(f"method {m!r} ({what}) cannot be mixed with other methods across years")
        if stages != {None} and scope != "universal":
            m = next(m for m in (method, *by_year.values()) if m in STAGE_OF)
            raise SettingsError(f"method {m!r} pools each token across all wallets: scope must be 'universal'")
        if self.unit_cost_rounding not in UNIT_COST_ROUNDINGS:
            raise SettingsError(f"unknown unit_cost_rounding {self.unit_cost_rounding!r}; expected one of {list(UNIT_COST_ROUNDINGS)}")
        for m in (method, *by_year.values()):
            if m not in j.allowed_methods:
                if len(j.allowed_methods) == 1:
                    raise SettingsError(f"jurisdiction {j.name!r} requires method {j.allowed_methods[0]!r} ({j.method_rule}), got {m!r}")
                raise SettingsError(f"jurisdiction {j.name!r} allows methods {', '.join(j.allowed_methods)}, got {m!r}")
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(zone)
        except Exception:  # noqa: BLE001 - any failure to resolve the zone is a settings error
            raise SettingsError(f"unknown tax_timezone {zone!r}") from None
        object.__setattr__(self, "method", method)
        object.__setattr__(self, "scope", scope)
        object.__setattr__(self, "tax_timezone", zone)
        object.__setattr__(self, "method_by_year", by_year)

    def method_for(self, tax_year: int) -> str:
        """The booking method in force for disposals in ``tax_year``."""
        return self.method_by_year.get(tax_year, self.method)  # type: ignore[return-value]

    @property
    def rules(self) -> Jurisdiction:
        """The jurisdiction's facts (``ledger.booking.jurisdictions``)."""
        return _JURISDICTIONS[self.jurisdiction]

    def tax_year(self, t: datetime) -> int:
        """The tax year instant ``t`` falls in, in the settings' tax zone."""
        return self.rules.tax_year(t, self.tax_timezone)

    def year_bounds(self, year: int) -> tuple[datetime, datetime]:
        """[start, end) of tax year ``year`` as UTC instants."""
        return self.rules.year_bounds(year, self.tax_timezone)

    def per_account_from(self) -> datetime | None:
        """The instant basis becomes per account whatever the scope (US safe harbor), or None."""
        return self.rules.per_account_instant(self.tax_timezone)


class Lot(NamedTuple):
    """Units of one asset with one basis and one acquisition date. Immutable: a partly
    relieved lot is a new Lot (``dataclasses.replace``) with the remaining quantity and cost.
    ``id`` is the id of the acquisition the units came from; it survives transfers."""

    id: str
    account: str
    asset: str
    quantity: Decimal
    cost: Decimal
    acquired: datetime
    source: str


class Gain(NamedTuple):
    """One matched piece of a disposal: ``quantity`` units of lot ``lot_id`` relieved by
    disposal ``disposal_id``. ``term`` is 'short'/'long' (calendar anniversary in the tax
    zone), or for the uk method 'same-day'/'bed-and-breakfast'/'s104'."""

    account: str
    asset: str
    quantity: Decimal
    acquired: datetime
    disposed: datetime
    proceeds: Decimal
    cost_basis: Decimal
    gain: Decimal
    term: str
    method: str
    lot_id: str
    disposal_id: str
    source_ref: str


class IncomeRow(NamedTuple):
    """Income received in kind (staking, lending interest): value at receipt in the
    reporting currency; the same value is the basis of the lot it creates."""

    id: str
    account: str
    asset: str
    quantity: Decimal
    value: Decimal
    time: datetime
    source: str


class Finding(NamedTuple):
    """A shortfall the engine worked around and the user should see, keyed by the record id."""

    kind: str
    message: str
    key: str
    account: str
    asset: str
    time: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class SafeHarborAllocation:
    """The basis allocation across accounts in force from ``time`` (US, Rev. Proc. 2024-28):
    the lots ``account`` holds of ``asset`` at that moment, and the rule that allocated them."""

    time: date
    effective: datetime
    method: str
    rule: str
    account: str
    asset: str
    quantity: Decimal
    basis: Decimal
    lots: tuple[Lot, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class BookingResult:
    gains: list[Gain]
    open_lots: list[Lot]
    income: list[IncomeRow]
    findings: list[Finding]
    allocations: list[SafeHarborAllocation]
