"""Time zone resolution for sessions (DESIGN "Policies": explicit → location → country → error).

OCPI 2.2+ CdrLocation carries no time zone, so a CDR verifier needs the zone from elsewhere.
Countries with a single IANA zone for the whole (mainland) territory resolve by country code;
multi-zone countries (US, CA, AU, RU, BR, MX, …) need an explicit zone or a location registry.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pricing.errors import TimeZoneError

# alpha-2 → zone for countries with one zone (mainland). Alpha-3 codes map through ALPHA3.
SINGLE_ZONE: dict[str, str] = {
    "AT": "Europe/Vienna",
    "BE": "Europe/Brussels",
    "BG": "Europe/Sofia",
    "CH": "Europe/Zurich",
    "CY": "Asia/Nicosia",
    "CZ": "Europe/Prague",
    "DE": "Europe/Berlin",
    "DK": "Europe/Copenhagen",
    "EE": "Europe/Tallinn",
    "ES": "Europe/Madrid",
    "FI": "Europe/Helsinki",
    "FR": "Europe/Paris",
    "GB": "Europe/London",
    "GR": "Europe/Athens",
    "HR": "Europe/Zagreb",
    "HU": "Europe/Budapest",
    "IE": "Europe/Dublin",
    "IS": "Atlantic/Reykjavik",
    "IT": "Europe/Rome",
    "LI": "Europe/Vaduz",
    "LT": "Europe/Vilnius",
    "LU": "Europe/Luxembourg",
    "LV": "Europe/Riga",
    "MT": "Europe/Malta",
    "NL": "Europe/Amsterdam",
    "NO": "Europe/Oslo",
    "PL": "Europe/Warsaw",
    "PT": "Europe/Lisbon",
    "RO": "Europe/Bucharest",
    "SE": "Europe/Stockholm",
    "SI": "Europe/Ljubljana",
    "SK": "Europe/Bratislava",
    "JP": "Asia/Tokyo",
    "KR": "Asia/Seoul",
    "SG": "Asia/Singapore",
    "NZ": "Pacific/Auckland",
    "IL": "Asia/Jerusalem",
    "TR": "Europe/Istanbul",
    "UA": "Europe/Kyiv",
    "RS": "Europe/Belgrade",
    "IN": "Asia/Kolkata",
    "CN": "Asia/Shanghai",
    "ZA": "Africa/Johannesburg",
}
ALPHA3: dict[str, str] = {
    "AUT": "AT",
    "BEL": "BE",
    "BGR": "BG",
    "CHE": "CH",
    "CYP": "CY",
    "CZE": "CZ",
    "DEU": "DE",
    "DNK": "DK",
    "EST": "EE",
    "ESP": "ES",
    "FIN": "FI",
    "FRA": "FR",
    "GBR": "GB",
    "GRC": "GR",
    "HRV": "HR",
    "HUN": "HU",
    "IRL": "IE",
    "ISL": "IS",
    "ITA": "IT",
    "LIE": "LI",
    "LTU": "LT",
    "LUX": "LU",
    "LVA": "LV",
    "MLT": "MT",
    "NLD": "NL",
    "NOR": "NO",
    "POL": "PL",
    "PRT": "PT",
    "ROU": "RO",
    "SWE": "SE",
    "SVN": "SI",
    "SVK": "SK",
    "JPN": "JP",
    "KOR": "KR",
    "SGP": "SG",
    "NZL": "NZ",
    "ISR": "IL",
    "TUR": "TR",
    "UKR": "UA",
    "SRB": "RS",
    "IND": "IN",
    "CHN": "CN",
    "ZAF": "ZA",
}


def validate_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise TimeZoneError(
            f"unknown time zone {name!r}. Hint: use an IANA name such as 'Europe/Amsterdam'"
        ) from exc
    return name


def country_zone(country: str | None) -> str | None:
    if not country:
        return None
    code = country.strip().upper()
    code = ALPHA3.get(code, code)
    return SINGLE_ZONE.get(code)


def resolve_time_zone(
    explicit: str | None = None,
    location_zone: str | None = None,
    country: str | None = None,
    registry_zone: str | None = None,
) -> str:
    """The first available of: explicit argument, location registry, location field, country."""
    for candidate in (explicit, registry_zone, location_zone):
        if candidate:
            return validate_zone(candidate)
    by_country = country_zone(country)
    if by_country:
        return by_country
    where = f"country {country!r}" if country else "no country"
    raise TimeZoneError(
        f"cannot determine the local time zone ({where}; the CDR location has no time_zone). "
        "Hint: pass --tz ZONE (e.g. --tz America/Toronto) or a location registry"
    )
