"""Properties of the projections (hypothesis): Form 8949 rows and box totals conserve the engine's totals,
never mix terms, and the rounding reconciliation closes; the Freigrenze is a limit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.booking import Gain
from ledger.books import resolve_settings
from reports.tax import de, us
from reports.tax.common import Quantize
from tests.reports.tax.test_totals import Reporting

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
money = st.decimals(min_value=Decimal("-1000"), max_value=Decimal("100000"), places=6, allow_nan=False, allow_infinity=False)
qty = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("1000"), places=8, allow_nan=False, allow_infinity=False)


@st.composite
def gains(draw):
    out = []
    for i in range(draw(st.integers(1, 40))):
        d = draw(st.integers(0, 8))
        proceeds, cost = draw(money), draw(money.filter(lambda x: x >= 0))
        term = draw(st.sampled_from(["short", "long"]))
        out.append(Gain(account=draw(st.sampled_from(["main", "sub"])), asset="BTC", quantity=draw(qty), acquired=T0 - timedelta(days=draw(st.integers(1, 900))),
                        disposed=T0 + timedelta(days=d * 10), proceeds=proceeds, cost_basis=cost, gain=proceeds - cost, term=term, method="fifo",
                        lot_id=f"L{i}", disposal_id=f"D{d}", source_ref=f"main:{d}"))
    return out


@dataclass
class Run:
    gains: list
    year: int = 2025
    form_1099da: dict = field(default_factory=dict)
    settings: object = field(default_factory=lambda: resolve_settings(Reporting()))


@settings(max_examples=50, deadline=None)
@given(gains(), st.sampled_from(["cents", "dollars"]), st.booleans())
def test_form_8949_rows_conserve_and_never_mix_terms(gs, rounding, reported):
    run = Run(gs, form_1099da={("main", 2025): "basis-reported"} if reported else {})
    rows = us.form_8949_rows(run)
    for term in ("short", "long"):
        part = [r for r in rows if r.term == term]
        assert sum((r.proceeds for r in part), Decimal(0)) == sum((g.proceeds for g in gs if g.term == term), Decimal(0))
        assert sum((r.cost for r in part), Decimal(0)) == sum((g.cost_basis for g in gs if g.term == term), Decimal(0))
        assert all((r.box in "GHIABC") == (term == "short") for r in part)
    keys = [(r.disposal_id, r.term) for r in rows]
    assert len(keys) == len(set(keys)) and len(rows) == len({(g.disposal_id, g.term) for g in gs})
    q = Quantize(rounding)
    totals = us.box_totals(rows, q)
    assert sum((e.gain for e, _ in totals.values()), Decimal(0)) == sum((g.gain for g in gs), Decimal(0))
    half = q.quantum / 2
    for box, (e, r) in totals.items():
        n = e.rows
        assert abs(r.proceeds - e.proceeds) <= half * n and abs(r.cost - e.cost) <= half * n
        assert r.gain == r.proceeds - r.cost + r.adjustment
    sd = {ln: (e, r) for ln, _c, e, r in us.schedule_d(totals)}
    assert sd["16"][0].gain == sum((g.gain for g in gs), Decimal(0)) and sd["16"][1].gain == sd["7"][1].gain + sd["15"][1].gain


@given(st.decimals(min_value=Decimal("-5000"), max_value=Decimal("5000"), places=2, allow_nan=False, allow_infinity=False), st.integers(2018, 2030))
def test_freigrenze_is_all_or_nothing(net, year):
    gs = [Gain(account="main", asset="BTC", quantity=Decimal(1), acquired=T0, disposed=T0, proceeds=net, cost_basis=Decimal(0), gain=net, term="short",
               method="fifo", lot_id="L", disposal_id="D", source_ref="s")]
    so = de.anlage_so(Run(gs, year=year))
    limit = Decimal(600) if year <= 2023 else Decimal(1000)
    assert so["zu versteuern nach Freigrenze"] == (net if net >= limit else Decimal(0))
