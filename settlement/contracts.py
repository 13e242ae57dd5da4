"""Contract terms between a CPO and an eMSP (a JSON file; every field optional).

```json
{
  "statement_time_zone": "Europe/Amsterdam",
  "default": {"basis": "reported", "tolerance": "0.01", "disputed": "exclude",
              "roaming_fee_per_session": "0.00", "roaming_fee_percent": "0",
              "hub_fee_per_session": "0.00", "payment_terms_days": 30, "reporting_currency": "EUR"},
  "fx_rates": {"GBP/EUR": "1.1650"},
  "pairs": {"NL*ECO/DE*MSP": {"roaming_fee_per_session": "0.15", "payment_terms_days": 14}},
  "parties_211": {"emsp_by_contract_prefix": {"NLTNM": "NL*TNM"}, "cpo_by_location": {"LOC1": "NL*ECO"}}
}
```

Terms of a pair override the defaults field by field. Fees are amounts in the statement currency
added as separate, labelled lines (a negative fee is a discount); the percentage fee applies to the
settled total of CDR lines.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pricing.errors import InputError

BASES = ("reported", "recomputed")


@dataclass(frozen=True, slots=True)
class Terms:
    basis: str = "reported"
    tolerance: Decimal = Decimal("0.01")
    disputed: str = "exclude"  # exclude | include
    roaming_fee_per_session: Decimal = Decimal(0)
    roaming_fee_percent: Decimal = Decimal(0)
    hub_fee_per_session: Decimal = Decimal(0)
    payment_terms_days: int = 30
    reporting_currency: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "basis": self.basis,
            "tolerance": str(self.tolerance),
            "disputed": self.disputed,
            "roaming_fee_per_session": str(self.roaming_fee_per_session),
            "roaming_fee_percent": str(self.roaming_fee_percent),
            "hub_fee_per_session": str(self.hub_fee_per_session),
            "payment_terms_days": self.payment_terms_days,
            "reporting_currency": self.reporting_currency,
        }


@dataclass(frozen=True)
class Contracts:
    default: Terms = Terms()
    pairs: dict[str, Terms] = field(default_factory=dict)
    fx_rates: dict[str, Decimal] = field(default_factory=dict)
    statement_time_zone: str | None = None
    emsp_by_contract_prefix: dict[str, str] = field(default_factory=dict)
    cpo_by_location: dict[str, str] = field(default_factory=dict)

    def terms(self, cpo: str, emsp: str) -> Terms:
        return self.pairs.get(f"{cpo}/{emsp}", self.default)

    def fx(self, currency: str, reporting: str) -> Decimal | None:
        if currency == reporting:
            return Decimal(1)
        direct = self.fx_rates.get(f"{currency}/{reporting}")
        if direct is not None:
            return direct
        inverse = self.fx_rates.get(f"{reporting}/{currency}")
        return None if inverse is None else Decimal(1) / inverse

    def as_dict(self) -> dict[str, Any]:
        return {
            "default": self.default.as_dict(),
            "pairs": {k: v.as_dict() for k, v in sorted(self.pairs.items())},
            "fx_rates": {k: str(v) for k, v in sorted(self.fx_rates.items())},
            "statement_time_zone": self.statement_time_zone,
        }


def _terms(raw: dict[str, Any], base: Terms, where: str) -> Terms:
    known = {f for f in Terms.__dataclass_fields__}
    unknown = set(raw) - known - {"_comment"}
    if unknown:
        raise InputError(
            f"{where}: unknown contract terms {sorted(unknown)}. Hint: allowed are {sorted(known)}"
        )
    values: dict[str, Any] = {}
    try:
        for k, v in raw.items():
            if k == "_comment":
                continue
            if k in ("tolerance", "roaming_fee_per_session", "roaming_fee_percent", "hub_fee_per_session"):
                values[k] = Decimal(str(v))
            elif k == "payment_terms_days":
                values[k] = int(v)
            else:
                values[k] = v
    except (InvalidOperation, ValueError) as exc:
        raise InputError(f'{where}: {exc}. Hint: write amounts as decimal strings like "0.15"') from exc
    terms = replace(base, **values)
    if terms.basis not in BASES:
        raise InputError(f"{where}: basis {terms.basis!r}. Hint: use one of {BASES}")
    if terms.disputed not in ("exclude", "include"):
        raise InputError(f"{where}: disputed {terms.disputed!r}. Hint: use exclude or include")
    return terms


def load_contracts(path: str | Path | None, basis: str | None = None) -> Contracts:
    """Read a contracts file (None → defaults). ``basis`` (the CLI flag) overrides every pair."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"contracts file {path}: {exc}. Hint: it must be a JSON object") from exc
    default = _terms(raw.get("default", {}), Terms(), "contracts.default")
    pairs = {k: _terms(v, default, f"contracts.pairs[{k!r}]") for k, v in raw.get("pairs", {}).items()}
    if basis is not None:
        default = replace(default, basis=basis)
        pairs = {k: replace(v, basis=basis) for k, v in pairs.items()}
    p211 = raw.get("parties_211", {})
    return Contracts(
        default=default,
        pairs=pairs,
        fx_rates={k: Decimal(str(v)) for k, v in raw.get("fx_rates", {}).items()},
        statement_time_zone=raw.get("statement_time_zone"),
        emsp_by_contract_prefix=dict(p211.get("emsp_by_contract_prefix", {})),
        cpo_by_location=dict(p211.get("cpo_by_location", {})),
    )
