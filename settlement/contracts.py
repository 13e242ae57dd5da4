"""Contract terms between a CPO and an eMSP (a JSON file; every field optional).

```json
{
  "statement_time_zone": "Europe/Amsterdam",
  "default": {"basis": "reported", "tolerance": "0.01", "disputed": "exclude",
              "roaming_fee_per_session": "0.00", "roaming_fee_percent": "0",
              "hub_fee_per_session": "0.00", "payment_terms_days": 30, "reporting_currency": "EUR"},
  "fx_rates": {"GBP/EUR": "1.1650"},
  "vat_rates": {"NL": "21", "DE": "19"},
  "parties": {"NL*ECO": {"name": "Eco Charge B.V.", "address": "Stationsplein 1, Utrecht",
                         "vat_id": "NL001234567B01", "iban": "NL91ABNA0417164300"}},
  "pairs": {"NL*ECO/DE*MSP": {"roaming_fee_per_session": "0.15", "payment_terms_days": 14,
                              "vat_rate": "21"}},
  "parties_211": {"emsp_by_contract_prefix": {"NLTNM": "NL*TNM"}, "cpo_by_location": {"LOC1": "NL*ECO"}}
}
```

Terms of a pair override the defaults field by field. Fees are amounts in the statement currency
added as separate, labelled lines (a negative fee is a discount); the percentage fee applies to the
settled total of CDR lines.

VAT rates (percent) are what the contract says VAT is charged at: a pair's ``vat_rate`` (or the
default's) first, else ``vat_rates`` by the CPO's country code (the country of the charge points:
the place of supply). The rate applies to lines whose CDR carries no VAT (OCPI 2.1.1) and to the
contract fees; a statement whose pair has no rate states net amounts only.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from pricing.errors import InputError


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
    vat_rate: Decimal | None = None

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
            "vat_rate": None if self.vat_rate is None else str(self.vat_rate),
        }


@dataclass(frozen=True, slots=True)
class Party:
    """Who a statement is between, as the invoice names them (all optional; the party code is the
    fallback name)."""

    name: str | None = None
    address: str | None = None
    vat_id: str | None = None
    iban: str | None = None

    def as_dict(self, code: str) -> dict[str, Any]:
        return {
            "code": code,
            "name": self.name or code,
            "address": self.address,
            "vat_id": self.vat_id,
            "iban": self.iban,
        }


@dataclass(frozen=True)
class Contracts:
    default: Terms = Terms()
    pairs: dict[str, Terms] = field(default_factory=dict)
    fx_rates: dict[str, Decimal] = field(default_factory=dict)
    statement_time_zone: str | None = None
    emsp_by_contract_prefix: dict[str, str] = field(default_factory=dict)
    cpo_by_location: dict[str, str] = field(default_factory=dict)
    vat_rates: dict[str, Decimal] = field(default_factory=dict)
    parties: dict[str, Party] = field(default_factory=dict)

    def party(self, code: str) -> dict[str, Any]:
        return self.parties.get(code, Party()).as_dict(code)

    def terms(self, cpo: str, emsp: str) -> Terms:
        """The pair's terms, with the VAT rate of the CPO's country when the pair sets none."""
        t = self.pairs.get(f"{cpo}/{emsp}", self.default)
        if t.vat_rate is None:
            country = self.vat_rates.get(cpo.partition("*")[0].upper())
            if country is not None:
                t = replace(t, vat_rate=country)
        return t

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
            "vat_rates": {k: str(v) for k, v in sorted(self.vat_rates.items())},
        }


# ---- the file, validated ------------------------------------------------------------------------


def _decimal(value: Any) -> Decimal:
    """A decimal amount: a string like "0.15" (or a JSON number, read through its text)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PydanticCustomError("decimal", "{text}", {"text": f"{value!r} is not a decimal number"})
    try:
        out = Decimal(str(value))
    except InvalidOperation:
        out = Decimal("NaN")
    if not out.is_finite():
        raise PydanticCustomError("decimal", "{text}", {"text": f"{value!r} is not a decimal number"})
    return out


DecimalText = Annotated[Decimal, BeforeValidator(_decimal)]


class TermsFile(BaseModel):
    """One ``default`` or ``pairs`` entry: every field optional (a pair inherits the default's)."""

    model_config = ConfigDict(extra="forbid")

    # the defaults below are never used: only the fields the file sets override (exclude_unset)
    comment: Any = Field(default=None, alias="_comment", exclude=True)
    basis: Literal["reported", "recomputed"] = "reported"
    tolerance: DecimalText = Decimal("0.01")
    disputed: Literal["exclude", "include"] = "exclude"
    roaming_fee_per_session: DecimalText = Decimal(0)
    roaming_fee_percent: DecimalText = Decimal(0)
    hub_fee_per_session: DecimalText = Decimal(0)
    payment_terms_days: int = 30
    reporting_currency: str | None = None
    vat_rate: DecimalText | None = None

    def over(self, base: Terms) -> Terms:
        """``base`` with the fields this entry sets."""
        return replace(base, **self.model_dump(exclude_unset=True, exclude={"comment"}))


class Parties211File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    emsp_by_contract_prefix: dict[str, str] = {}
    cpo_by_location: dict[str, str] = {}


class PartyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    address: str | None = None
    vat_id: str | None = None
    iban: str | None = None


class ContractsFile(BaseModel):
    """The contracts file as written (keys starting with ``_``, such as ``_comment``, are notes;
    any other unknown top-level key is refused by :func:`_layout_problems`)."""

    model_config = ConfigDict(extra="ignore")

    statement_time_zone: str | None = None
    default: TermsFile = TermsFile()
    pairs: dict[str, TermsFile] = {}
    fx_rates: dict[str, DecimalText] = {}
    vat_rates: dict[str, DecimalText] = {}
    parties: dict[str, PartyFile] = {}
    parties_211: Parties211File = Parties211File()


def _message(name: str, exc: ValidationError) -> str:
    """Every problem of the file on its own line, naming the field (dotted path) and the value."""
    allowed = sorted(f for f in TermsFile.model_fields if f != "comment")
    out = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "the file"
        if err["type"] == "decimal":
            out.append(f'{where}: {err["msg"]}. Hint: write amounts as decimal strings like "0.15"')
        elif err["type"] == "extra_forbidden":
            out.append(f"{where}: unknown contract term. Hint: allowed are {allowed}")
        else:
            out.append(f"{where}: {err['input']!r}: {err['msg']}")
    return f"{name}: " + f"\n{name}: ".join(out)


def contracts_document(path: str | Path) -> Any:
    """The JSON document of a contracts file, as written (validated by :func:`load_contracts`)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"contracts file {path}: {exc}. Hint: it must be a JSON object") from exc


PARTY = r"[A-Z]{2}\*[A-Z0-9]{3}"  # an OCPI party: country code * party id, e.g. NL*ECO
CODE_FORMS = {  # section → (pattern of its keys (or values), what one looks like)
    "pairs": (re.compile(f"{PARTY}/{PARTY}"), "CPO/EMSP, e.g. NL*ECO/DE*MSP"),
    "parties": (re.compile(PARTY), "COUNTRY*PARTY, e.g. NL*ECO"),
    "vat_rates": (re.compile(r"[A-Za-z]{2}"), "a country code, e.g. NL"),
    "fx_rates": (re.compile(r"[A-Z]{3}/[A-Z]{3}"), "FROM/TO currencies, e.g. GBP/EUR"),
}


def _layout_problems(raw: Any) -> list[str]:
    """What pydantic does not see: a top-level key that is not a section (a typo, or another kind
    of file given as contracts) and a party code written another way than COUNTRY*PARTY — both
    would otherwise be ignored silently, and the terms they hold never applied."""
    if not isinstance(raw, dict):
        return [f"the file holds a JSON {type(raw).__name__}, not an object of contract terms"]
    sections = sorted(ContractsFile.model_fields)
    out = []
    unknown = [k for k in raw if k not in sections and not k.startswith("_")]  # "_comment": a note
    if unknown:
        near = [m for k in unknown for m in difflib.get_close_matches(k, sections, n=1)]
        guess = f"did you mean {near[0]!r}? " if len(unknown) == 1 and near else ""
        what = "this is an OCPI object, not contract terms; " if {"id", "currency"} <= set(raw) else ""
        out.append(
            f"unknown section{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}. "
            f"Hint: {what}{guess}the sections are {sections} (keys starting with _ are notes)"
        )
    for section, (pattern, form) in CODE_FORMS.items():
        values = raw.get(section)
        for key in values if isinstance(values, dict) else ():
            if not pattern.fullmatch(key):
                out.append(f"{section}.{key}: not {form}")
    mapping = raw.get("parties_211")
    for name, values in mapping.items() if isinstance(mapping, dict) else ():
        for key, code in values.items() if isinstance(values, dict) else ():
            if isinstance(code, str) and not re.fullmatch(PARTY, code):
                out.append(f"parties_211.{name}.{key}: {code!r} is not COUNTRY*PARTY, e.g. NL*ECO")
    return out


def load_contracts(path: str | Path | Mapping[str, Any] | None, basis: str | None = None) -> Contracts:
    """Read a contracts file (None → defaults), or take the document itself (a mapping: the
    ``contracts`` of ``POST /v1/settlements``, a stored run's), validated the same way. ``basis``
    (the CLI flag) overrides every pair."""
    raw: Any = {}
    if isinstance(path, Mapping):
        raw, path = dict(path), None
    elif path is not None:
        raw = contracts_document(path)
    name = Path(path).name if path is not None else "contracts"
    if problems := _layout_problems(raw):
        raise InputError(f"{name}: " + f"\n{name}: ".join(problems))
    try:
        spec = ContractsFile.model_validate(raw)
    except ValidationError as exc:
        raise InputError(_message(name, exc)) from None
    default = spec.default.over(Terms())
    pairs = {k: v.over(default) for k, v in spec.pairs.items()}
    if basis is not None:
        default = replace(default, basis=basis)
        pairs = {k: replace(v, basis=basis) for k, v in pairs.items()}
    return Contracts(
        default=default,
        pairs=pairs,
        fx_rates=dict(spec.fx_rates),
        statement_time_zone=spec.statement_time_zone,
        emsp_by_contract_prefix=dict(spec.parties_211.emsp_by_contract_prefix),
        cpo_by_location=dict(spec.parties_211.cpo_by_location),
        vat_rates={k.upper(): v for k, v in spec.vat_rates.items()},
        parties={k: Party(**v.model_dump()) for k, v in spec.parties.items()},
    )
