"""Opening lots: the user's record of basis for units that arrive by deposit without basis.

CSV format (header required, extra columns ignored)::

    account,asset,quantity,acquired,basis
    main,BTC,0.5,2021-03-04T10:00:00Z,12000

``acquired`` is ISO-8601 with an offset, or a bare date (midnight UTC). ``account`` may be
``*`` to cover a deposit into any account.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

from ledger.booking.methods import share
from ledger.booking.model import Acquisition, Finding, Lot, OpeningLot

__all__ = ["OpeningLotsError", "load_opening_lots", "OpeningRegister"]

_COLUMNS = ("account", "asset", "quantity", "acquired", "basis")
ZERO = Decimal(0)


class OpeningLotsError(ValueError):
    """Bad opening-lots input; the message is one line naming the file, line and problem."""


def _decimal(text: str, column: str, where: str) -> Decimal:
    try:
        d = Decimal(text.strip())
    except InvalidOperation:
        raise OpeningLotsError(f"{where}: {column} {text!r} is not a decimal number") from None
    if not d.is_finite():
        raise OpeningLotsError(f"{where}: {column} {text!r} is not a finite number")
    return d


def _instant(text: str, where: str) -> datetime:
    raw = text.strip()
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00") if raw.endswith("Z") else raw)
    except ValueError:
        raise OpeningLotsError(f"{where}: acquired {text!r} is not an ISO-8601 date or datetime") from None
    if value.tzinfo is None:
        if len(raw) == 10:
            return value.replace(tzinfo=timezone.utc)
        raise OpeningLotsError(f"{where}: acquired {text!r} has no UTC offset (add Z or +00:00)")
    return value.astimezone(timezone.utc)


def load_opening_lots(path: str | Path) -> list[OpeningLot]:
    """Read opening lots from a CSV file; raise ``OpeningLotsError`` on the first bad line."""
    path = Path(path)
    try:  # a file that is not UTF-8 is named in one line (the decoder's own error names no file)
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OpeningLotsError(f"{path}: not UTF-8 text (invalid byte at offset {exc.start}); save it as UTF-8") from None
    except OSError:
        pass  # reported by the open below
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise OpeningLotsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise OpeningLotsError(f"{path}:1: empty file, expected header {','.join(_COLUMNS)}") from None
        names = [h.strip().lower() for h in header]
        missing = [c for c in _COLUMNS if c not in names]
        if missing:
            raise OpeningLotsError(f"{path}:1: header lacks column(s) {', '.join(missing)}; expected {','.join(_COLUMNS)}")
        index = {c: names.index(c) for c in _COLUMNS}
        lots: list[OpeningLot] = []
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if not any(cell.strip() for cell in row):
                continue
            if len(row) < len(names):
                raise OpeningLotsError(f"{where}: {len(row)} fields, expected {len(names)}")
            cell = {c: row[i].strip() for c, i in index.items()}
            for c in ("account", "asset"):
                if not cell[c]:
                    raise OpeningLotsError(f"{where}: {c} is empty")
            quantity = _decimal(cell["quantity"], "quantity", where)
            if quantity <= 0:
                raise OpeningLotsError(f"{where}: quantity {cell['quantity']} must be > 0")
            basis = _decimal(cell["basis"], "basis", where)
            if basis < 0:
                raise OpeningLotsError(f"{where}: basis {cell['basis']} must be >= 0")
            lots.append(
                OpeningLot(account=cell["account"], asset=cell["asset"], quantity=quantity, acquired=_instant(cell["acquired"], where), basis=basis)
            )
    return lots


class OpeningRegister:
    """Opening lots waiting to be claimed by deposits of unknown basis (engine-internal)."""

    def __init__(self, opening_lots: Iterable[OpeningLot]) -> None:
        self.lots = tuple(opening_lots)
        self._left: dict[tuple[str, str], list[list]] = {}
        for n, o in enumerate(self.lots):
            if not isinstance(o, OpeningLot):
                raise TypeError(f"opening_lots must hold OpeningLot records, got {type(o).__name__}")
            self._left.setdefault((o.account, o.asset), []).append([o.acquired, n, o.quantity, o.basis, o])
        for entries in self._left.values():
            entries.sort(key=lambda e: (e[0], e[1]))

    def claim(self, deposit: Acquisition) -> tuple[list[Lot], Decimal]:
        """Lots for ``deposit`` from opening lots of its account (then '*'), oldest first,
        acquired no later than the deposit; and the quantity left uncovered."""
        need = deposit.quantity
        lots: list[Lot] = []
        for key in ((deposit.account, deposit.asset), ("*", deposit.asset)):
            for entry in self._left.get(key, ()):
                if need == 0:
                    break
                acquired, n, qty, basis, _ = entry
                if qty == 0 or acquired > deposit.time:
                    continue
                take = qty if qty <= need else need
                cost = share(basis, take, qty)
                entry[2] = qty - take
                entry[3] = basis - cost
                need -= take
                lots.append(
                    Lot(id=deposit.id, account=deposit.account, asset=deposit.asset, quantity=take, cost=cost, acquired=acquired, source=f"opening-lot:{n}")
                )
        return lots, need

    def unclaimed(self) -> list[tuple[int, OpeningLot, Decimal]]:
        """(index, opening lot, quantity left) for every opening lot not wholly claimed."""
        out = [(e[1], e[4], e[2]) for entries in self._left.values() for e in entries if e[2] > 0]
        return sorted(out, key=lambda t: t[0])

    def unclaimed_findings(self) -> list[Finding]:
        """One finding per opening lot (or its remainder) that no deposit of unknown basis claimed."""
        return [
            Finding(
                kind="unclaimed-opening-lot",
                message=f"opening lot #{n} ({o.account} {o.asset}, {left} of {o.quantity} left) was claimed by no deposit of unknown basis",
                key=f"opening-lot:{n}",
                account=o.account,
                asset=o.asset,
                time=o.acquired,
            )
            for n, o, left in self.unclaimed()
        ]
