"""Service settings: defaults, then a settings file (TOML or JSON), then ``ROAMLEDGER_*`` variables.

The file is named by ``load_settings(path)`` or the ``ROAMLEDGER_SETTINGS`` variable; every field
can be set in the environment as ``ROAMLEDGER_<FIELD>`` (``ROAMLEDGER_MAX_BODY_BYTES=65536``,
``ROAMLEDGER_POLICY=flat_fee=once_per_session,period_boundaries=flag``). Nothing is read at import
time: each ``create_app`` gets its own settings object.

The operator token (``operator_token_file``, or ``operator_token`` where a file is not possible) is
the ``Authorization: Bearer`` secret of the ``/v1`` settlement, month and store routes
(:mod:`api.http.auth`); without one those routes answer clients on this machine only.
``ocpi_party`` is the receiver's own OCPI party (``CC*PID``, the eMSP), named in the credentials it
hands out.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from api.http.errors import settings_error
from pricing.policy import PricingPolicy

ENV_PREFIX = "ROAMLEDGER_"
MIN_OPERATOR_TOKEN = 16  # characters: a guessable operator token is no protection
OCPI_PARTY = re.compile(r"[A-Za-z]{2}\*[A-Za-z0-9]{3}")  # CC*PID, any case (CiString)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, le=64)
    max_body_bytes: int = Field(1_048_576, ge=1024, description="larger request bodies get 413")
    max_batch: int = Field(1000, ge=1, description="most quotes in one POST /v1/quotes")
    default_locale: str = "en"
    policy: tuple[str, ...] = ()  # NAME=VALUE pairs, as --policy
    log_level: str = "warning"
    store_url: str | None = Field(None, description="the OCPI receiver's store, e.g. sqlite:///roamledger.db")
    run_stale_s: int = Field(
        120, ge=1, description="a queued or running settlement run silent this long was interrupted (failed)"
    )
    operator_token_file: str | None = Field(
        None, description="a file holding the operator token (Bearer) of the /v1 settlement and store routes"
    )
    operator_token: SecretStr | None = Field(
        None,
        description="the operator token itself (prefer operator_token_file: env values leak more easily)",
    )
    ocpi_party: str | None = Field(
        None, description="the receiver's own OCPI party, CC*PID (the eMSP), e.g. DE*MSP"
    )
    ocpi_party_name: str = Field("roamledger", min_length=1, description="its business name in credentials")

    @field_validator("policy", mode="before")
    @classmethod
    def _pairs(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(p for p in (s.strip() for s in value.split(",")) if p)
        return value

    @field_validator("ocpi_party")
    @classmethod
    def _party(cls, value: str | None) -> str | None:
        if value is not None and not OCPI_PARTY.fullmatch(value):
            raise ValueError(
                f"{value!r} is not CC*PID: a 2-letter country code and a 3-character party id, e.g. DE*MSP"
            )
        return value

    def pricing_policy(self) -> PricingPolicy:
        return PricingPolicy.from_pairs(self.policy)

    def operator_secret(self) -> str | None:
        """The operator token (read from ``operator_token_file`` when that is set); None: none set."""
        if self.operator_token_file and self.operator_token:
            raise settings_error("set operator_token_file or operator_token, not both")
        if self.operator_token_file:
            p = Path(self.operator_token_file)
            try:
                token = p.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or "not UTF-8 text"
                raise settings_error(f"cannot read the operator token file {p}: {reason}") from exc
            where = f"the operator token file {p}"
        elif self.operator_token:
            token, where = self.operator_token.get_secret_value().strip(), "operator_token"
        else:
            return None
        if len(token) < MIN_OPERATOR_TOKEN or any(c.isspace() for c in token):
            raise settings_error(
                f"{where} must hold one token of at least {MIN_OPERATOR_TOKEN} characters and no spaces, "
                "e.g. from: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return token

    def own_party(self) -> tuple[str, str] | None:
        """The receiver's own (country_code, party_id), upper case; None when not set."""
        if self.ocpi_party is None:
            return None
        cc, _, pid = self.ocpi_party.partition("*")
        return cc.upper(), pid.upper()


def from_file(path: str | os.PathLike[str]) -> dict[str, object]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise settings_error(f"cannot read settings file {p}: {exc.strerror}") from exc
    try:
        data = tomllib.loads(text) if p.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise settings_error(
            f"settings file {p} is not valid {p.suffix.lstrip('.') or 'JSON'}: {exc}"
        ) from exc
    if not isinstance(data, dict):
        raise settings_error(f"settings file {p} must hold a table/object of settings")
    return data.get("roamledger", data) if isinstance(data.get("roamledger"), dict) else data


def load_settings(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Defaults ← file (``path`` or ``$ROAMLEDGER_SETTINGS``) ← ``ROAMLEDGER_*`` variables."""
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    path = path or env.get(f"{ENV_PREFIX}SETTINGS")
    if path:
        values.update(from_file(path))
    for name in Settings.model_fields:
        key = f"{ENV_PREFIX}{name.upper()}"
        if key in env:
            values[name] = env[key]
    try:
        settings = Settings(**values)
        settings.pricing_policy()
        settings.operator_secret()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise settings_error(f"invalid settings: {problems}") from None
    return settings
