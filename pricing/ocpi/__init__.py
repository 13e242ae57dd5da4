"""OCPI 2.1.1 / 2.2.1 / 2.3.0 at the edge: detect the version, parse, convert to the canonical model.

The wire models live in :mod:`pricing.ocpi.v211`, :mod:`~pricing.ocpi.v221` and
:mod:`~pricing.ocpi.v230` (pydantic v2; unknown fields tolerated; every number an exact Decimal,
also when the decoder produced floats or the CPO wrote numbers as strings). This package is the
only code that knows OCPI versions.

>>> cdr, findings = parse_cdr(obj)                      # version detected from the data
>>> cdr, findings = parse_cdr(obj, "2.2.1")             # or forced (VERSION_MISMATCH if clearly not)
>>> tariff, findings = parse_tariff(obj)
>>> session = parse_session(obj)                        # the version's wire Session model

Every problem with a record raises :class:`~pricing.errors.RecordRejected` with a stable ``code``
(``BAD_RECORD``, ``VERSION_MISMATCH``, ``MISSING_FIELD``, ``WRONG_TYPE``, ``INVALID_VALUE``,
``UNSUPPORTED_PRECISION``, ``NEGATIVE_VOLUME``, ``PERIODS_OUT_OF_ORDER``, ``PERIOD_AFTER_END``),
a JSON ``path`` such as ``$.charging_periods[2].dimensions[0].volume`` and a message ending in a
``Hint:``. Warnings about records that were converted anyway (``MISSING_TAX_INCLUDED``) are
returned as :class:`~pricing.errors.Finding` lists with severity ``"warning"``.
"""

from __future__ import annotations

from decimal import Decimal
from types import ModuleType
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from pricing import errors as E
from pricing import model as M
from pricing.errors import Finding, InputError, RecordRejected
from pricing.ocpi import v211, v221, v230
from pricing.ocpi._common import COUNTRY_CODE, PARTY_ID

__all__ = [
    "COUNTRY_CODE",
    "PARTY_ID",
    "VERSIONS",
    "WireSession",
    "detect_version",
    "file_version_of",
    "normalize_version",
    "parse_cdr",
    "parse_session",
    "parse_tariff",
    "v211",
    "v221",
    "v230",
]

VERSIONS = ("2.1.1", "2.2.1", "2.3.0")
DEFAULT_VERSION = "2.2.1"
Kind = Literal["cdr", "tariff", "session"]
WireSession = v211.Session | v221.Session | v230.Session

_MODULES: dict[str, ModuleType] = {"2.1.1": v211, "2.2.1": v221, "2.3.0": v230}
_ALL = frozenset(VERSIONS)
_V22 = frozenset({"2.2.1", "2.3.0"})
_ALIASES = {"2.1": "2.1.1", "2.2": "2.2.1", "2.3": "2.3.0", "211": "2.1.1", "221": "2.2.1", "230": "2.3.0"}
_WHAT = {"cdr": "CDR", "tariff": "tariff", "session": "session"}


def normalize_version(version: str) -> str:
    """``"2.2.1"``, ``"v2.2.1"``, ``"2.2"`` or ``"221"`` → ``"2.2.1"``; InputError otherwise."""
    v = str(version).strip().lower().removeprefix("v")
    v = _ALIASES.get(v, v)
    if v not in _MODULES:
        raise InputError(f"unknown OCPI version {version!r}. Hint: use one of {', '.join(VERSIONS)}")
    return v


# ---- version detection --------------------------------------------------------------------------

# (candidate versions, reason, JSON path of the deciding field, strong?). Strong evidence is the
# presence of a field that only some versions have; weak evidence is an absence or a default.
_Evidence = tuple[frozenset[str], str, str, bool]

_CDR_211 = {"stop_date_time": "end_date_time", "auth_id": "cdr_token", "location": "cdr_location"}
_CDR_22 = ("end_date_time", "cdr_token", "cdr_location", "country_code", "party_id")
# the CDR's money fields (OCPI Price; 2.1.1 plain numbers)
CDR_MONEY = (
    "total_cost",
    "total_fixed_cost",
    "total_energy_cost",
    "total_time_cost",
    "total_parking_cost",
    "total_reservation_cost",
)
_SESSION_211 = {"start_datetime": "start_date_time", "end_datetime": "end_date_time", "auth_id": "cdr_token"}
_SESSION_22 = (
    "start_date_time",
    "end_date_time",
    "cdr_token",
    "location_id",
    "evse_uid",
    "connector_id",
    "country_code",
    "party_id",
)
_TARIFF_22 = (
    "country_code",
    "party_id",
    "type",
    "start_date_time",
    "end_date_time",
    "min_price",
    "max_price",
)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _price_shape(obj: dict[str, Any], fields: tuple[str, ...], prefix: str = "$") -> _Evidence | None:
    for f in fields:
        value = obj.get(f)
        if not isinstance(value, dict):
            continue
        for key, version in (
            ("before_taxes", "2.3.0"),
            ("taxes", "2.3.0"),
            ("after_taxes", "2.3.0"),
            ("excl_vat", "2.2.1"),
            ("incl_vat", "2.2.1"),
        ):
            if key in value:
                path = f"{prefix}.{f}.{key}"
                return frozenset({version}), f"`{path[2:]}` is a {version} Price field", path, True
    return None


def _tariff_evidence(obj: dict[str, Any], prefix: str = "$") -> list[_Evidence]:
    out: list[_Evidence] = []
    if "tax_included" in obj:
        path = f"{prefix}.tax_included"
        out.append((frozenset({"2.3.0"}), f"it has `{path[2:]}`", path, True))
    shape = _price_shape(obj, ("min_price", "max_price"), prefix)
    if shape is not None:
        out.append(shape)
    marker = next((f for f in _TARIFF_22 if f in obj), None)
    if marker is None:
        elements = obj.get("elements")
        for i, e in enumerate(elements if isinstance(elements, list) else ()):
            comps = e.get("price_components") if isinstance(e, dict) else None
            for j, c in enumerate(comps if isinstance(comps, list) else ()):
                if marker is None and isinstance(c, dict) and "vat" in c:
                    marker = f"elements[{i}].price_components[{j}].vat"
    if marker is not None:
        path = f"{prefix}.{marker}"
        out.append((_V22, f"it has `{path[2:]}` (OCPI 2.2+)", path, True))
    if not out:
        out.append((frozenset({"2.1.1"}), "it has no country_code/party_id", prefix, False))
    return out


def _cdr_evidence(obj: dict[str, Any]) -> list[_Evidence]:
    out: list[_Evidence] = []
    old = [k for k in _CDR_211 if k in obj]
    new = [k for k in _CDR_22 if k in obj]
    if new:
        out.append((_V22, f"it has `{new[0]}` (OCPI 2.2+)", f"$.{new[0]}", True))
    elif old:
        out.append(
            (frozenset({"2.1.1"}), f"it has `{old[0]}` and no `{_CDR_211[old[0]]}`", f"$.{old[0]}", True)
        )
    shape = _price_shape(obj, CDR_MONEY)
    if shape is None:
        tariffs = obj.get("tariffs")
        for i, t in enumerate(tariffs if isinstance(tariffs, list) else ()):
            if isinstance(t, dict):
                shape = next(
                    (e for e in _tariff_evidence(t, f"$.tariffs[{i}]") if len(e[0]) == 1 and e[3]), None
                )
                if shape is not None:
                    break
    if shape is not None:
        out.append(shape)
    if not out and _is_number(obj.get("total_cost")):
        out.append((frozenset({"2.1.1"}), "its total_cost is a bare number", "$.total_cost", False))
    return out


def _session_evidence(obj: dict[str, Any]) -> list[_Evidence]:
    out: list[_Evidence] = []
    old = [k for k in (*_SESSION_211, "location") if k in obj]
    new = [k for k in _SESSION_22 if k in obj]
    if new:
        out.append((_V22, f"it has `{new[0]}` (OCPI 2.2+)", f"$.{new[0]}", True))
    elif old:
        out.append((frozenset({"2.1.1"}), f"it has `{old[0]}` (OCPI 2.1.1)", f"$.{old[0]}", True))
    shape = _price_shape(obj, ("total_cost",))
    if shape is not None:
        out.append(shape)
    if not out and _is_number(obj.get("total_cost")):
        out.append((frozenset({"2.1.1"}), "its total_cost is a bare number", "$.total_cost", False))
    return out


def _evidence(obj: dict[str, Any], kind: str) -> list[_Evidence]:
    if kind == "cdr":
        return _cdr_evidence(obj)
    if kind == "tariff":
        return _tariff_evidence(obj)
    if kind == "session":
        return _session_evidence(obj)
    raise InputError(f"unknown record kind {kind!r}. Hint: use 'cdr', 'tariff' or 'session'")


def _candidates(evidence: list[_Evidence]) -> frozenset[str]:
    """Narrow the versions with each piece of evidence in turn (contradicting evidence is skipped)."""
    cands = _ALL
    for ev_cands, _reason, _path, _strong in evidence:
        if cands & ev_cands:
            cands = cands & ev_cands
    return cands


def _pick(candidates: frozenset[str]) -> str:
    return next(iter(candidates)) if len(candidates) == 1 else DEFAULT_VERSION


def detect_version(obj: dict[str, Any], kind: str) -> str:
    """The OCPI version of a decoded CDR, tariff or session, from its content.

    Each rule narrows the candidate versions; when 2.2.1 and 2.3.0 (or all three) remain, the
    answer is **2.2.1**.

    * **CDR** — any of ``end_date_time``, ``cdr_token``, ``cdr_location``, ``country_code``,
      ``party_id`` → 2.2.1 or 2.3.0; otherwise ``stop_date_time``/``auth_id``/``location`` → 2.1.1.
      The first Price among ``total_cost``, ``total_*_cost`` then decides: ``before_taxes``/
      ``taxes`` → 2.3.0, ``excl_vat``/``incl_vat`` → 2.2.1; without one, the first embedded tariff
      that tells (``tax_included`` or a ``min_price``/``max_price`` shape). With no marker at all,
      a bare-number ``total_cost`` → 2.1.1.
    * **Tariff** — ``tax_included`` → 2.3.0; ``min_price``/``max_price`` shape as above; any 2.2+
      field (``country_code``, ``party_id``, ``type``, ``start_date_time``, ``end_date_time``,
      ``min_price``, ``max_price``, a component ``vat``) → 2.2+; none of these (2.1.1 tariffs
      have no owner) → 2.1.1.
    * **Session** — 2.2 fields (``start_date_time``, ``end_date_time``, ``cdr_token``,
      ``location_id``, ``evse_uid``, ``connector_id``, ``country_code``, ``party_id``) → 2.2+;
      otherwise ``start_datetime``/``end_datetime``/``auth_id``/``location`` → 2.1.1; then the
      ``total_cost`` Price shape; with no marker, a bare-number ``total_cost`` → 2.1.1.

    The presence of a version-specific field is *strong* evidence: a version passed to the
    ``parse_*`` functions that contradicts it raises ``VERSION_MISMATCH``. Absence (a tariff
    without owner, a bare number) only guides detection.

    >>> detect_version({"stop_date_time": "2015-06-29T23:37:32Z"}, "cdr")
    '2.1.1'
    >>> detect_version({"end_date_time": "2024-12-05T19:37:32Z", "total_cost": {"before_taxes": 4}}, "cdr")
    '2.3.0'
    >>> detect_version({"country_code": "DE", "party_id": "ALL", "id": "1"}, "tariff")
    '2.2.1'
    """
    if not isinstance(obj, dict):
        raise _bad_record(obj, _WHAT.get(kind, "record"))
    return _pick(_candidates(_evidence(obj, kind)))


# the keys every CDR version requires and no tariff has: an object with all three is a CDR
CDR_KEYS = ("id", "start_date_time", "charging_periods")


def file_version_of(obj: object) -> str | None:
    """The OCPI version a file's CDRs are checked against, if ``obj`` fixes it: the file's first
    object that is a CDR does — a JSON object with ``id``, ``start_date_time`` and
    ``charging_periods`` (:data:`CDR_KEYS`) — with its :func:`detect_version`; for anything else
    (``{}``, a tariff, an array) None: it is rejected on its own and the next object decides.

    The one rule of every reader (per record, columnar, the spans of a large file, reconcile), and
    also which objects are checked against the file's version at all.

    >>> file_version_of({"id": "1", "start_date_time": "2015-06-29T21:39:09Z", "charging_periods": [],
    ...                  "stop_date_time": "2015-06-29T23:37:32Z"})
    '2.1.1'
    >>> file_version_of({}) is None
    True
    """
    if not isinstance(obj, dict) or not all(k in obj for k in CDR_KEYS):
        return None
    return detect_version(obj, "cdr")


def _resolve(obj: dict[str, Any], kind: str, version: str | None) -> str:
    evidence = _evidence(obj, kind)
    if version is None:
        return _pick(_candidates(evidence))
    v = normalize_version(version)
    for cands, reason, path, strong in evidence:
        if strong and v not in cands:
            what = _WHAT[kind]
            mixed = _conflict(evidence)
            if mixed is not None:  # no version fits all its fields: name the two that disagree
                raise RecordRejected(
                    E.VERSION_MISMATCH,
                    f"this {what} mixes OCPI versions (read as OCPI {v}): {mixed[0]} but {mixed[1]}. "
                    f"Hint: a {what} is written in one OCPI version; drop or convert the fields of "
                    "the other one",
                    path,
                )
            other = _pick(_candidates(evidence))
            raise RecordRejected(
                E.VERSION_MISMATCH,
                f"this {what} looks like OCPI {other} ({reason}) but is read as OCPI {v}. "
                f"Hint: keep one OCPI version per file and pass the right one (--ocpi-version {other})",
                path,
            )
    return v


def _conflict(evidence: list[_Evidence]) -> tuple[str, str] | None:
    """The reasons of the first two pieces of strong evidence that no one version satisfies."""
    strong = [(cands, reason) for cands, reason, _path, is_strong in evidence if is_strong]
    for i, (a, why_a) in enumerate(strong):
        for b, why_b in strong[i + 1 :]:
            if not a & b:
                return why_a, why_b
    return None


# ---- parsing ------------------------------------------------------------------------------------


def parse_cdr(obj: object, version: str | None = None) -> tuple[M.Cdr, list[Finding]]:
    """A decoded CDR → (canonical CDR, warnings). Embedded tariffs use the CDR's version.

    ``version=None`` detects it (:func:`detect_version`); a given version that the data clearly
    contradicts raises ``VERSION_MISMATCH``. Any problem raises :class:`RecordRejected` (a tariff
    given as a CDR, or an object with neither ``id`` nor ``charging_periods``: ``BAD_RECORD``
    saying so, not the CDR fields it lacks).
    """
    record = _record(obj, "cdr")
    if "elements" in record and "charging_periods" not in record:
        raise RecordRejected(
            E.BAD_RECORD,
            "an OCPI tariff (it has elements, no charging_periods), not a CDR. "
            "Hint: give tariff files as tariffs (--tariffs, or PUT to the tariffs module) and keep "
            "them out of the CDR files and folders",
            "$",
        )
    if not {"id", "charging_periods"} & record.keys():
        keys = ", ".join(sorted(map(str, record))[:6]) or "none"
        raise RecordRejected(
            E.BAD_RECORD,
            f"not an OCPI CDR: it has neither id nor charging_periods (its keys: {keys}). "
            "Hint: give CDR files only where CDRs are read; keep contracts and other JSON out of "
            "CDR folders",
            "$",
        )
    v = _resolve(record, "cdr", version)
    wire = _validate(_MODULES[v].Cdr, record, v, "cdr")
    findings: list[Finding] = []
    cdr = wire.to_canonical(findings)
    return cdr, findings


def parse_tariff(obj: object, version: str | None = None) -> tuple[M.Tariff, list[Finding]]:
    """A decoded tariff → (canonical tariff, warnings such as ``MISSING_TAX_INCLUDED``)."""
    record = _record(obj, "tariff")
    v = _resolve(record, "tariff", version)
    wire = _validate(_MODULES[v].Tariff, record, v, "tariff")
    findings: list[Finding] = []
    tariff = wire.to_canonical("$", findings)
    return tariff, findings


def parse_session(obj: object, version: str | None = None) -> WireSession:
    """A decoded session → the version's wire ``Session`` (checked: end ≥ start, periods in order)."""
    record = _record(obj, "session")
    v = _resolve(record, "session", version)
    wire = _validate(_MODULES[v].Session, record, v, "session")
    wire.check()
    return wire


def _record(obj: object, kind: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise _bad_record(obj, _WHAT[kind])
    return obj


def _bad_record(obj: object, what: str) -> RecordRejected:
    return RecordRejected(
        E.BAD_RECORD,
        f"expected a JSON object (an OCPI {what}), got {type(obj).__name__}. "
        "Hint: pass one decoded object per record; unwrap arrays and response envelopes first",
        "$",
    )


# ---- pydantic errors → RecordRejected -----------------------------------------------------------

_T = TypeVar("_T", bound=BaseModel)

_RENAMED = {
    "end_date_time": "stop_date_time",
    "stop_date_time": "end_date_time",
    "cdr_token": "auth_id",
    "auth_id": "cdr_token",
    "cdr_location": "location",
    "location": "cdr_location",
    "start_date_time": "start_datetime",
    "start_datetime": "start_date_time",
}

_TYPE_HINTS = (
    (("whole_number", "int_"), "write a whole number such as 300"),
    (("decimal_", "finite_number", "float_"), "write a JSON number such as 2.50"),
    (("datetime_",), "write an RFC 3339 UTC timestamp such as 2024-06-12T08:00:00Z"),
    (("date_",), "write a date as YYYY-MM-DD"),
    (("string_",), "write a JSON string"),
    (("bool_",), "write true or false"),
    (("model_", "dict_"), "write a JSON object"),
    (("tuple_", "list_", "iterable_"), "write a JSON array"),
    (("enum", "literal_"), "use one of the listed values (upper case, as in the OCPI specification)"),
    (("too_short",), "OCPI requires at least one entry here"),
    (("number_too_large",), "the value is implausibly large (10^19 or more); check the number"),
)

_WRONG_TYPE_EXACT = frozenset({"decimal_parsing", "int_parsing", "bool_parsing", "float_parsing"})


def _validate(model: type[_T], record: dict[str, Any], version: str, kind: str) -> _T:
    try:
        return model.model_validate(record)
    except ValidationError as exc:
        raise _rejection(exc, record, version, kind) from None


def json_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a JSON path: ``("a", 2, "b")`` → ``$.a[2].b``."""
    out = "$"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = str(value) if isinstance(value, Decimal) else repr(value)
    except ValueError:  # an int of more digits than Python converts to text
        return "a number of more than 4300 digits"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _code(etype: str) -> str:
    if etype == "missing":
        return E.MISSING_FIELD
    if etype.endswith("_type") or etype in _WRONG_TYPE_EXACT:
        return E.WRONG_TYPE
    return E.INVALID_VALUE


def _hint(etype: str) -> str:
    for prefixes, hint in _TYPE_HINTS:
        if any(etype.startswith(p) for p in prefixes):
            return hint
    return ""


def _consequential(err: Any) -> bool:
    """A ``too_short`` error that only reports that an item of the list failed validation."""
    if err["type"] != "too_short":
        return False
    given = err.get("input")
    return isinstance(given, (list, tuple)) and len(given) >= err.get("ctx", {}).get("min_length", 1)


def _rejection(exc: ValidationError, record: dict[str, Any], version: str, kind: str) -> RecordRejected:
    errors = [e for e in exc.errors(include_url=False) if not _consequential(e)] or exc.errors(
        include_url=False
    )
    err = errors[0]
    loc = tuple(err["loc"])
    path = json_path(loc)
    where = path[2:] if len(path) > 2 else "record"
    etype = err["type"]
    code = _code(etype)
    what = _WHAT[kind]
    if code == E.MISSING_FIELD:
        name = str(loc[-1]) if loc else "?"
        problem = "required field is missing"
        hint = f"OCPI {version} requires `{name}` in this object; add it"
        other = _RENAMED.get(name)
        if len(loc) == 1 and other is not None and other in record:
            hint += f" (this {what} has `{other}`, which another OCPI version uses: check the version)"
    else:
        msg = str(err["msg"]).removeprefix("Value error, ")
        problem = f"{msg[:1].lower()}{msg[1:]}, got {_short(err.get('input'))}"
        hint = _hint(etype) or f"see the OCPI {version} specification of this field"
    more = len(errors) - 1
    extra = f" ({more} more problem{'s' if more > 1 else ''} in this {what})" if more else ""
    return RecordRejected(code, f"{where}: {problem}{extra}. Hint: {hint}", path)
