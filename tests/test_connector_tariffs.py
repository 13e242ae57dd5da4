"""An OCPI 2.1.1 CDR names its tariff through its connectors (``location.evses[].connectors[]
.tariff_id``). With tariffs given, a CDR whose connectors name none of them is TARIFF_NOT_FOUND:
it is never priced with the only tariff given (another CPO's DC tariff, say). A CDR that names no
tariff at all keeps the implicit rule; without tariffs given its own embedded tariffs price it."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pyarrow as pa
import pytest
from test_price_cli import CDR_211

from api.cli import main
from settlement.store.read import connector_tariffs

OTHER_DC = {  # a 2.1.1 tariff (no party in 2.1.1) the CDRs' connectors do not name
    "id": "DC-9",
    "currency": "EUR",
    "elements": [{"price_components": [{"type": "ENERGY", "price": "0.79", "step_size": 1}]}],
}


def connectors(*ids: str | None) -> dict:
    c = copy.deepcopy(CDR_211)
    c["id"] = "-".join(i or "none" for i in ids)
    conns = [{"id": str(k), **({"tariff_id": i} if i else {})} for k, i in enumerate(ids)]
    c["location"]["evses"] = [{"uid": "E1", "connectors": conns}]
    return c


def price(tmp_path: Path, cdrs: list[dict], args: list[str]) -> tuple[dict, dict]:
    src = tmp_path / "cdrs.ndjson"
    src.write_text("".join(json.dumps(c) + "\n" for c in cdrs))
    out = tmp_path / f"o{len(list(tmp_path.iterdir()))}.ndjson"
    assert main(["price", *args, "--tz", "Europe/Brussels", "--out", str(out), str(src)]) == 0
    rows = {r["cdr_id"]: r["tariff_id"] for r in map(json.loads, out.read_text().splitlines())}
    rejects = Path(f"{out}.rejects.ndjson").read_text().splitlines()
    return rows, {r["record_id"]: r for r in map(json.loads, rejects)}


@pytest.mark.parametrize("engine", [["--engine", "reference"], ["--engine", "kernel", "--explain"]])
def test_connectors_naming_no_given_tariff_are_tariff_not_found(tmp_path: Path, engine: list[str]) -> None:
    tariffs = tmp_path / "dc.json"
    tariffs.write_text(json.dumps(OTHER_DC))
    cdrs = [CDR_211, connectors("11", "13"), connectors(None), connectors("13", "DC-9")]
    rows, rejects = price(tmp_path, cdrs, [*engine, "--tariffs", str(tariffs)])
    assert rows == {"none": "DC-9", "13-DC-9": "DC-9"}
    assert {k: r["code"] for k, r in rejects.items()} == dict.fromkeys(["12345", "11-13"], "TARIFF_NOT_FOUND")
    assert "tariff '11' is not among the tariffs given" in rejects["11-13"]["message"]
    assert "--tariffs" in rejects["11-13"]["message"]
    # without tariffs given, the CDR's own embedded tariff (id 12) prices it, whatever its
    # connector names (the spec's own example)
    rows, rejects = price(tmp_path, [CDR_211], engine)
    assert (rows, rejects) == ({"12345": "12"}, {})


def test_the_store_reader_names_the_same_tariff() -> None:
    """The settlement store resolves the connectors' ids into the periods' tariff_id alike."""
    ids = pa.array(['["11","13"]', '["11","13"]', None], pa.string())
    period_tariff = pa.array([None, "X", None], pa.string())
    picks = [
        connector_tariffs(period_tariff, ids, frozenset(known)).to_pylist()
        for known in ({"DC-9"}, {"13", "DC-9"}, set())
    ]
    assert picks == [["11", "X", None], ["13", "X", None], [None, "X", None]]
