"""Records refuse inexact or ambiguous input; settings refuse contradictions; the opening-lots
CSV loader names the file, line and problem."""

from __future__ import annotations

from datetime import datetime, timezone, timedelta
from decimal import Decimal

import pytest

from tests.ledger.booking.booking_scenarios import at, buy, sell
from ledger.booking import (
    Acquisition,
    BookingInputError,
    Disposal,
    OpeningLotsError,
    Settings,
    SettingsError,
    Transfer,
    book,
    load_opening_lots,
)
from ledger.money import D


def _acq(**over):
    fields = dict(id="a", account="main", asset="BTC", quantity=D(1), cost=D(100), time=at("2024-01-01"), source="s", kind="trade")
    fields.update(over)
    return Acquisition(**fields)


@pytest.mark.parametrize(
    "over",
    [
        {"quantity": 1.0},
        {"quantity": 1},
        {"cost": 100.0},
        {"quantity": D(0)},
        {"cost": D(-1)},
        {"quantity": Decimal("NaN")},
        {"time": datetime(2024, 1, 1)},
        {"kind": "airdrop"},
        {"cost": None},  # only deposits and transfers-in may lack a basis
        {"id": ""},
    ],
    ids=["float-quantity", "int-quantity", "float-cost", "zero-quantity", "negative-cost", "nan", "naive-time", "unknown-kind", "none-cost-trade", "empty-id"],
)
def test_model__acquisition_rejects(over):
    with pytest.raises(BookingInputError):
        _acq(**over)


def test_model__times_normalised_to_utc():
    a = _acq(time=datetime(2024, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=1))))
    assert a.time == datetime(2024, 1, 1, 12, 0, tzinfo=timezone.utc) and a.time.tzinfo is timezone.utc


def test_model__records_are_frozen_and_keyword_only():
    a = _acq()
    with pytest.raises(AttributeError):
        a.quantity = D(2)  # type: ignore[misc]
    with pytest.raises(TypeError):
        Acquisition("a", "main", "BTC", D(1), D(1), at("2024-01-01"), "s", "trade")  # type: ignore[misc]


def test_model__disposal_and_transfer_reject_floats():
    with pytest.raises(BookingInputError):
        Disposal(id="d", account="m", asset="BTC", quantity=D(1), proceeds=1.5, time=at("2024-01-01"), source="s", kind="trade")  # type: ignore[arg-type]
    with pytest.raises(BookingInputError):
        Transfer(id="t", from_account="a", to_account="b", asset="BTC", quantity=D(1), fee=0.1, fee_value=None, time=at("2024-01-01"), source="s")  # type: ignore[arg-type]
    with pytest.raises(BookingInputError):
        Transfer(id="t", from_account="a", to_account="a", asset="BTC", quantity=D(1), fee=D(0), fee_value=None, time=at("2024-01-01"), source="s")


def test_book__duplicate_ids_are_corrupt_input():
    with pytest.raises(BookingInputError, match="duplicate event id 'x'"):
        book([buy("x", "2024-01-01", "1", "1"), sell("x", "2024-02-01", "1", "1")], Settings())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "fofi"}, "unknown method"),
        ({"scope": "wallet"}, "unknown scope"),
        ({"jurisdiction": "fr"}, "unknown jurisdiction"),
        ({"transfer_fee_policy": "ignore"}, "unknown transfer_fee_policy"),
        ({"jurisdiction": "uk", "method": "fifo"}, "requires method 'uk'"),
        ({"method": "uk", "scope": "account"}, "scope must be 'universal'"),
        ({"method": "fifo", "method_by_year": {2025: "uk"}}, "cannot be mixed"),
        ({"jurisdiction": "de", "method": "hifo"}, "requires method 'fifo'"),
        ({"tax_timezone": "Mars/Olympus"}, "unknown tax_timezone"),
    ],
)
def test_settings__rejects(kwargs, message):
    with pytest.raises(SettingsError, match=message):
        Settings(**kwargs)


def test_settings__jurisdiction_defaults():
    assert (Settings(jurisdiction="uk").method, Settings(jurisdiction="uk").tax_timezone) == ("uk", "Europe/London")
    assert (Settings(jurisdiction="de").scope, Settings(jurisdiction="de").tax_timezone) == ("account", "Europe/Berlin")
    assert (Settings(jurisdiction="us").method, Settings(jurisdiction="us").tax_timezone) == ("fifo", "UTC")
    assert Settings().method == "fifo"


# --- opening lots CSV ------------------------------------------------------------------------

def test_opening_lots__load(tmp_path):
    path = tmp_path / "open.csv"
    path.write_text("account,asset,quantity,acquired,basis\nmain,BTC,0.5,2021-03-04T10:00:00Z,12000\n*,ETH,2,2020-01-01,300.5\n\n", encoding="utf-8")
    lots = load_opening_lots(path)
    assert [(o.account, o.asset, o.quantity, o.acquired, o.basis) for o in lots] == [
        ("main", "BTC", D("0.5"), datetime(2021, 3, 4, 10, tzinfo=timezone.utc), D(12000)),
        ("*", "ETH", D(2), datetime(2020, 1, 1, tzinfo=timezone.utc), D("300.5")),
    ]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("account,asset,quantity,basis\n", ":1: header lacks column(s) acquired"),
        ("account,asset,quantity,acquired,basis\nmain,BTC,abc,2021-01-01,1\n", ":2: quantity 'abc' is not a decimal number"),
        ("account,asset,quantity,acquired,basis\nmain,BTC,1,2021-01-01,1\nmain,BTC,-1,2021-01-01,1\n", ":3: quantity -1 must be > 0"),
        ("account,asset,quantity,acquired,basis\nmain,BTC,1,2021-01-01,-5\n", ":2: basis -5 must be >= 0"),
        ("account,asset,quantity,acquired,basis\nmain,BTC,1,yesterday,1\n", ":2: acquired 'yesterday' is not an ISO-8601"),
        ("account,asset,quantity,acquired,basis\nmain,BTC,1,2021-01-01T10:00:00,1\n", ":2: acquired '2021-01-01T10:00:00' has no UTC offset"),
        ("account,asset,quantity,acquired,basis\nmain,BTC,1\n", ":2: 3 fields, expected 5"),
        ("account,asset,quantity,acquired,basis\n,BTC,1,2021-01-01,1\n", ":2: account is empty"),
        ("", ":1: empty file"),
    ],
    ids=["missing-column", "bad-decimal", "negative-quantity", "negative-basis", "bad-date", "naive-datetime", "short-row", "empty-account", "empty-file"],
)
def test_opening_lots__bad_input_names_file_line_and_problem(tmp_path, body, expected):
    path = tmp_path / "open.csv"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(OpeningLotsError) as info:
        load_opening_lots(path)
    message = str(info.value)
    assert message.startswith(str(path)) and expected in message and "\n" not in message


def test_opening_lots__missing_file(tmp_path):
    with pytest.raises(OpeningLotsError, match="cannot read"):
        load_opening_lots(tmp_path / "nope.csv")
