"""``POST /v1/settlements`` with contract terms (the new-user trial, session 5): the ``contracts``
object is the contracts file's document, validated as the file is (422 problem+json naming the
field), kept with the run, and the run's statements are those ``settle --store --contracts``
writes (a stored 2.1.1 CDR settles under the CPO it is held under)."""

from __future__ import annotations

import json
from pathlib import Path

from test_store import url  # noqa: F401  (the per-test SQLite / PostgreSQL store fixture)
from test_store_contracts import FOLDER, import_trial

from api.cli import main

from .client import client
from .test_settlements import settle_via_api


def test_post_settlements_takes_contracts(url: str, tmp_path: Path) -> None:  # noqa: F811
    d = import_trial(url, tmp_path)
    contracts = json.loads((d / "contracts.json").read_text())
    c = client(store_url=url)
    doc = settle_via_api(c, {"month": "2026-11", "contracts": contracts})
    assert c.get(doc["href"]).json()["options"]["contracts"] == contracts
    out = tmp_path / "cli"
    cli = ["settle", "--store", url, "--month", "2026-11", "--contracts", str(d / "contracts.json")]
    assert main([*cli, "--out", str(out)]) == 0
    st = next(s for s in doc["statements"] if (s["cpo"], s["emsp"]) == ("NL*ABC", "DE*MSP"))
    for accept, name in (("text/csv", "lines.csv"), ("application/json", "statement.json")):
        r = c.get(st["href"], headers={"Accept": accept})
        assert r.status_code == 200 and r.content == (out / FOLDER / name).read_bytes(), name
    assert b"ABC211-C1" in (out / FOLDER / "lines.csv").read_bytes()


def test_post_settlements_refuses_bad_contracts(url: str, tmp_path: Path) -> None:  # noqa: F811
    import_trial(url, tmp_path)
    c = client(store_url=url)
    r = c.post("/v1/settlements", json={"month": "2026-11", "contracts": {"default": {"tolerance": "x"}}})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert "default.tolerance" in r.json()["detail"]
    r = c.post("/v1/settlements", json={"month": "2026-11", "contracts": ["not", "an", "object"]})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert c.get("/v1/settlements").json()["runs"] == []  # nothing queued
