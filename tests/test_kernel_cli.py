"""``roamledger price --engine kernel`` writes byte-identical files to ``--engine reference``:
every golden CDR, the sample month under ``flag``, and a generated flat Parquet file."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from conftest import ROOT

import pricing.batch
from api.cli import main

GOLDEN = sorted((ROOT / "fixtures" / "golden").glob("*/cdr.json"))
SAMPLE = ROOT / "fixtures" / "sample"


@pytest.fixture(autouse=True)
def no_kernel_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel side must really be the kernel: a refusal (overflow, uncompilable tariff) would
    be priced by the reference and pass the byte comparison, so here it fails the test."""

    def refused(exc: Exception) -> str:
        raise AssertionError(f"the kernel refused: {exc}")

    monkeypatch.setattr(pricing.batch, "kernel_refused", refused)


def outputs(tmp: Path, engine: str, args: list[str], suffix: str = ".ndjson") -> dict[str, bytes]:
    out = tmp / engine / f"out{suffix}"
    out.parent.mkdir(parents=True, exist_ok=True)
    assert main(["price", "--engine", engine, "--out", str(out), *args]) == 0
    meta = json.loads(Path(f"{out}.meta.json").read_text())
    fallbacks = meta["fallbacks"]  # every record off the path it was asked to take, by reason
    assert not {k: v for k, v in fallbacks.items() if "kernel_refused" in k}
    files = sorted(p for p in out.parent.iterdir() if not p.name.endswith(".meta.json"))
    return {p.name: p.read_bytes() for p in files}


def assert_same(tmp: Path, args: list[str], suffix: str = ".ndjson") -> dict[str, bytes]:
    kernel = outputs(tmp, "kernel", args, suffix)
    reference = outputs(tmp, "reference", args, suffix)
    assert kernel.keys() == reference.keys()
    for name in kernel:
        assert kernel[name] == reference[name], name
    return kernel


@pytest.mark.parametrize("cdr", GOLDEN, ids=[p.parent.name for p in GOLDEN])
def test_golden_cdr_byte_identical(cdr: Path, tmp_path: Path) -> None:
    meta = tomllib.loads((cdr.parent / "case.toml").read_text())
    args = ["--tz", meta["time_zone"]] if meta.get("time_zone") else []
    tariff = cdr.parent / "tariff.json"
    if tariff.exists():
        args += ["--tariffs", str(tariff)]
    for policy in ("period_boundaries=split", "period_boundaries=flag"):
        files = assert_same(tmp_path / policy, [*args, "--policy", policy, str(cdr)])
        assert files["out.ndjson"], "nothing priced"


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_other_output_formats_byte_identical(suffix: str, tmp_path: Path) -> None:
    assert_same(tmp_path, ["--tz", "Europe/Berlin", *map(str, GOLDEN)], suffix)


def test_sample_month_flag_byte_identical(tmp_path: Path) -> None:
    args = ["--tariffs", str(SAMPLE / "tariffs"), "--policy", "period_boundaries=flag", str(SAMPLE / "cdrs")]
    files = assert_same(tmp_path, args)
    assert b"PERIOD_STRADDLES_BOUNDARY" in files["out.ndjson.findings.ndjson"]
    assert files["out.ndjson.rejects.ndjson"].count(b"\n") == 10


def test_flat_parquet_byte_identical(tmp_path: Path) -> None:
    flat = tmp_path / "gen" / "cdrs.parquet"
    tariffs = tmp_path / "gen" / "tariffs"
    assert (
        main(
            [
                "generate", "--cdrs", "600", "--seed", "7", "--versions", "2.2.1:50,2.1.1:20,2.3.0:30",
                "--malformed", "8", "--straddle-rate", "0.05", "--no-reported", "--quiet",
                "--out", str(flat), "--tariffs-out", str(tariffs),
            ]
        )
        == 0
    )  # fmt: skip
    for policy in ("period_boundaries=flag", "time_source=timestamps"):
        files = assert_same(
            tmp_path / policy, ["--tariffs", str(tariffs), "--policy", policy, "--workers", "2", str(flat)]
        )
        assert files["out.ndjson.rejects.ndjson"].count(b"\n") == 8
