"""The parties and tariffs of a generated month, as data (the fixed constants of the workload)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

VERSIONS = ("2.1.1", "2.2.1", "2.3.0")
BLOCK = 50_000  # sessions per generation block (fixed: part of the determinism contract)
GRID = 9  # seconds; 9 s = 0.0025 h, so hour volumes are exact at 4 decimals
INF = np.iinfo(np.int64).max // 4

MALFORMED_KINDS = (
    "truncated_json",
    "missing_field",
    "negative_volume",
    "unknown_tariff",
    "wrong_currency",
    "version_mismatch",
)
MALFORMED_CODES = {
    "truncated_json": "BAD_JSON",
    "missing_field": "MISSING_FIELD",
    "negative_volume": "NEGATIVE_VOLUME",
    "unknown_tariff": "TARIFF_NOT_FOUND",
    "wrong_currency": "CURRENCY_MISMATCH",
    "version_mismatch": "VERSION_MISMATCH",
}
FLAT_MALFORMED_KINDS = ("missing_field", "negative_volume", "unknown_tariff", "wrong_currency")

# ---- parties ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comp:
    dim: str
    price: str
    step: int


@dataclass(frozen=True)
class El:
    comps: tuple[Comp, ...]
    restrictions: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class TariffSpec:
    """A version-neutral tariff; :func:`tariff_json` renders it for one OCPI version."""

    party: str
    kind: str  # AC | DC
    elements: tuple[El, ...]
    min_price: tuple[str, str] | None = None  # (excl, incl)
    max_price: tuple[str, str] | None = None
    tax_included_230: str = "NO"  # YES: the 2.3.0 rendering carries prices incl. VAT

    def tariff_id(self, version: str) -> str:
        return f"{self.party}-{self.kind}-{version.replace('.', '')}"


@dataclass(frozen=True)
class Cpo:
    country: str
    party: str
    country3: str
    zone: str
    currency: str
    vat: str
    name: str
    cities: tuple[tuple[str, str, float, float], ...]  # name, postal code, lat, lon
    streets: tuple[str, ...]
    ac: TariffSpec
    dc: TariffSpec
    breakdown: bool = True  # fills the optional total_*_cost fields (2.2.1/2.3.0)

    @property
    def key(self) -> str:
        return f"{self.country}*{self.party}"


@dataclass(frozen=True)
class Emsp:
    country: str
    party: str

    @property
    def key(self) -> str:
        return f"{self.country}*{self.party}"

    @property
    def prefix(self) -> str:
        return f"{self.country}{self.party}"


def _el(*comps: Comp, **restrictions: Any) -> El:
    return El(tuple(comps), tuple(restrictions.items()))


WEEKDAYS_MON_SAT = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY"]

CPOS: tuple[Cpo, ...] = (
    Cpo(
        "NL",
        "ECO",
        "NLD",
        "Europe/Amsterdam",
        "EUR",
        "21",
        "EcoCharge Nederland",
        (
            ("Amsterdam", "1012", 52.3728, 4.8936),
            ("Utrecht", "3511", 52.0907, 5.1214),
            ("Rotterdam", "3011", 51.9225, 4.4792),
            ("Den Haag", "2511", 52.0705, 4.3007),
            ("Eindhoven", "5611", 51.4416, 5.4697),
        ),
        ("Stationsplein", "Marktstraat", "Kerkweg", "Havenkade", "Parkweg", "Molenstraat"),
        TariffSpec(
            "ECO",
            "AC",
            (
                _el(Comp("FLAT", "0.35", 0)),
                _el(Comp("ENERGY", "0.42", 1), start_time="07:00", end_time="23:00"),
                _el(Comp("ENERGY", "0.32", 1)),
                _el(Comp("PARKING_TIME", "1.20", 900), min_duration=10800),
            ),
        ),
        TariffSpec(
            "ECO",
            "DC",
            (
                _el(Comp("ENERGY", "0.59", 1), min_kwh=40),
                _el(Comp("ENERGY", "0.69", 1)),
                _el(Comp("TIME", "2.40", 60), min_power=100),
                _el(Comp("PARKING_TIME", "12.00", 60), min_duration=2700),
            ),
            max_price=("45.00", "54.45"),
        ),
    ),
    Cpo(
        "DE",
        "VLT",
        "DEU",
        "Europe/Berlin",
        "EUR",
        "19",
        "Voltwerk Ladenetz",
        (
            ("Berlin", "10178", 52.5200, 13.4050),
            ("Hamburg", "20095", 53.5511, 9.9937),
            ("München", "80331", 48.1351, 11.5820),
            ("Köln", "50667", 50.9375, 6.9603),
            ("Frankfurt am Main", "60311", 50.1109, 8.6821),
        ),
        ("Hauptstraße", "Bahnhofstraße", "Gartenweg", "Schillerstraße", "Ringstraße", "Am Markt"),
        TariffSpec(
            "VLT",
            "AC",
            (
                _el(Comp("FLAT", "0.50", 1)),
                _el(Comp("ENERGY", "0.45", 100), start_time="07:00", end_time="22:00"),
                _el(Comp("ENERGY", "0.39", 100)),
                _el(
                    Comp("PARKING_TIME", "6.00", 300),
                    start_time="08:00",
                    end_time="20:00",
                    day_of_week=WEEKDAYS_MON_SAT,
                    min_duration=14400,
                ),
            ),
            min_price=("1.50", "1.79"),
        ),
        TariffSpec(
            "VLT",
            "DC",
            (
                _el(Comp("ENERGY", "0.59", 1), min_kwh=50),
                _el(Comp("ENERGY", "0.65", 1)),
                _el(Comp("TIME", "1.20", 60), min_power=50),
                _el(Comp("PARKING_TIME", "9.00", 300), min_duration=3600),
            ),
        ),
        breakdown=False,
    ),
    Cpo(
        "GB",
        "PLG",
        "GBR",
        "Europe/London",
        "GBP",
        "20",
        "PlugGrid UK",
        (
            ("London", "EC1A 1BB", 51.5072, -0.1276),
            ("Manchester", "M1 1AE", 53.4808, -2.2426),
            ("Bristol", "BS1 4DJ", 51.4545, -2.5879),
            ("Leeds", "LS1 1UR", 53.8008, -1.5491),
            ("Birmingham", "B1 1AA", 52.4862, -1.8904),
        ),
        ("High Street", "Station Road", "Church Lane", "Mill Road", "Park Avenue", "Queen Street"),
        TariffSpec(
            "PLG",
            "AC",
            (
                _el(Comp("FLAT", "0.40", 1)),
                _el(Comp("ENERGY", "0.65", 1), start_time="16:00", end_time="19:00"),
                _el(Comp("ENERGY", "0.52", 1)),
                _el(Comp("PARKING_TIME", "6.00", 300), min_duration=7200),
            ),
            tax_included_230="YES",
        ),
        TariffSpec(
            "PLG",
            "DC",
            (
                _el(Comp("ENERGY", "0.69", 1), min_kwh=30),
                _el(Comp("ENERGY", "0.79", 1)),
                _el(Comp("TIME", "3.60", 60), min_power=100),
                _el(Comp("PARKING_TIME", "24.00", 60), min_duration=3600),
            ),
        ),
        breakdown=False,
    ),
    Cpo(
        "BE",
        "WAT",
        "BEL",
        "Europe/Brussels",
        "EUR",
        "21",
        "Wattify Belgium",
        (
            ("Bruxelles", "1000", 50.8503, 4.3517),
            ("Antwerpen", "2000", 51.2194, 4.4025),
            ("Gent", "9000", 51.0543, 3.7174),
            ("Liège", "4000", 50.6326, 5.5797),
            ("Leuven", "3000", 50.8798, 4.7005),
        ),
        ("Kerkstraat", "Stationsstraat", "Rue de la Gare", "Dorpsstraat", "Avenue Louise", "Nieuwstraat"),
        TariffSpec(
            "WAT",
            "AC",
            (
                _el(Comp("FLAT", "0.25", 0)),
                _el(Comp("ENERGY", "0.40", 1), start_time="07:00", end_time="23:00"),
                _el(Comp("ENERGY", "0.30", 1)),
                _el(Comp("PARKING_TIME", "1.80", 900), min_duration=7200),
            ),
        ),
        TariffSpec(
            "WAT",
            "DC",
            (
                _el(Comp("ENERGY", "0.55", 1), min_kwh=40),
                _el(Comp("ENERGY", "0.65", 1)),
                _el(Comp("TIME", "2.40", 60), min_power=100),
                _el(Comp("PARKING_TIME", "9.00", 300), min_duration=2700),
            ),
        ),
    ),
    Cpo(
        "FR",
        "REC",
        "FRA",
        "Europe/Paris",
        "EUR",
        "20",
        "Recharge France",
        (
            ("Paris", "75001", 48.8566, 2.3522),
            ("Lyon", "69001", 45.7640, 4.8357),
            ("Marseille", "13001", 43.2965, 5.3698),
            ("Lille", "59000", 50.6292, 3.0573),
            ("Nantes", "44000", 47.2184, -1.5536),
        ),
        (
            "Rue de la République",
            "Avenue Victor Hugo",
            "Rue du Marché",
            "Boulevard Pasteur",
            "Place de la Gare",
            "Rue des Écoles",
        ),
        TariffSpec(
            "REC",
            "AC",
            (
                _el(Comp("FLAT", "0.40", 1)),
                _el(Comp("ENERGY", "0.44", 1), start_time="06:00", end_time="22:00"),
                _el(Comp("ENERGY", "0.34", 1)),
                _el(Comp("TIME", "0.60", 60)),
                _el(Comp("PARKING_TIME", "3.00", 60), min_duration=10800),
            ),
        ),
        TariffSpec(
            "REC",
            "DC",
            (
                _el(Comp("ENERGY", "0.55", 1), min_kwh=40),
                _el(Comp("ENERGY", "0.62", 1)),
                _el(Comp("TIME", "3.00", 60), min_power=100),
                _el(Comp("PARKING_TIME", "12.00", 60), min_duration=3600),
            ),
        ),
    ),
)

EMSPS: tuple[Emsp, ...] = (
    Emsp("DE", "MSP"),
    Emsp("NL", "TNM"),
    Emsp("FR", "EMO"),
    Emsp("GB", "DRV"),
    Emsp("BE", "MOB"),
    Emsp("NL", "ROM"),
)
CPO_WEIGHTS = (5.0, 4.0, 3.0, 2.5, 2.0)
EMSP_WEIGHTS = (4.0, 3.0, 2.0, 1.5, 1.0, 1.0)
