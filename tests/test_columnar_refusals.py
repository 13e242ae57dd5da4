"""CDRs the kernel refuses, read by the columnar reader: only they go the per-record path (same
output), counted the same whether the file is priced in one piece or in spans on 1 or 2
processes (was: the whole file went per record on one process, its memory growing with it)."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path

import pytest
from test_columnar_shapes import SAMPLE, check, dump, records, same_result, write

from pricing.batch import load_tariffs, price_ndjson_columnar
from pricing.compile import MAX_ELEMENTS
from pricing.ndjson_parallel import price_ndjson_spans, spans
from pricing.policy import CDR_POLICY

UNCOMPILABLE = "VLT-AC-221"  # given more elements than the kernel's tables hold
BIG = "BIG-PRICE"  # 10^6 EUR per kWh: 1000 kWh leave the kernel's int64, 1 Wh does not


def tariffs_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "tariffs"
    folder.mkdir()
    for src in (SAMPLE / "tariffs").glob("*-221.json"):
        tariff = json.loads(src.read_text(), parse_float=Decimal)
        if tariff["id"] == UNCOMPILABLE:
            extra = {"price_components": [{"type": "ENERGY", "price": Decimal("0.5"), "step_size": 1}]}
            tariff["elements"] = [*tariff["elements"], *[extra] * MAX_ELEMENTS]
        (folder / src.name).write_text(dump(tariff))
    big = json.loads((SAMPLE / "tariffs" / "ECO-AC-221.json").read_text(), parse_float=Decimal)
    big["id"] = BIG
    big["elements"] = [{"price_components": [{"type": "ENERGY", "price": Decimal(1000000), "step_size": 1}]}]
    (folder / "big.json").write_text(dump(big))
    return folder


def month(tmp_path: Path) -> tuple[Path, int]:
    """Sample CDRs, two of them on the BIG tariff (one overflows); and how many use UNCOMPILABLE."""
    cdrs = records("cdrs.ndjson", 400)
    eco = [k for k, c in enumerate(cdrs) if c["party_id"] == "ECO" and not c.get("credit")]
    for k, kwh in ((eco[5], "1000"), (eco[-5], "0.001")):
        c = cdrs[k] = copy.deepcopy(cdrs[k])
        c["charging_periods"] = c["charging_periods"][:1]
        c["charging_periods"][0]["tariff_id"] = BIG
        c["charging_periods"][0]["dimensions"] = [{"type": "ENERGY", "volume": Decimal(kwh)}]
    uses = sum(any(p.get("tariff_id") == UNCOMPILABLE for p in c["charging_periods"]) for c in cdrs)
    return write(tmp_path, [dump(c) for c in cdrs]), uses


def test_only_the_refused_cdrs_go_per_record(tmp_path):
    store, findings = load_tariffs([tariffs_dir(tmp_path)])
    assert not findings
    path, uses = month(tmp_path)
    assert uses > 20
    _reasons, result = check(path, store, tmp_path)  # == the per-record path, byte for byte
    refused = {k: v for k, v in result.fallbacks.items() if k.startswith("columnar_reader: kernel_refused")}
    assert refused == {
        "columnar_reader: kernel_refused: uncompilable tariff": uses,
        "columnar_reader: kernel_refused: overflow": 1,
    }
    # counted once: the per-record path prices them with the reference, not the kernel again
    assert not [k for k in result.fallbacks if k.startswith("kernel_refused")]
    assert result.priced == 400
    big = {r["cdr_id"]: r["total_cost_excl_vat"] for r in result.rows if r["tariff_id"] == BIG}
    assert sorted(big.values()) == ["1000.0000", "1000000000.0000"]


@pytest.mark.parametrize("workers", [1, 2])
def test_spans_refuse_the_same_cdrs(workers, tmp_path):
    store, _ = load_tariffs([tariffs_dir(tmp_path)])
    path, _uses = month(tmp_path)
    assert len(spans(str(path), 1 << 16)) > 3
    one = price_ndjson_columnar(path, store)
    many = price_ndjson_spans(price_ndjson_columnar, str(path), store, CDR_POLICY, None, workers, 1 << 16)
    same_result(many, one)
