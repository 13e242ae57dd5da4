"""Schemathesis against the published OpenAPI schema: a bounded number of generated requests per
operation (plus the schema's own examples); no request may end in a 5xx. Every request carries the
operator token (OCPI routes answer it 401: OCPI takes 'Token')."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from api.http import Settings, create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    STORE = Path(tempfile.mkdtemp(prefix="roamledger-schemathesis-")) / "store.db"  # the OCPI routes too
    TOKEN = "schemathesis-operator-token"  # the operator routes are exercised past their token
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", create_app(Settings(store_url=f"sqlite:///{STORE}", operator_token=TOKEN))
    )


@schema.parametrize()
@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    case.call_and_validate(checks=[not_a_server_error], headers={"Authorization": f"Bearer {TOKEN}"})
