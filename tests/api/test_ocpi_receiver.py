"""The OCPI receiver: token handshake, tariffs and CDRs pushed by a CPO, OCPI envelopes, party
isolation on every route, idempotent re-posts and refused conflicts — then the month settled from
what was received."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import pytest
from test_price_cli import CDR, TARIFF

from api.cli import main
from settlement.store import Store

from .client import client

V = "2.2.1"
TARIFF_URL = f"/ocpi/{V}/tariffs/NL/CPO/{TARIFF['id']}"


@pytest.fixture
def setup(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(url)
    store.add_party("NL", "CPO", "CPO", "token-a-cpo")
    store.add_party("DE", "XYZ", "CPO", "token-xyz")
    store.close()
    return client(store_url=url, ocpi_party="DE*MSP", ocpi_party_name="MSP Mobility"), url


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


def handshake(c, token_a: str = "token-a-cpo") -> str:
    r = c.post(
        f"/ocpi/{V}/credentials", headers=auth(token_a), json={"token": "their-b", "url": "x", "roles": []}
    )
    assert r.status_code == 200 and r.json()["status_code"] == 1000
    return r.json()["data"]["token"]


def test_credentials_handshake_replaces_token_a(setup) -> None:
    c, _ = setup
    token_c = handshake(c)
    assert c.get("/ocpi/versions", headers=auth("token-a-cpo")).status_code == 401, "token A stops working"
    r = c.get("/ocpi/versions", headers=auth(token_c))
    assert r.status_code == 200 and [v["version"] for v in r.json()["data"]] == ["2.1.1", "2.2.1", "2.3.0"]
    b64 = base64.b64encode(token_c.encode()).decode()
    modules = c.get(f"/ocpi/{V}", headers=auth(b64)).json()["data"]["endpoints"]
    assert {m["identifier"] for m in modules} == {"credentials", "tariffs", "cdrs"}, "2.2.1 base64 tokens"
    r = c.get("/ocpi/versions")
    assert (
        r.status_code == 401
        and r.json()["status_code"] == 2000
        and "Authorization" in r.json()["status_message"]
    )


def test_tariffs_pushed_by_the_cpo(setup) -> None:
    c, _ = setup
    h = auth(handshake(c))
    assert c.put(TARIFF_URL, headers=h, json=TARIFF).status_code == 201
    assert c.put(TARIFF_URL, headers=h, json=TARIFF).status_code == 200, "the same version again: unchanged"
    got = c.get(TARIFF_URL, headers=h)
    assert got.json()["data"] == TARIFF and b'"price":"' not in got.content, "numbers stay numbers"
    other = copy.deepcopy(TARIFF)
    other["currency"] = "GBP"
    r = c.put(TARIFF_URL, headers=h, json=other)
    assert r.status_code == 409 and "same last_updated" in r.json()["status_message"]
    r = c.patch(TARIFF_URL, headers=h, json={"currency": "GBP", "last_updated": "2024-02-01T00:00:00Z"})
    assert r.status_code == 200
    assert c.get(TARIFF_URL, headers=h).json()["data"]["currency"] == "GBP"
    price = c.get(TARIFF_URL, headers=h).json()["data"]["elements"][0]["price_components"][0]["price"]
    assert isinstance(price, float | int), f"an OCPI number, not {price!r}"
    r = c.put(f"/ocpi/{V}/tariffs/NL/CPO/OTHER", headers=h, json=TARIFF)
    assert r.status_code == 400 and "not the URL's tariff id" in r.json()["status_message"]
    assert c.delete(TARIFF_URL, headers=h).status_code == 200
    r = c.get(TARIFF_URL, headers=h)
    assert r.status_code == 404 and r.json()["status_code"] == 2004


def test_cdrs_posted_by_the_cpo(setup) -> None:
    c, _ = setup
    h = auth(handshake(c))
    r = c.post(f"/ocpi/{V}/cdrs", headers=h, json=CDR)
    assert r.status_code == 201 and r.json()["status_code"] == 1000
    location = r.headers["location"]
    assert location.endswith(f"/ocpi/{V}/cdrs/NL/CPO/{CDR['id']}")
    got = c.get(location, headers=h).json()["data"]
    assert got["id"] == CDR["id"] and str(got["total_cost"]["incl_vat"]) == str(CDR["total_cost"]["incl_vat"])
    assert c.post(f"/ocpi/{V}/cdrs", headers=h, json=CDR).status_code == 200, "a re-post is idempotent"
    changed = copy.deepcopy(CDR)
    changed["total_cost"] = {"excl_vat": 9, "incl_vat": 10.89}
    r = c.post(f"/ocpi/{V}/cdrs", headers=h, json=changed)
    assert r.status_code == 409 and "credit CDR" in r.json()["status_message"]
    broken = copy.deepcopy(CDR)
    broken["id"] = "BROKEN"
    del broken["currency"]
    r = c.post(f"/ocpi/{V}/cdrs", headers=h, json=broken)
    assert (
        r.status_code == 400 and r.json()["status_code"] == 2001 and "currency" in r.json()["status_message"]
    )
    r = c.post(f"/ocpi/{V}/cdrs", headers=h, content=b"not json")
    assert r.status_code == 400 and r.json()["status_code"] == 2001
    status = c.get("/v1/store").json()
    assert status["migrations_current"] and status["parties"]["NL*CPO"]["cdrs"] == 1
    assert status["parties"]["NL*CPO"]["refused"] == 2


def test_a_cdr_id_beyond_latin_1_gets_a_percent_encoded_location(setup) -> None:
    """The Location header is latin-1 bytes: an id with '€' was stored but answered 500 (a CPO
    would re-send it forever); now 201 with the id percent-encoded, and that URL finds the CDR."""
    c, _ = setup
    h = auth(handshake(c))
    odd = {**copy.deepcopy(CDR), "id": "ÄBC-ünï-€ 1"}
    r = c.post(f"/ocpi/{V}/cdrs", headers=h, json=odd)
    assert r.status_code == 201, r.text
    location = r.headers["location"]
    assert location.endswith(f"/ocpi/{V}/cdrs/NL/CPO/%C3%84BC-%C3%BCn%C3%AF-%E2%82%AC%201")
    assert c.get(location, headers=h).json()["data"]["id"] == odd["id"]
    assert c.post(f"/ocpi/{V}/cdrs", headers=h, json=odd).status_code == 200


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("put", "/ocpi/2.2.1/tariffs/NL/CPO/T1", TARIFF),
        ("patch", "/ocpi/2.2.1/tariffs/NL/CPO/T1", {"last_updated": "2024-03-01T00:00:00Z"}),
        ("get", "/ocpi/2.2.1/tariffs/NL/CPO/T1", None),
        ("delete", "/ocpi/2.2.1/tariffs/NL/CPO/T1", None),
        ("get", f"/ocpi/2.2.1/cdrs/NL/CPO/{CDR['id']}", None),
        ("post", "/ocpi/2.2.1/cdrs", CDR),
    ],
)
def test_a_token_reaches_only_its_own_party(setup, method: str, path: str, body: dict | None) -> None:
    c, _ = setup
    h = auth(handshake(c))
    c.put(TARIFF_URL, headers=h, json=TARIFF)
    c.post(f"/ocpi/{V}/cdrs", headers=h, json=CDR)
    intruder = auth("token-xyz")  # DE*XYZ
    r = c.request(method.upper(), path, headers=intruder, content=json.dumps(body) if body else None)
    assert r.status_code in (400, 403), r.text
    assert (
        "DE*XYZ" in r.json()["status_message"] or "not the party of this token" in r.json()["status_message"]
    )
    assert c.get(TARIFF_URL, headers=h).json()["data"]["currency"] == "EUR", "nothing of NL*CPO changed"
    assert c.get(f"/ocpi/{V}/cdrs/NL/CPO/{CDR['id']}", headers=h).status_code == 200


def test_the_month_received_is_settled_from_the_store(setup, tmp_path: Path) -> None:
    c, url = setup
    h = auth(handshake(c))
    assert c.put(TARIFF_URL, headers=h, json=TARIFF).status_code == 201
    assert c.post(f"/ocpi/{V}/cdrs", headers=h, json=CDR).status_code == 201
    out = tmp_path / "out"
    assert main(["settle", "--store", url, "--month", "2024-06", "--out", str(out)]) == 0
    statement = json.loads((out / "NL-CPO__DE-MSP__EUR" / "statement.json").read_text())
    assert [ln["cdr_id"] for ln in statement["lines"]] == [CDR["id"]]


def test_quotes_and_price_sheets_of_a_pushed_tariff(setup) -> None:
    c, _ = setup
    h = auth(handshake(c))
    assert c.put(TARIFF_URL, headers=h, json=TARIFF).status_code == 201
    sheet = c.get(f"/v1/tariffs/NL/CPO/{TARIFF['id']}/price-sheet", params={"locale": "nl_NL"})
    assert (
        sheet.status_code == 200
        and sheet.json() == c.post("/v1/price-sheet", json={"tariff": TARIFF, "locale": "nl_NL"}).json()
    )
    planned = {"start": "2024-06-03T10:00:00+02:00", "energy_kwh": "10", "power_kw": 11}
    by_ref = c.post(
        "/v1/quotes",
        json={"tariff_ref": {"country_code": "NL", "party_id": "CPO", "tariff_id": "T1"}, **planned},
    )
    inline = c.post("/v1/quotes", json={"tariff": TARIFF, **planned})
    assert by_ref.status_code == 200 and by_ref.json()["total"] == inline.json()["total"]
    missing = c.get("/v1/tariffs/NL/CPO/NOPE/price-sheet")
    assert missing.status_code == 404 and "no stored tariff NL/CPO/NOPE" in missing.json()["detail"]
    assert missing.headers["content-type"] == "application/problem+json"


def test_party_codes_in_the_url_are_case_insensitive(setup) -> None:
    """OCPI party codes are CiString: /tariffs/nl/cpo/T1 is NL*CPO's tariff. The trial got 400
    'belongs to NL*CPO, not to the sending party nl*cpo' on the PUT and 404 on GET …/cdrs/nl/cpo/…"""
    c, _ = setup
    h = auth(handshake(c))
    lower = f"/ocpi/{V}/tariffs/nl/cpo/{TARIFF['id']}"
    r = c.put(lower, headers=h, json=TARIFF)
    assert r.status_code == 201, r.text
    assert c.get(TARIFF_URL, headers=h).json()["data"]["id"] == TARIFF["id"], "held under NL*CPO"
    assert c.get(f"/ocpi/{V}/tariffs/Nl/cPo/{TARIFF['id']}", headers=h).status_code == 200
    assert c.post(f"/ocpi/{V}/cdrs", headers=h, json=CDR).status_code == 201
    r = c.get(f"/ocpi/{V}/cdrs/nl/cpo/{CDR['id']}", headers=h)
    assert r.status_code == 200 and r.json()["data"]["id"] == CDR["id"]
    r = c.get(f"/ocpi/{V}/cdrs/de/xyz/{CDR['id']}", headers=h)
    assert r.status_code == 403 and "DE*XYZ is not the party of this token" in r.json()["status_message"]
    assert c.get(f"/v1/tariffs/nl/cpo/{TARIFF['id']}/price-sheet").status_code == 200
    assert c.delete(lower, headers=h).status_code == 200


@pytest.mark.parametrize(
    "header, words",
    [
        (None, "missing Authorization header"),
        ("Bearer token-xyz", "OCPI does not take 'Authorization: Bearer'"),
        ("Basic dXNlcjpwdw==", "scheme 'Basic' is not OCPI's"),
        ("Token ", "no token after 'Token'"),
    ],
)
def test_an_authorization_header_ocpi_cannot_read_says_how_to_send_the_token(setup, header, words) -> None:
    """'Authorization: Bearer …' was answered 'missing Authorization header' (it was there)."""
    c, _ = setup
    headers = {"Authorization": header} if header else {}
    for r in (
        c.get(f"/ocpi/{V}/cdrs/NL/CPO/x", headers=headers),
        c.post(f"/ocpi/{V}/cdrs", headers=headers, json=CDR),
    ):
        message = r.json()["status_message"]
        assert r.status_code == 401 and words in message, message
        assert "Hint: OCPI sends 'Authorization: Token <token>'" in message


def register_as(c, version: str, token: str, method: str = "POST"):
    body = {"token": "their-b", "url": "https://cpo.example/ocpi/versions", "roles": []}
    return c.request(method, f"/ocpi/{version}/credentials", headers=auth(token), json=body)


def test_our_credentials_name_our_party_not_the_senders(setup) -> None:
    """The trial got roles [{"role": "EMSP", "country_code": "NL", "party_id": "MYC"}]: the CPO's
    own code labelled as our eMSP role. Ours is the settings' ocpi_party, per OCPI version."""
    c, _ = setup
    r = register_as(c, "2.2.1", "token-a-cpo")
    data = r.json()["data"]
    assert r.status_code == 200 and data["url"].endswith("/ocpi/versions")
    assert data["roles"] == [
        {
            "role": "EMSP",
            "business_details": {"name": "MSP Mobility"},
            "country_code": "DE",
            "party_id": "MSP",
        }
    ]
    r = register_as(c, "2.1.1", "token-xyz")  # 2.1.1: one party, no roles
    data = r.json()["data"]
    assert r.status_code == 200 and "roles" not in data
    assert (data["country_code"], data["party_id"], data["business_details"]) == (
        "DE",
        "MSP",
        {"name": "MSP Mobility"},
    )
    got = c.get("/ocpi/2.3.0/credentials", headers=auth(data["token"])).json()["data"]
    assert got["token"] == data["token"] and got["roles"][0]["party_id"] == "MSP", "GET: our credentials"


def test_credentials_post_once_put_to_update_delete_to_unregister(setup) -> None:
    """A second POST with token C returned a new token and invalidated C; OCPI: 405 (PUT updates)."""
    c, _ = setup
    token_c = handshake(c)
    r = register_as(c, V, token_c)
    assert r.status_code == 405 and r.json()["status_code"] == 2000
    assert "already registered" in r.json()["status_message"] and "PUT" in r.json()["status_message"]
    assert c.get("/ocpi/versions", headers=auth(token_c)).status_code == 200, "token C still works"
    r = register_as(c, V, base64.b64encode(token_c.encode()).decode(), "PUT")  # 2.2.1 base64 token
    assert r.status_code == 200, r.text
    token_c2 = r.json()["data"]["token"]
    assert token_c2 != token_c and r.json()["data"]["roles"][0]["country_code"] == "DE"
    old = c.get("/ocpi/versions", headers=auth(token_c))
    assert old.status_code == 401 and "token A" not in old.json()["status_message"].split(":")[0]
    assert "replaced by a credentials update" in old.json()["status_message"]
    r = register_as(c, V, token_c)  # the old token C at the credentials module
    assert r.status_code == 401 and r.json()["status_message"].startswith("unknown token: neither")
    assert c.put(TARIFF_URL, headers=auth(token_c2), json=TARIFF).status_code == 201
    assert c.post(f"/ocpi/{V}/cdrs", headers=auth(token_c2), json=CDR).status_code == 201, "cached token"
    assert c.delete(f"/ocpi/{V}/credentials", headers=auth(token_c2)).status_code == 200
    for r in (
        c.get("/ocpi/versions", headers=auth(token_c2)),
        c.post(f"/ocpi/{V}/cdrs", headers=auth(token_c2), json=CDR),
        c.delete(f"/ocpi/{V}/credentials", headers=auth(token_c2)),
    ):
        assert r.status_code == 401 and "unknown token" in r.json()["status_message"], r.text
    assert c.get(TARIFF_URL, headers=auth("token-xyz")).status_code == 403, "what it sent stays"


def test_put_or_delete_before_registering_is_405(setup) -> None:
    c, _ = setup
    for method in ("PUT", "DELETE"):
        r = c.request(
            method, f"/ocpi/{V}/credentials", headers=auth("token-a-cpo"), json={"token": "b", "url": "u"}
        )
        assert r.status_code == 405 and "not registered yet" in r.json()["status_message"], method
    assert handshake(c), "token A still registers"
    r = c.post(f"/ocpi/{V}/credentials", headers=auth("token-xyz"), json={"url": "x"})
    assert r.status_code == 400 and "'token'" in r.json()["status_message"]
    assert handshake(c, "token-xyz"), "a refused body does not spend token A"


def test_credentials_without_our_party_configured_say_so(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = Store(url)
    store.add_party("NL", "CPO", "CPO", "token-a-cpo")
    store.close()
    c = client(store_url=url)
    r = register_as(c, V, "token-a-cpo")
    assert r.status_code == 503 and "ROAMLEDGER_OCPI_PARTY" in r.json()["status_message"]
    assert c.get("/ocpi/versions", headers=auth("token-a-cpo")).status_code == 200, "token A not spent"


def test_an_unregistered_party_registers_again_with_a_new_token_a(setup, capsys) -> None:
    c, url = setup
    token_c = handshake(c)
    assert c.delete(f"/ocpi/{V}/credentials", headers=auth(token_c)).status_code == 200
    assert main(["party", "token", "nl*cpo", "--store", url]) == 0
    token_a = capsys.readouterr().out.strip().rsplit(" ", 1)[-1]
    assert c.get("/ocpi/versions", headers=auth(token_a)).status_code == 200
    assert handshake(c, token_a), "registers again"
    assert main(["party", "token", "NL*NOP", "--store", url]) == 2
    assert "not a party of this store" in capsys.readouterr().err
