"""The stages booked at ``Engine.finish``: methods that need later events before they can book.

A stage is a pure function ``book(events, settings, register) -> BookingResult`` over the whole
ordered event list, beside the engine (never a branch through it). The engine asks ``stage_for`` once:
a method named here is held until ``finish`` and handed to its stage.

=========  =================================  =====================================================
stage      methods                            why it waits
=========  =================================  =====================================================
uk         uk                                 bed and breakfast: the 30 days after a disposal
ca         acb                                superficial loss: the 30 days after a loss
jp         total-average, moving-average      total average: the whole calendar year's purchases
=========  =================================  =====================================================
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module

from ledger.booking.model import STAGE_OF

__all__ = ["STAGES", "stage_for"]

#: stage -> (module, function)
STAGES = {"uk": ("ledger.booking.uk", "book_uk"), "ca": ("ledger.booking.ca", "book_ca"), "jp": ("ledger.booking.jp", "book_jp")}


def stage_for(method: str) -> Callable | None:
    """The booking function of ``method``'s stage, or None for a method the engine books as it goes."""
    name = STAGE_OF.get(method)
    if name is None:
        return None
    module, fn = STAGES[name]
    return getattr(import_module(module), fn)
