"""Cost-basis engine: pure computation from events and settings to gains, lots and findings.

``book(events, settings, opening_lots=...) -> BookingResult``; see ``docs/methods.md``.
"""

from ledger.booking.engine import RowBooking, book, book_rows, open_lots_at, ordered
from ledger.booking.model import (
    Acquisition,
    BookingInputError,
    BookingResult,
    BookingRows,
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
from ledger.booking.taxdate import holding_term, tax_date

__all__ = [
    "Acquisition",
    "BookingInputError",
    "BookingResult",
    "BookingRows",
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
    "book_rows",
    "RowBooking",
    "holding_term",
    "load_opening_lots",
    "open_lots_at",
    "ordered",
    "tax_date",
]
