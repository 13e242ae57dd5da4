"""The statement page from its Jinja2 templates (settlement/templates, shipped as package data)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from importlib.resources import files

from settlement.contracts import Terms, load_contracts
from settlement.render import statement_html
from settlement.statement import Line, Statement, finish


def test_templates_are_package_data() -> None:
    names = {p.name for p in (files("settlement") / "templates").iterdir()}
    assert {"statement.html.j2", "daily_chart.html.j2"} <= names


def test_every_value_is_escaped() -> None:
    line = Line(
        cdr_id="<script>alert('x')</script>",
        session_start="2026-10-01T10:00:00",
        session_end="2026-10-01T11:00:00",
        day=date(2026, 10, 1).isoformat(),
        location_id='L"1&2',
        energy_kwh=Decimal("10"),
        amount_excl=Decimal("3.5"),
        amount_incl=None,
        excl=Decimal("3.50"),
        incl=None,
        vat_bucket="unknown",
        taxes=[],
        credit=False,
        credit_reference_id=None,
        status="MATCH",
        reasons="",
    )
    st = Statement("NL*ECO", "DE*MSP", "EUR", "2026-10", Terms(), lines=[line])
    finish(st, load_contracts(None))
    page = statement_html(st)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "L&quot;1&amp;2" in page
    assert page.startswith("<!DOCTYPE html>\n") and page.endswith("</body></html>\n")
