"""Records of the cost-basis engine: events in, lots, gains and findings out.

Every record is a frozen, slotted, keyword-only dataclass. Money and quantities are ``Decimal``
(a float, bool or int is refused: build values with ``ledger.money.D``). Datetimes must be
timezone-aware; input events are normalised to UTC on construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from types import MappingProxyType
from typing import Union

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
    "BookingRows",
]

ACQUISITION_KINDS = frozenset({"trade", "income", "deposit", "opening", "transfer-in"})
#: Acquisition kinds whose cost may be None (unknown basis: zero basis plus a finding).
BASISLESS_KINDS = frozenset({"deposit", "transfer-in"})
DISPOSAL_KINDS = frozenset({"trade", "fee", "dust", "spend", "interest-paid"})
METHODS = ("fifo", "lifo", "hifo", "lofo", "average", "uk")
SCOPES = ("universal", "account")
JURISDICTIONS = ("us", "uk", "de", "generic")
TRANSFER_FEE_POLICIES = ("disposal", "add-to-basis")

#: Per-jurisdiction defaults: (method, scope, tax-day zone). US scope is universal before
#: 2025-01-01 and per account from then on (Rev. Proc. 2024-28), whatever the setting.
JURISDICTION_DEFAULTS: Mapping[str, tuple[str, str, str]] = MappingProxyType(
    {
        "us": ("fifo", "universal", "UTC"),
        "uk": ("uk", "universal", "Europe/London"),
        "de": ("fifo", "account", "Europe/Berlin"),
        "generic": ("fifo", "universal", "UTC"),
    }
)


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Acquisition:
    """Units entering an account. ``cost`` is the total basis in the reporting currency,
    acquisition fees included; ``None`` only for a deposit or transfer-in of unknown basis."""

    id: str
    account: str
    asset: str
    quantity: Decimal
    cost: Decimal | None
    time: datetime
    source: str
    kind: str

    def __post_init__(self) -> None:
        q, c, t = self.quantity, self.cost, self.time
        if (  # the common well-formed case in one expression; anything else takes the checks below
            type(q) is Decimal and q.is_finite() and q > 0 and type(c) is Decimal and c.is_finite() and c >= 0
            and type(t) is datetime and t.tzinfo is timezone.utc and self.kind in ACQUISITION_KINDS
            and type(self.id) is str and self.id and type(self.account) is str and self.account
            and type(self.asset) is str and self.asset and type(self.source) is str
        ):
            return
        _need_str("Acquisition", "id", self.id)
        _need_str("Acquisition", "account", self.account)
        _need_str("Acquisition", "asset", self.asset)
        _need_decimal("Acquisition", "quantity", self.quantity, positive=True)
        if self.kind not in ACQUISITION_KINDS:
            raise BookingInputError(f"Acquisition {self.id}: kind {self.kind!r} is not one of {sorted(ACQUISITION_KINDS)}")
        if self.cost is None:
            if self.kind not in BASISLESS_KINDS:
                raise BookingInputError(f"Acquisition {self.id}: cost may be None only for {sorted(BASISLESS_KINDS)}, not {self.kind!r}")
        else:
            _need_decimal("Acquisition", "cost", self.cost, non_negative=True)
        object.__setattr__(self, "time", _utc("Acquisition", "time", self.time))
        if not isinstance(self.source, str):
            raise BookingInputError(f"Acquisition {self.id}: source must be a str")


@dataclass(frozen=True, slots=True, kw_only=True)
class Disposal:
    """Units leaving an account in a taxable event. ``proceeds`` are net of disposal fees."""

    id: str
    account: str
    asset: str
    quantity: Decimal
    proceeds: Decimal
    time: datetime
    source: str
    kind: str

    def __post_init__(self) -> None:
        q, p, t = self.quantity, self.proceeds, self.time
        if (  # the common well-formed case in one expression; anything else takes the checks below
            type(q) is Decimal and q.is_finite() and q > 0 and type(p) is Decimal and p.is_finite()
            and type(t) is datetime and t.tzinfo is timezone.utc and self.kind in DISPOSAL_KINDS
            and type(self.id) is str and self.id and type(self.account) is str and self.account
            and type(self.asset) is str and self.asset and type(self.source) is str
        ):
            return
        _need_str("Disposal", "id", self.id)
        _need_str("Disposal", "account", self.account)
        _need_str("Disposal", "asset", self.asset)
        _need_decimal("Disposal", "quantity", self.quantity, positive=True)
        _need_decimal("Disposal", "proceeds", self.proceeds)
        if self.kind not in DISPOSAL_KINDS:
            raise BookingInputError(f"Disposal {self.id}: kind {self.kind!r} is not one of {sorted(DISPOSAL_KINDS)}")
        object.__setattr__(self, "time", _utc("Disposal", "time", self.time))
        if not isinstance(self.source, str):
            raise BookingInputError(f"Disposal {self.id}: source must be a str")


@dataclass(frozen=True, slots=True, kw_only=True)
class Transfer:
    """Units moving between two of the owner's accounts. ``quantity`` arrives; ``fee`` more
    units of the same asset are consumed on the way; ``fee_value`` is their market value."""

    id: str
    from_account: str
    to_account: str
    asset: str
    quantity: Decimal
    fee: Decimal
    fee_value: Decimal | None
    time: datetime
    source: str

    def __post_init__(self) -> None:
        _need_str("Transfer", "id", self.id)
        _need_str("Transfer", "from_account", self.from_account)
        _need_str("Transfer", "to_account", self.to_account)
        _need_str("Transfer", "asset", self.asset)
        if self.from_account == self.to_account:
            raise BookingInputError(f"Transfer {self.id}: from_account and to_account are both {self.from_account!r}")
        _need_decimal("Transfer", "quantity", self.quantity, positive=True)
        _need_decimal("Transfer", "fee", self.fee, non_negative=True)
        if self.fee_value is not None:
            _need_decimal("Transfer", "fee_value", self.fee_value, non_negative=True)
        object.__setattr__(self, "time", _utc("Transfer", "time", self.time))
        if not isinstance(self.source, str):
            raise BookingInputError(f"Transfer {self.id}: source must be a str")


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
    (``JURISDICTION_DEFAULTS``); after construction the fields always hold the resolved values."""

    method: str | None = None
    scope: str | None = None
    jurisdiction: str = "generic"
    method_by_year: Mapping[int, str] = field(default_factory=dict)
    transfer_fee_policy: str = "disposal"
    currency: str = "USD"
    tax_timezone: str | None = None

    def __post_init__(self) -> None:
        if self.jurisdiction not in JURISDICTION_DEFAULTS:
            raise SettingsError(f"unknown jurisdiction {self.jurisdiction!r}; expected one of {list(JURISDICTIONS)}")
        d_method, d_scope, d_zone = JURISDICTION_DEFAULTS[self.jurisdiction]
        method = d_method if self.method is None else self.method
        scope = d_scope if self.scope is None else self.scope
        zone = d_zone if self.tax_timezone is None else self.tax_timezone
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
        uses_uk = method == "uk" or "uk" in by_year.values()
        if uses_uk and (method != "uk" or any(m != "uk" for m in by_year.values())):
            raise SettingsError("method 'uk' (HMRC share pooling) cannot be mixed with other methods across years")
        if uses_uk and scope != "universal":
            raise SettingsError("method 'uk' pools each token across all wallets: scope must be 'universal'")
        if self.jurisdiction == "uk" and not uses_uk:
            raise SettingsError(f"jurisdiction 'uk' requires method 'uk' (HMRC share identification), got {method!r}")
        if self.jurisdiction == "de" and (method != "fifo" or any(m != "fifo" for m in by_year.values())):
            raise SettingsError("jurisdiction 'de' requires method 'fifo' (§23(1) Nr. 2 S. 3 EStG)")
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Lot:
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Gain:
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


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomeRow:
    """Income received in kind (staking, lending interest): value at receipt in the
    reporting currency; the same value is the basis of the lot it creates."""

    id: str
    account: str
    asset: str
    quantity: Decimal
    value: Decimal
    time: datetime
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
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


@dataclass(frozen=True, slots=True, kw_only=True)
class BookingRows:
    """``book_rows``' result: as ``BookingResult``, with each gain a tuple of ``Gain``'s fields
    in their order (``ledger.booking.rows.GAIN_FIELDS``)."""

    gains: list[tuple]
    open_lots: list[Lot]
    income: list[IncomeRow]
    findings: list[Finding]
    allocations: list[SafeHarborAllocation]
