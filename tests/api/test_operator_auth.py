"""Operator authentication of the /v1 routes that read or change settlements, months and the store
(the new-user trial, session 6: without a token, or with a CPO's OCPI token, anyone could list the
runs with their contract terms, read any party's statement, close a month and see every party and
its refusals). Price transparency (quotes, price sheets, lint, health) stays open."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_price_cli import TARIFF

from api.cli import main
from api.http.settings import load_settings
from pricing.errors import InputError
from settlement.store import Store

from .client import REMOTE, client

TOKEN = "op-3f9c2d7e61b04a58a1c0"
OPERATOR_ROUTES = [
    ("GET", "/v1/settlements", None),
    ("POST", "/v1/settlements", {"month": "2026-10"}),
    ("GET", "/v1/settlements/1", None),
    ("GET", "/v1/settlements/1/statements/NL*MYC/DE*MSP/EUR", None),
    ("POST", "/v1/months/2026-10/close", None),
    ("GET", "/v1/months", None),
    ("GET", "/v1/store", None),
]
PLANNED = {"tariff": TARIFF, "start": "2024-06-03T10:00:00+02:00", "energy_kwh": "10", "power_kw": 11}


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(url)
    store.add_party("NL", "MYC", "CPO", "token-a-myc")
    store.close()
    return url


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def call(c, method: str, path: str, body: dict | None, headers: dict[str, str] | None = None):
    return c.request(method, path, json=body, headers=headers or {})


@pytest.mark.parametrize("method, path, body", OPERATOR_ROUTES)
def test_with_a_token_configured_the_operator_routes_need_it(store_url: str, method, path, body) -> None:
    c = client(store_url=store_url, operator_token=TOKEN)  # a local client: no exception for it
    for headers, words in [
        ({}, "this route needs the operator token"),
        (bearer("not-the-token-at-all"), "wrong operator token"),
        (bearer(TOKEN + "x"), "wrong operator token"),
        ({"Authorization": "Token token-a-myc"}, "an OCPI token ('Authorization: Token …') does not open"),
        (bearer("token-a-myc"), "wrong operator token"),
        ({"Authorization": f"Basic {TOKEN}"}, "is not 'Bearer <token>'"),
    ]:
        r = call(c, method, path, body, headers)
        assert r.status_code == 401, (path, headers, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["www-authenticate"].startswith("Bearer")
        detail = r.json()["detail"]
        assert words in detail and "'Authorization: Bearer <token>'" in detail, detail
        assert set(r.json()) == {"type", "title", "status", "detail", "instance"}, "nothing but the problem"
    r = call(c, method, path, body, bearer(TOKEN))
    assert r.status_code not in (401, 403), (path, r.text)


@pytest.mark.parametrize("method, path, body", OPERATOR_ROUTES)
def test_without_a_token_configured_only_local_clients_are_answered(
    store_url: str, method, path, body
) -> None:
    remote = client(store_url=store_url, address=REMOTE)
    for headers in ({}, {"Authorization": "Token token-a-myc"}, bearer("anything-at-all-here")):
        r = call(remote, method, path, body, headers)
        assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json", r.text
        assert "ROAMLEDGER_OPERATOR_TOKEN_FILE" in r.json()["detail"]
    local = client(store_url=store_url)  # the README's quick start on one machine
    assert call(local, method, path, body).status_code not in (401, 403)
    r = call(local, method, path, body, {"Authorization": "Token token-a-myc"})  # e.g. via a local proxy
    assert r.status_code == 403 and "an OCPI token" in r.json()["detail"]
    for host in ("::1", "::ffff:127.0.0.1", "127.8.9.10"):
        assert call(client(store_url=store_url, address=(host, 1)), method, path, body).status_code != 403


def test_the_settlement_data_of_the_trial_is_closed_to_a_cpo(store_url: str) -> None:
    """The trial's steps with the CPO's OCPI token and with none, from another machine."""
    c = client(store_url=store_url, operator_token=TOKEN, address=REMOTE)
    op = bearer(TOKEN)
    r = c.post("/v1/settlements", json={"month": "2026-10", "contracts": {"parties": {}}}, headers=op)
    assert r.status_code == 202, r.text
    cpo = {"Authorization": "Token token-a-myc"}
    assert c.get("/v1/settlements", headers=cpo).status_code == 401
    assert c.get("/v1/store", headers=cpo).status_code == 401
    assert c.post("/v1/months/2026-10/close", headers=cpo).status_code == 401
    listed = c.get("/v1/settlements", headers=op).json()["runs"]
    assert [run["month"] for run in listed] == ["2026-10"]
    assert c.get("/v1/store", headers=op).json()["migrations_current"] is True


def test_price_transparency_stays_open(tmp_path: Path) -> None:
    c = client(store_url=f"sqlite:///{tmp_path / 's.db'}", operator_token=TOKEN, address=REMOTE)
    assert c.get("/v1/health").status_code == 200
    assert c.post("/v1/quotes", json=PLANNED).status_code == 200
    assert c.post("/v1/price-sheet", json={"tariff": TARIFF}).status_code == 200
    assert c.post("/v1/tariffs/lint", json={"tariff": TARIFF}).status_code == 200
    assert c.get("/v1/tariffs/NL/CPO/T1/price-sheet").status_code == 404  # open, just not stored
    assert c.get("/openapi.json").status_code == 200


def test_the_openapi_document_names_the_security_scheme() -> None:
    schema = client(operator_token=TOKEN).get("/openapi.json").json()
    scheme = schema["components"]["securitySchemes"]["operator"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    paths = schema["paths"]
    for path, method in [
        ("/v1/settlements", "get"),
        ("/v1/settlements", "post"),
        ("/v1/settlements/{run_id}/statements/{cpo}/{emsp}/{currency}", "get"),
        ("/v1/months/{month}/close", "post"),
        ("/v1/store", "get"),
    ]:
        assert paths[path][method]["security"] == [{"operator": []}], path
        assert {"401", "403"} <= set(paths[path][method]["responses"]), path
    for path, method in [("/v1/quotes", "post"), ("/v1/health", "get"), ("/v1/tariffs/lint", "post")]:
        assert "security" not in paths[path][method], path


def test_the_operator_token_from_a_file_the_environment_or_serve(tmp_path: Path, monkeypatch) -> None:
    f = tmp_path / "operator.token"
    f.write_text(TOKEN + "\n")
    settings = load_settings(env={"ROAMLEDGER_OPERATOR_TOKEN_FILE": str(f)})
    assert settings.operator_secret() == TOKEN
    assert TOKEN not in repr(load_settings(env={"ROAMLEDGER_OPERATOR_TOKEN": TOKEN})), "a secret in repr"
    c = client(operator_token_file=str(f), address=REMOTE)
    assert c.get("/v1/months").status_code == 401
    assert c.get("/v1/months", headers=bearer(TOKEN)).status_code == 422, "past the token: no store here"
    for env, words in [
        ({"ROAMLEDGER_OPERATOR_TOKEN": "short"}, "at least 16 characters"),
        (
            {"ROAMLEDGER_OPERATOR_TOKEN_FILE": str(tmp_path / "missing")},
            "cannot read the operator token file",
        ),
        ({"ROAMLEDGER_OPERATOR_TOKEN_FILE": str(f), "ROAMLEDGER_OPERATOR_TOKEN": TOKEN}, "not both"),
    ]:
        with pytest.raises(InputError, match=words):
            load_settings(env=env)
    monkeypatch.setenv("ROAMLEDGER_OPERATOR_TOKEN_FILE", "")  # restored after the test
    monkeypatch.setattr("api.cli.serve.uvicorn.run", lambda *a, **k: None)
    monkeypatch.setattr("api.cli.serve.check_port", lambda *a: None)
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--operator-token-file", f.name]) == 0
    assert os.environ["ROAMLEDGER_OPERATOR_TOKEN_FILE"] == str(f), "the workers read it, by its full path"
