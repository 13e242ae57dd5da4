"""A quote equals what ``roamledger price`` charges (the kernel batch path, the default engine) for
the CDR of the same session: random tariffs of the three OCPI versions, random planned sessions
(power or duration, profiles, reservation and parking), random policies."""

from __future__ import annotations

import json
import tempfile
from decimal import Decimal
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from api.cli import main
from pricing.model import RESULT_COLUMNS
from pricing.policy import PricingPolicy
from pricing.quote import iso_utc, planned_cdr, quote
from tests.property.ocpi_render import tariff_json
from tests.property.strategies import ZONES, policies, session_starts, tariffs

kwh = st.one_of(
    st.sampled_from(["0", "0.001", "1", "7.5", "20", "31.999", "60"]),
    st.integers(0, 80_000).map(lambda n: f"{Decimal(n).scaleb(-3)}"),
)
power = st.sampled_from(["3.7", "7.4", "11", "22", "50", "150", "0.5", "16.25"])
minutes = st.one_of(st.sampled_from([0, 0, 1, 15, 60, 90]), st.integers(0, 600))
steps = st.lists(
    st.fixed_dictionaries(
        {"minutes": st.integers(1, 120), "power_kw": power},
        optional={"current_a": st.sampled_from(["10", "16", "32", "63"])},
    ),
    min_size=1,
    max_size=4,
)


@st.composite
def planned(draw) -> dict:
    zone = draw(st.sampled_from(ZONES))
    start_ms = draw(session_starts(zone))
    start_ms -= start_ms % 1000  # ISO text below has whole seconds
    how = draw(st.sampled_from(["power", "duration", "profile", "profile_to_energy"]))
    req: dict = {"start_ms": start_ms, "time_zone": zone}
    if how == "power":
        req |= {"energy_kwh": draw(kwh), "power_kw": draw(power)}
    elif how == "duration":
        req |= {"energy_kwh": draw(kwh), "duration": draw(minutes)}
        if draw(st.booleans()):
            req["power_kw"] = draw(power)
    else:
        req["profile"] = draw(steps)
        if how == "profile_to_energy":  # stops inside the profile (a last long step makes sure)
            req["profile"].append({"minutes": 600, "power_kw": "11"})
            req["energy_kwh"] = draw(st.sampled_from(["0.5", "1", "2", "20.0005"]))
    if draw(st.integers(0, 2)) == 0:
        req["parking_minutes"] = draw(minutes)
    if draw(st.integers(0, 4)) == 0:
        req["reservation_minutes"] = draw(minutes)
    return req


def price_cli(tmp: Path, tariff: dict, cdr: dict, zone: str, policy: PricingPolicy) -> dict:
    (tmp / "tariff.json").write_text(json.dumps(tariff), encoding="utf-8")
    (tmp / "cdr.json").write_text(json.dumps(cdr), encoding="utf-8")
    flags = [
        f"--policy={k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in policy.as_dict().items()
    ]
    out = tmp / "out.ndjson"
    args = ["price", "--tariffs", str(tmp / "tariff.json"), "--tz", zone, *flags, "--out", str(out)]
    assert main([*args, str(tmp / "cdr.json")]) == 0, (tmp / "out.ndjson.rejects.ndjson").read_text()
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 1
    return rows[0]


@given(tariffs(), planned(), policies)
def test_quote_equals_price_of_its_cdr(canonical, req, policy):
    tariff = tariff_json(canonical)
    start = req.pop("start_ms")
    zone = req["time_zone"]
    q = quote(tariff, start=iso_utc(start), policy=policy, **req)
    cdr = planned_cdr(q)
    with tempfile.TemporaryDirectory() as tmp:
        row = price_cli(Path(tmp), tariff, cdr, zone, policy)
    want = {c: row[c] for c in RESULT_COLUMNS}
    got = {c: q.row[c] for c in RESULT_COLUMNS}
    assert got == want, {c: (got[c], want[c]) for c in RESULT_COLUMNS if got[c] != want[c]}
