"""The inputs of the new-user trial (session 5), small: an OCPI 2.2.1 tariff and CDRs of NL*ABC for
the eMSP DE*MSP, a 2.1.1 tariff and CDR of the same CPO (no party in the CDR), and a contracts file
with VAT rates per country, a party's name and the 2.1.1 party mapping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TOKEN = {
    "country_code": "DE",
    "party_id": "MSP",
    "uid": "AA11",
    "type": "RFID",
    "contract_id": "DE-MSP-C00000001-1",
}
LOCATION = {
    "id": "LOC-A1",
    "name": "Plein",
    "address": "Dorpsstraat 1",
    "city": "Utrecht",
    "postal_code": "3511",
    "country": "NLD",
    "coordinates": {"latitude": "52.090000", "longitude": "5.120000"},
    "evse_uid": "A1-1",
    "evse_id": "NL*ABC*E1",
    "connector_id": "1",
    "connector_standard": "IEC_62196_T2",
    "connector_format": "SOCKET",
    "connector_power_type": "AC_3_PHASE",
}


def comp(kind: str, price: float, vat: float | None = None, step: int = 1) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind, "price": price, "step_size": step}
    if vat is not None:
        out["vat"] = vat
    return out


TARIFF_221 = {
    "country_code": "NL",
    "party_id": "ABC",
    "id": "ABC-T1",
    "currency": "EUR",
    "type": "REGULAR",
    "elements": [
        {"price_components": [comp("FLAT", 0.50, 21.0)]},
        {
            "price_components": [comp("ENERGY", 0.30, 21.0)],
            "restrictions": {"start_time": "09:00", "end_time": "18:00"},
        },
        {"price_components": [comp("ENERGY", 0.25, 21.0)]},
        {"price_components": [comp("PARKING_TIME", 6.00, 21.0, 300)]},
    ],
    "last_updated": "2026-01-01T00:00:00Z",
}
TARIFF_211 = {
    "id": "ABC-211",
    "currency": "EUR",
    "elements": [
        {"price_components": [comp("FLAT", 1.00)]},
        {"price_components": [comp("ENERGY", 0.30)]},
    ],
    "last_updated": "2026-01-01T00:00:00Z",
}


def cdr_221(
    cdr_id: str,
    start: str,
    end: str,
    kwh: float = 10,
    hours: float = 1.0,
    excl: float = 3.50,
    incl: float = 4.24,
    **extra: Any,
) -> dict[str, Any]:
    """A 2.2.1 CDR of NL*ABC at LOC-A1 under ABC-T1: one period of ``kwh`` and ``hours``."""
    return {
        "country_code": "NL",
        "party_id": "ABC",
        "id": cdr_id,
        "start_date_time": start,
        "end_date_time": end,
        "cdr_token": TOKEN,
        "auth_method": "WHITELIST",
        "cdr_location": LOCATION,
        "currency": "EUR",
        "charging_periods": [
            {
                "start_date_time": start,
                "dimensions": [{"type": "ENERGY", "volume": kwh}, {"type": "TIME", "volume": hours}],
                "tariff_id": "ABC-T1",
            }
        ],
        "total_cost": {"excl_vat": excl, "incl_vat": incl},
        "total_energy": kwh,
        "total_time": hours,
        "last_updated": end,
        **extra,
    }


CDR_211 = {
    "id": "ABC211-C1",
    "start_date_time": "2026-11-12T10:00:00Z",
    "stop_date_time": "2026-11-12T11:00:00Z",
    "auth_id": "DEMSPC00000001",
    "auth_method": "WHITELIST",
    "location": {
        "id": "LOC-A1",
        "type": "ON_STREET",
        "address": "Dorpsstraat 1",
        "city": "Utrecht",
        "postal_code": "3511",
        "country": "NLD",
        "coordinates": {"latitude": "52.090000", "longitude": "5.120000"},
        "evses": [
            {
                "uid": "A1-1",
                "evse_id": "NL-ABC-E1",
                "status": "AVAILABLE",
                "connectors": [
                    {
                        "id": "1",
                        "standard": "IEC_62196_T2",
                        "format": "SOCKET",
                        "power_type": "AC_3_PHASE",
                        "voltage": 230,
                        "amperage": 16,
                        "tariff_id": "ABC-211",
                        "last_updated": "2026-01-01T00:00:00Z",
                    }
                ],
                "last_updated": "2026-01-01T00:00:00Z",
            }
        ],
        "time_zone": "Europe/Amsterdam",
        "last_updated": "2026-01-01T00:00:00Z",
    },
    "currency": "EUR",
    "charging_periods": [
        {
            "start_date_time": "2026-11-12T10:00:00Z",
            "dimensions": [{"type": "ENERGY", "volume": 10}, {"type": "TIME", "volume": 1.0}],
        }
    ],
    "total_cost": 4.00,
    "total_energy": 10,
    "total_time": 1.0,
    "last_updated": "2026-11-12T11:05:00Z",
}

CONTRACTS = {
    "statement_time_zone": "Europe/Amsterdam",
    "default": {
        "basis": "reported",
        "tolerance": "0.01",
        "disputed": "exclude",
        "payment_terms_days": 30,
        "reporting_currency": "EUR",
    },
    "vat_rates": {"NL": "21", "DE": "19"},
    "parties": {"NL*ABC": {"name": "ABC Laden B.V.", "address": "Dorpsstraat 1, Utrecht"}},
    "pairs": {},
    "parties_211": {"emsp_by_contract_prefix": {"DEMSP": "DE*MSP"}, "cpo_by_location": {"LOC-A1": "NL*ABC"}},
}

NOVEMBER = [
    cdr_221("ABC-C1", "2026-11-06T10:00:00Z", "2026-11-06T11:00:00Z"),
    cdr_221("ABC-C2", "2026-11-07T10:00:00Z", "2026-11-07T11:00:00Z"),
]


def write_ndjson(path: Path, objects: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects), encoding="utf-8")
    return path


def write_inputs(root: Path, contracts: dict[str, Any] | None = None) -> Path:
    """``root/in``: tariffs/ (ABC-T1, ABC-211), cdrs/month.ndjson (2.2.1), cdrs/v211.ndjson and
    contracts.json."""
    d = root / "in"
    (d / "tariffs").mkdir(parents=True, exist_ok=True)
    for t in (TARIFF_221, TARIFF_211):
        (d / "tariffs" / f"{t['id']}.json").write_text(json.dumps(t), encoding="utf-8")
    write_ndjson(d / "cdrs" / "month.ndjson", NOVEMBER)
    write_ndjson(d / "cdrs" / "v211.ndjson", [CDR_211])
    (d / "contracts.json").write_text(json.dumps(CONTRACTS if contracts is None else contracts), "utf-8")
    return d
