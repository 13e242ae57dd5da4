"""CDR POSTs answered in front of the router (``api.http.cdr_posts``) answer exactly as the route
behind it: every outcome of a push, every refusal, and requests that only look like a CDR POST,
sent in the same order to a service with and without the middleware (each on its own store)."""

from __future__ import annotations

import base64
import copy
import json
import sqlite3
from concurrent.futures import Future
from pathlib import Path

import pytest
from test_price_cli import CDR

from api.http import Settings, cdr_posts, create_app
from api.http.routers import ocpi
from settlement.store import Store
from settlement.store.pushes import NotStored

from .client import TestClient

OTHER = {**CDR, "id": "OTHER-1", "country_code": "DE", "party_id": "XYZ"}
CHANGED = {**CDR, "total_cost": {"excl_vat": 9, "incl_vat": 10.89}}
BROKEN = {k: v for k, v in CDR.items() if k != "currency"} | {"id": "BROKEN"}
TOKEN = {"Authorization": "Token token-cpo"}
# (method, path, headers, body): each request once to each service, in this order
REQUESTS = [
    ("POST", "/ocpi/2.2.1/cdrs", TOKEN, json.dumps(CDR).encode()),  # 201
    ("POST", "/ocpi/2.2.1/cdrs", TOKEN, json.dumps(CDR).encode()),  # 200 the same again
    (
        "POST",
        "/ocpi/2.3.0/cdrs",
        {"Authorization": "Token " + base64.b64encode(b"token-cpo").decode()},
        b"\xef\xbb\xbf" + json.dumps(CDR).encode() + b"\n",
    ),  # 200: base64 token, BOM and newline
    ("POST", "/ocpi/2.2.1/cdrs", TOKEN, json.dumps(CHANGED).encode()),  # 409
    ("POST", "/ocpi/2.2.1/cdrs", TOKEN, json.dumps(BROKEN).encode()),  # 400 refused
    ("POST", "/ocpi/2.2.1/cdrs", TOKEN, json.dumps(OTHER).encode()),  # 400 another party's CDR
    ("POST", "/ocpi/2.2.1/cdrs", TOKEN, b"not json"),  # 400
    ("POST", "/ocpi/2.2.1/cdrs", TOKEN, b"[1, 2]"),  # 400
    ("POST", "/ocpi/2.2.1/cdrs", TOKEN, b""),  # 400
    ("POST", "/ocpi/2.2.1/cdrs", {}, json.dumps(CDR).encode()),  # 401 no token
    ("POST", "/ocpi/2.2.1/cdrs", {"Authorization": "Bearer token-cpo"}, json.dumps(CDR).encode()),  # 401
    ("POST", "/ocpi/2.2.1/cdrs", {"Authorization": "Token nobody"}, json.dumps(CDR).encode()),  # 401
    ("POST", "/ocpi/9.9/cdrs", TOKEN, json.dumps(CDR).encode()),  # 404 version
    ("POST", "/ocpi/2.2.1/cdrs/", TOKEN, json.dumps(CDR).encode()),  # the router's answer
    ("POST", "/ocpi/2.2.1/cdrs/NL/CPO/x", TOKEN, json.dumps(CDR).encode()),  # 405 by the router
    ("GET", "/ocpi/2.2.1/cdrs", TOKEN, None),  # 405 by the router
    ("GET", f"/ocpi/2.2.1/cdrs/NL/CPO/{CDR['id']}", TOKEN, None),  # the stored CDR as it was sent
    ("POST", "/ocpi/2.2.1/cdrs", TOKEN, iter([b" "] * 3000)),  # chunked, over the limit: 413
]


def service(tmp_path: Path, cdr_posts: bool, store: bool = True) -> TestClient:
    url = None
    if store:
        url = f"sqlite:///{tmp_path / f'store_{cdr_posts}.db'}"
        s = Store(url)
        s.add_party("NL", "CPO", "CPO", "token-cpo")
        s.add_party("DE", "XYZ", "CPO", "token-xyz")
        s.close()
    app = create_app(Settings(store_url=url, max_body_bytes=2048), cdr_posts=cdr_posts)
    return TestClient(app, raise_server_exceptions=False)


def answer(c: TestClient, method: str, path: str, headers: dict[str, str], body) -> tuple:
    r = c.request(method, path, headers=headers, content=copy.copy(body), follow_redirects=False)
    doc = r.json() if r.content else None
    if isinstance(doc, dict):
        doc.pop("timestamp", None)
    return r.status_code, r.headers.get("content-type"), r.headers.get("location"), doc


def test_the_middleware_answers_as_the_route(tmp_path: Path, monkeypatch) -> None:
    served = []  # the POSTs the middleware answered itself

    async def counted(*args):
        served.append(args[-1])
        return await ocpi.push_cdr(*args)

    monkeypatch.setattr(cdr_posts, "push_cdr", counted)
    fast, routed = service(tmp_path, True), service(tmp_path, False)
    got = []
    for method, path, headers, body in REQUESTS:
        if not isinstance(body, bytes | None):
            body = [b" "] * 3000  # a fresh iterator per service
            answers = [answer(c, method, path, headers, iter(body)) for c in (fast, routed)]
        else:
            answers = [answer(c, method, path, headers, body) for c in (fast, routed)]
        assert answers[0] == answers[1], (method, path, body)
        got.append(answers[0][0])
    assert served == ["/ocpi/2.2.1/cdrs"] * 2 + ["/ocpi/2.3.0/cdrs"] + ["/ocpi/2.2.1/cdrs"] * 9 + [
        "/ocpi/9.9/cdrs"
    ]
    assert got == [201, 200, 200, 409, 400, 400, 400, 400, 400, 401, 401, 401, 404, 307, 405, 405, 200, 413]
    # the same ingest log: the CDR, the re-sends, the conflict and the two refused CDRs (bad JSON
    # and bad tokens are not logged), with the same messages and routes
    logs = [ingest_log(tmp_path / f"store_{on}.db") for on in (True, False)]
    assert logs[0] == logs[1]
    assert [row[1] for row in logs[0]] == [
        "stored",
        "duplicate",
        "duplicate",
        "conflict",
        "rejected",
        "rejected",
    ]


def ingest_log(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT object_id, outcome, message, source FROM ingest_log WHERE kind = 'cdr' ORDER BY id"
        ).fetchall()


def test_no_store_is_503_on_both(tmp_path: Path) -> None:
    answers = [
        answer(
            service(tmp_path, on, store=False), "POST", "/ocpi/2.2.1/cdrs", TOKEN, json.dumps(CDR).encode()
        )
        for on in (True, False)
    ]
    assert answers[0] == answers[1] and answers[0][0] == 503 and answers[0][3]["status_code"] == 3000


@pytest.mark.parametrize(
    "failure", [NotStored("the database failed. Hint: send it again"), KeyError("secret internals")]
)
def test_a_failed_write_is_answered_as_the_route_does(tmp_path: Path, monkeypatch, failure) -> None:
    def failing(self, pushes, answered=None):
        futures = [Future() for _ in pushes]
        for done in futures:
            done.set_exception(failure)
        if answered is not None:
            answered(futures)
        return futures

    monkeypatch.setattr(
        ocpi.Store,
        "pushes",
        property(
            lambda self: type(
                "P",
                (),
                {
                    "cached_party": lambda _, t: None,
                    "remember": lambda _, t, p, m: (p, m),
                    "submit_all": failing,
                },
            )()
        ),
    )
    answers = [
        answer(service(tmp_path, on), "POST", "/ocpi/2.2.1/cdrs", TOKEN, json.dumps(CDR).encode())
        for on in (True, False)
    ]
    assert answers[0] == answers[1], answers
    assert answers[0][0] == (503 if isinstance(failure, NotStored) else 500)
    assert "secret" not in json.dumps(answers[0][3])
