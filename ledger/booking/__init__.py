"""Cost-basis engine: pure computation from events and settings to gains, lots and findings.

``book(events, settings, opening_lots=...) -> BookingResult``; see ``docs/methods.md``.
"""

from ledger.booking.engine import Engine, book, open_lots_at, ordered
from ledger.booking.model import (
    Acquisition,
    BookingInputError,
    BookingResult,
    Disposal,
    Event,
    Finding,
    Gain,
    IncomeRow,
    Lot,
    OpeningLot,
    SafeHarborAllocation,
    Settings,
    SettingsError,
    Transfer,
)
from ledger.booking.opening import OpeningLotsError, load_opening_lots
from ledger.booking.jurisdictions import JURISDICTIONS, Jurisdiction, holding_term, iso_utc, jurisdiction, tax_day

__all__ = [
    "Acquisition",
    "BookingInputError",
    "BookingResult",
    "Disposal",
    "Event",
    "Finding",
    "Gain",
    "IncomeRow",
    "Lot",
    "OpeningLot",
    "OpeningLotsError",
    "SafeHarborAllocation",
    "Settings",
    "SettingsError",
    "Transfer",
    "book",
    "Engine",
    "JURISDICTIONS",
    "Jurisdiction",
    "jurisdiction",
    "iso_utc",
    "holding_term",
    "load_opening_lots",
    "open_lots_at",
    "ordered",
    "tax_day",
]
