"""Settlement over the store (issue 12, items 3 and 4) on SQLite and PostgreSQL: POST → poll → GET in
three formats equals the CLI's statement bytes; closing a month makes its statements final and
refuses to settle it again; a CDR that arrives after the close lands on the next open month exactly
once, as a late line with its LATE_CDR finding; a run whose server stopped is not left running;
health reports the store and its migrations."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import update
from test_price_cli import CDR, TARIFF
from test_settle_columnar import UNPRICEABLE_230
from test_store import url  # noqa: F401  (the per-test SQLite / PostgreSQL store fixture)

from api.cli import main
from settlement.rules import ALREADY_SETTLED, LATE_CDR
from settlement.runs import execute_run, queue_run
from settlement.store import Store, alembic_config, now_ms
from settlement.store.months import STALE_MS, get_run, mark_interrupted
from settlement.store.schema import settlement_runs

from .client import client

ACCEPT = {"json": "application/json", "csv": "text/csv", "html": "text/html"}
FILES = {"json": "statement.json", "csv": "lines.csv", "html": "statement.html"}


def wait_done(c, location: str) -> dict:
    """Poll a run until it is done or failed (the worker thread settles it)."""
    for _ in range(1200):
        doc = c.get(location).json()
        if doc["status"] in ("done", "failed"):
            return doc
        time.sleep(0.1)
    raise AssertionError(f"run {location} never finished: {doc}")


def settle_via_api(c, body: dict) -> dict:
    r = c.post("/v1/settlements", json=body)
    assert r.status_code == 202, r.text
    assert r.json()["status"] in ("queued", "running", "done")
    doc = wait_done(c, r.headers["Location"])
    assert doc["status"] == "done", doc
    return doc


def cdr(cdr_id: str, day: int, month: int = 6) -> dict:
    c = copy.deepcopy(CDR)
    c["id"] = cdr_id
    c["start_date_time"] = f"2024-{month:02d}-{day:02d}T08:00:00Z"
    c["end_date_time"] = f"2024-{month:02d}-{day:02d}T09:00:00Z"
    return c


def test_api_round_trip_equals_the_cli(url: str, tmp_path: Path) -> None:  # noqa: F811
    month = tmp_path / "m"
    assert main(
        [
            "generate", "--cdrs", "300", "--seed", "7", "--versions", "2.2.1:50,2.3.0:50",
            "--duplicate-rate", "0.01", "--out-of-month-rate", "0", "--credit-rate", "0.02", "--quiet",
            "--out", str(month / "m.ndjson"),
        ]
    ) == 0  # fmt: skip
    assert main(["import", "--store", url, "--tariffs", str(month / "tariffs"), str(month / "m.ndjson")]) == 0
    c = client(store_url=url)
    options = {"month": "2026-10", "locale": "fr_FR", "tz": "Europe/Paris", "basis": "recomputed"}
    doc = settle_via_api(c, options)
    out = tmp_path / "cli"
    cli = ["settle", "--store", url, "--month", "2026-10", "--locale", "fr_FR", "--tz", "Europe/Paris"]
    assert main([*cli, "--basis", "recomputed", "--out", str(out)]) == 0
    folders = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert len(doc["statements"]) == len(folders) > 1
    for st in doc["statements"]:
        folder = f"{st['cpo'].replace('*', '-')}__{st['emsp'].replace('*', '-')}__{st['currency']}"
        for fmt, accept in ACCEPT.items():
            r = c.get(st["href"], headers={"Accept": accept})
            assert r.status_code == 200 and r.headers["content-type"].startswith(accept)
            assert r.content == (out / folder / FILES[fmt]).read_bytes(), (folder, fmt)
    manifest = json.loads((out / "manifest.json").read_text())
    assert doc["counts"] == manifest["counts"]
    run = doc["href"]
    as_csv = c.get(run, headers={"Accept": "text/csv"})
    assert as_csv.status_code == 200 and len(as_csv.text.splitlines()) == len(folders) + 1
    as_html = c.get(run, headers={"Accept": "text/html;q=0.9, image/png;q=0.1"})
    assert as_html.status_code == 200 and "<table>" in as_html.text
    refused = c.get(run, headers={"Accept": "image/png"})
    assert refused.status_code == 406 and refused.headers["content-type"] == "application/problem+json"
    assert "text/csv" in refused.json()["detail"]
    assert [r["id"] for r in c.get("/v1/settlements", params={"month": "2026-10"}).json()["runs"]] == [
        doc["id"]
    ]
    # only one pair's statements
    st = doc["statements"][0]
    one = settle_via_api(c, options | {"cpo": st["cpo"], "emsp": st["emsp"]})
    assert {(s["cpo"], s["emsp"]) for s in one["statements"]} == {(st["cpo"], st["emsp"])}
    assert c.get(one["statements"][0]["href"]).content == c.get(st["href"]).content


def test_closing_a_month_and_a_late_cdr(url: str, tmp_path: Path, capsys) -> None:  # noqa: F811
    store = Store(url)
    store.put_tariff(TARIFF, "NL", "CPO")
    store.add_cdr(cdr("JUNE-1", 3), "NL", "CPO")
    c = client(store_url=url)
    june = settle_via_api(c, {"month": "2024-06"})
    href = june["statements"][0]["href"]
    june_bytes = {fmt: c.get(href, headers={"Accept": a}).content for fmt, a in ACCEPT.items()}

    closed = c.post("/v1/months/2024-06/close")
    assert closed.status_code == 200 and closed.json()["run_id"] == june["id"]
    assert c.get(june["href"]).json()["final"] is True
    again = c.post("/v1/settlements", json={"month": "2024-06"})
    assert again.status_code == 409 and "2024-06 is closed" in again.json()["detail"]
    assert c.post("/v1/months/2024-06/close").status_code == 409
    assert main(["settle", "--store", url, "--month", "2024-06", "--out", str(tmp_path / "x")]) == 2
    assert "2024-06 is closed" in capsys.readouterr().err

    # a CDR of June arrives after the close: it goes on July, as a late line
    store.add_cdr(cdr("JUNE-LATE", 20), "NL", "CPO")
    credit = cdr("JUNE-1-C", 3)  # a credit of a CDR settled in June: nets it from July
    credit |= {"credit": True, "credit_reference_id": "JUNE-1"}
    credit["total_cost"] = {k: -v for k, v in credit["total_cost"].items()}
    store.add_cdr(credit, "NL", "CPO")
    store.add_cdr(cdr("JULY-1", 2, 7), "NL", "CPO")
    july = settle_via_api(c, {"month": "2024-07"})
    out = tmp_path / "july"
    assert main(["settle", "--store", url, "--month", "2024-07", "--out", str(out)]) == 0
    folder = next(p for p in out.iterdir() if p.is_dir())
    # the columnar engine (default) and the record engine (the oracle) write the same month
    local = tmp_path / "july-local"
    assert (
        main(["settle", "--store", url, "--month", "2024-07", "--engine", "local", "--out", str(local)]) == 0
    )
    written = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert written == sorted(p.relative_to(local) for p in local.rglob("*") if p.is_file())
    for name in written:
        if name.name != "manifest.json":
            assert (out / name).read_bytes() == (local / name).read_bytes(), name
    # JULY-1 embeds its tariff (held raw); the two late CDRs of June go record by record
    record_path = json.loads((out / "manifest.json").read_text())["record_path"]
    assert record_path == {"held without kernel columns": 1, "late CDR": 2}
    doc = json.loads(c.get(july["statements"][0]["href"]).content)
    assert sorted(ln["cdr_id"] for ln in doc["lines"]) == ["JULY-1", "JUNE-1-C", "JUNE-LATE"]
    assert not doc["disputed"], "the late credit found its original in June's final run"
    late = next(ln for ln in doc["lines"] if ln["cdr_id"] == "JUNE-LATE")
    assert LATE_CDR in late["reasons"].split(",")
    findings = [json.loads(x) for x in (out / "findings.ndjson").read_text().splitlines()]
    assert sorted(f["cdr_id"] for f in findings if f["code"] == LATE_CDR) == ["JUNE-1-C", "JUNE-LATE"]
    assert "2024-06, a month already closed" in next(f["message"] for f in findings if f["code"] == LATE_CDR)
    for fmt, accept in ACCEPT.items():
        got = c.get(july["statements"][0]["href"], headers={"Accept": accept}).content
        assert got == (folder / FILES[fmt]).read_bytes(), fmt
    assert "late CDR: the session ended in 2024-06" in (folder / "statement.html").read_text()
    # June stays as it was closed
    for fmt, a in ACCEPT.items():
        assert c.get(href, headers={"Accept": a}).content == june_bytes[fmt]

    # a run that missed a CDR that arrived after it cannot be the final run
    store.add_cdr(cdr("JULY-2", 9, 7), "NL", "CPO")
    stale = c.post("/v1/months/2024-07/close", json={"run_id": july["id"]})
    assert stale.status_code == 409 and "1 CDRs of 2024-07 arrived after run" in stale.json()["detail"]
    july2 = settle_via_api(c, {"month": "2024-07"})
    assert c.post("/v1/months/2024-07/close", json={"run_id": july2["id"]}).status_code == 200

    # the late CDR was settled once: August (now the next open month) does not take it again
    store.add_cdr(cdr("AUG-1", 5, 8), "NL", "CPO")
    assert main(["close", "--store", url, "--month", "2024-08", "--settle"]) == 0
    assert "closed 2024-08 with run" in capsys.readouterr().out
    months = c.get("/v1/months").json()["closed"]
    assert [m["month"] for m in months] == ["2024-06", "2024-07", "2024-08"]
    aug = c.get(months[-1]["href"]).json()
    aug_doc = json.loads(c.get(aug["statements"][0]["href"]).content)
    assert [ln["cdr_id"] for ln in aug_doc["lines"]] == ["AUG-1"]
    assert main(["close", "--store", url, "--month", "2024-08"]) == 2
    assert "2024-08 is closed" in capsys.readouterr().err
    store.close()


def test_bad_requests_are_clear_problems(tmp_path: Path) -> None:
    c = client(store_url=f"sqlite:///{tmp_path / 'store.db'}")
    for body, words in [
        ({"month": "2026-13"}, "month"),
        ({"month": "0000-01"}, "YYYY-MM"),
        ({"month": "2026-10", "tz": "Mars/Olympus"}, "unknown time zone"),
        ({"month": "2026-10", "locale": "xx_QQ"}, "unknown locale"),
        ({"month": "2026-10", "cpo": "nl-cpo"}, "cpo"),
    ]:
        r = c.post("/v1/settlements", json=body)
        assert r.status_code == 422 and words in r.json()["detail"], (body, r.text)
    assert c.get("/v1/settlements/999").status_code == 404
    assert c.get(f"/v1/settlements/{2**40}").status_code == 422
    assert c.get("/v1/settlements/999/statements/NL*CPO/DE*MSP/EUR").status_code == 404
    assert c.post("/v1/months/2026-10/close", json={"run_id": 999}).status_code == 404
    r = c.post("/v1/months/2026-1x/close")
    assert r.status_code == 422 and "YYYY-MM" in r.json()["detail"]
    r = c.post("/v1/months/2026-10/close")
    assert r.status_code == 409 and "no done settlement run of 2026-10" in r.json()["detail"]
    assert client().post("/v1/settlements", json={"month": "2026-10"}).status_code == 422


def test_a_body_not_sent_as_json_is_asked_for_as_json(tmp_path: Path) -> None:
    """content-type: text/plain was answered 422 'Input should be a valid dictionary'."""
    c = client(store_url=f"sqlite:///{tmp_path / 'store.db'}")
    for path in ("/v1/settlements", "/v1/quotes"):
        r = c.post(path, content=b'{"month": "2026-10"}', headers={"content-type": "text/plain"})
        assert r.status_code == 415 and r.headers["content-type"] == "application/problem+json", r.text
        assert "sent as 'text/plain'" in r.json()["detail"]
        assert "content-type: application/json" in r.json()["detail"]
    r = c.post(
        "/v1/settlements", content=b'{"month": "2026-13"}', headers={"content-type": "application/json"}
    )
    assert r.status_code == 422, "a JSON body is validated as before"


def test_a_run_whose_server_stopped_is_failed_not_running(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    run_id = queue_run(store, "2026-10")
    with store.engine.begin() as conn:
        conn.execute(update(settlement_runs).values(status="running"))
    assert get_run(store, run_id).status == "running", "alive: its heartbeat is recent"
    assert mark_interrupted(store, now_ms() + STALE_MS + 1) == 1
    run = get_run(store, run_id)
    assert run.status == "failed" and run.message.startswith("interrupted: the server stopped")
    store.close()


def test_health_reports_the_store(tmp_path: Path) -> None:
    c = client(store_url=f"sqlite:///{tmp_path / 'store.db'}")
    store = c.app.state.store
    store.add_party("NL", "CPO", "CPO", "tok")
    store.add_cdr(CDR, "NL", "CPO")
    changed = copy.deepcopy(CDR)
    changed["total_energy"] = 99
    with pytest.raises(Exception, match="a different CDR"):
        store.add_cdr(changed, "NL", "CPO")
    r = c.get("/v1/health")
    body = r.json()
    assert r.status_code == 200 and body["status"] == "ok"
    assert body["store"]["migrations_current"] and body["store"]["revision"] == body["store"]["head"]
    assert "parties" not in body["store"], "a probe does not count the CDR table"
    party = c.get("/v1/store").json()["parties"]["NL*CPO"]
    assert party["cdrs"] == 1 and party["last_ingest"].endswith("+00:00")
    assert party["recent_refusals"][0]["outcome"] == "conflict"
    assert "a different CDR" in party["recent_refusals"][0]["message"]
    with store.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0001")
    behind = c.get("/v1/health")
    assert behind.status_code == 503 and behind.json()["store"]["migrations_current"] is False
    assert c.get("/v1/store").status_code == 503
    c.app.state.store = Store("postgresql+psycopg://postgres@127.0.0.1:1/none", migrate=False)
    down = c.get("/v1/health")
    assert down.status_code == 503 and down.json()["store"]["reachable"] is False


def test_openapi_documents_the_settlement_routes() -> None:
    schema = client().get("/openapi.json").json()
    assert {"/v1/settlements", "/v1/settlements/{run_id}", "/v1/months/{month}/close"} <= set(schema["paths"])
    for name in ("SettlementIn", "CloseIn"):
        assert schema["components"]["schemas"][name]["examples"], name


def test_a_month_whose_230_cdrs_cannot_be_priced_settles(url: str, tmp_path: Path) -> None:  # noqa: F811
    """One 2.3.0 CDR with taxes and a tariff id the store does not hold, pushed for December: the
    run is done with the CDR excluded and its finding (it failed with "internal error (SchemaError
    … failed to vstack column 'pct')" on the columnar engine)."""
    c230 = copy.deepcopy(UNPRICEABLE_230)
    c230["id"] = "DEC-230"
    for k in ("start_date_time", "end_date_time", "last_updated"):
        c230[k] = c230[k].replace("2026-10-15", "2026-12-01")
    c230["charging_periods"][0]["start_date_time"] = c230["start_date_time"]
    f = tmp_path / "dec230.json"
    f.write_text(json.dumps(c230))
    assert main(["import", "--store", url, str(f)]) == 0
    doc = settle_via_api(client(store_url=url), {"month": "2026-12"})
    assert doc["counts"]["excluded"] == 1, doc


def test_a_cdr_on_a_closed_months_statement_is_never_settled_again(url: str, tmp_path: Path, capsys) -> None:  # noqa: F811
    """EDGE ended 2024-06-30T23:30Z: June in UTC, July in Amsterdam. June is closed in UTC (EDGE on
    its final statement); a July run (Amsterdam) reads EDGE again: it is excluded with an
    ALREADY_SETTLED finding, never settled twice, and July can be closed. A July run made before
    June was closed (it settled EDGE) is refused as the final run, saying why (it was refused
    as "2024-07 was closed by another request" after July's statement had settled EDGE again)."""
    store = Store(url)
    store.put_tariff(TARIFF, "NL", "CPO")
    edge = cdr("EDGE", 30)
    edge["start_date_time"] = edge["charging_periods"][0]["start_date_time"] = "2024-06-30T22:30:00Z"
    edge["end_date_time"] = "2024-06-30T23:30:00Z"
    store.add_cdr(edge, "NL", "CPO")
    store.add_cdr(cdr("JULY-1", 2, 7), "NL", "CPO")
    ams = ["--tz", "Europe/Amsterdam"]
    early = queue_run(store, "2024-07", tz="Europe/Amsterdam")  # settles EDGE: June is open
    assert execute_run(store, early) == "done"
    assert main(["close", "--store", url, "--month", "2024-06", "--settle", "--tz", "UTC"]) == 0
    assert main(["close", "--store", url, "--month", "2024-07", "--run", str(early)]) == 2
    err = capsys.readouterr().err
    assert f"run {early} settled 1 CDRs that are on the final statement of another closed month" in err
    assert "'EDGE', final in 2024-06" in err and "closed by another request" not in err

    runs = {}
    for engine in ("columnar", "local"):
        runs[engine] = tmp_path / engine
        args = ["settle", "--store", url, "--month", "2024-07", *ams, "--engine", engine]
        assert main([*args, "--out", str(runs[engine])]) == 0
    for p in sorted(runs["local"].rglob("*")):
        if p.is_file() and p.name != "manifest.json":
            assert p.read_bytes() == (runs["columnar"] / p.relative_to(runs["local"])).read_bytes(), p
    out = runs["columnar"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"] == {"read": 2, "settled": 1, "excluded": 1, "rejected": 0, "out_of_month": 0}
    findings = [json.loads(x) for x in (out / "findings.ndjson").read_text().splitlines()]
    settled = [f for f in findings if f["code"] == ALREADY_SETTLED]
    assert [f["cdr_id"] for f in settled] == ["EDGE"]
    assert "final statement of 2024-06" in settled[0]["message"]
    lines = [
        ln["cdr_id"] for st in out.glob("*/statement.json") for ln in json.loads(st.read_text())["lines"]
    ]
    assert lines == ["JULY-1"]

    assert main(["close", "--store", url, "--month", "2024-07", "--settle", *ams]) == 0
    c = client(store_url=url)
    assert [m["month"] for m in c.get("/v1/months").json()["closed"]] == ["2024-06", "2024-07"]
    store.close()
