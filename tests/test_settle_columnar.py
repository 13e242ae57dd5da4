"""The columnar settlement engine against the record-by-record engine on the same flat months.

The record path (:func:`settlement.jobs.flat_lines`) is the oracle: every file of the run must be
byte-identical, except the engine's name in ``manifest.json``."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from api.cli import main
from settlement.columnar.piece import RECORD_PATH_REASONS
from settlement.columnar.settle import settle_columnar
from settlement.jobs import settle, write_run


def generate(tmp: Path, seed: int, extra: tuple[str, ...] = ()) -> tuple[Path, Path, Path]:
    cdrs = tmp / "month.parquet"
    args = ["generate", "--cdrs", "1500", "--seed", str(seed), "--out", str(cdrs), "--quiet"]
    args += ["--versions", "2.2.1:60,2.1.1:10,2.3.0:30", "--malformed", "6", "--credit-rate", "0.02"]
    args += ["--duplicate-rate", "0.02", "--overcharge-rate", "0.03", "--out-of-month-rate", "0.01"]
    args += ["--tariffs-out", str(tmp / "tariffs"), "--contracts-out", str(tmp / "contracts.json"), *extra]
    assert main(args) == 0
    return cdrs, tmp / "tariffs", tmp / "contracts.json"


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_same_run(a: Path, b: Path) -> None:
    fa, fb = files_of(a), files_of(b)
    assert sorted(fa) == sorted(fb)
    for name in fa:
        if name == "manifest.json":
            ma, mb = json.loads(fa[name]), json.loads(fb[name])
            ma["settings"].pop("engine", None)
            mb["settings"].pop("engine", None)
            for m in (ma, mb):  # the columnar engine counts the records it sent record by record
                path = m.pop("record_path", {})
                assert all(n > 0 for n in path.values())
                assert sum(path.values()) <= m["counts"]["read"] - m["counts"]["rejected"]
            assert ma == mb
        else:
            assert fa[name] == fb[name], name


def run_both(
    tmp: Path, cdrs: Path, tariffs: Path, contracts: Path, piece_rows: int, **kw
) -> tuple[Path, Path]:
    month = "2026-10"
    result, c = settle([cdrs], [tariffs], month, contracts_path=contracts, **kw)
    local = write_run(result, c, tmp / "local", month, [cdrs], {})
    out, counts, _ = settle_columnar(
        [cdrs], [tariffs], month, tmp / "columnar", contracts_path=contracts, piece_rows=piece_rows, **kw
    )
    assert counts == result.counts
    assert sum(counts[k] for k in ("settled", "excluded", "rejected", "out_of_month")) == counts["read"]
    return local, out


@pytest.mark.parametrize(("seed", "piece_rows"), [(11, 500_000), (12, 997)])
def test_columnar_equals_record_path(tmp_path: Path, seed: int, piece_rows: int) -> None:
    cdrs, tariffs, contracts = generate(tmp_path, seed)
    local, columnar = run_both(tmp_path, cdrs, tariffs, contracts, piece_rows)
    assert_same_run(local, columnar)
    manifest = json.loads((columnar / "manifest.json").read_text())
    assert manifest["counts"]["rejected"] > 0 and manifest["counts"]["out_of_month"] > 0
    assert manifest["reconciliation"]["by_status"]["OVERCHARGED"] > 0
    # every record the columnar engine sent record by record is counted with its reason
    path = manifest["record_path"]
    assert set(path) <= set(RECORD_PATH_REASONS)
    assert path["credit"] > 0 and path["duplicate id"] > 0
    assert "record_path" not in json.loads((local / "manifest.json").read_text())


@pytest.mark.parametrize("basis", ["recomputed", "reported"])
def test_columnar_included_disputes_basis_and_zone(tmp_path: Path, basis: str) -> None:
    cdrs, tariffs, contracts = generate(tmp_path, 5)
    terms = json.loads(contracts.read_text())
    terms["default"]["basis"] = basis
    terms["default"]["disputed"] = "include"
    contracts.write_text(json.dumps(terms))
    local, columnar = run_both(tmp_path, cdrs, tariffs, contracts, 2_000, tz="America/New_York")
    assert_same_run(local, columnar)
    text = (columnar / "findings.ndjson").read_text()
    assert "OUT_OF_MONTH" in text and "DUPLICATE_CDR" in text and "ROUNDING" in text


def test_more_than_4_decimals_is_a_reject_in_both(tmp_path: Path) -> None:
    from decimal import Decimal

    import pyarrow as pa

    cdrs, tariffs, contracts = generate(tmp_path, 3)
    t = pq.read_table(cdrs)
    ids = t.column("cdr_id").to_pylist()
    first = ids[0]
    values = t.column("reported_total_excl").to_pylist()
    values = [
        v + Decimal("0.00001") if i == first and v is not None else v
        for i, v in zip(ids, values, strict=True)
    ]
    col = pa.array(values, pa.decimal128(38, 6))
    t = t.set_column(t.schema.get_field_index("reported_total_excl"), "reported_total_excl", col)
    pq.write_table(t, cdrs)
    local, columnar = run_both(tmp_path, cdrs, tariffs, contracts, 500_000)
    assert_same_run(local, columnar)
    rejects = [json.loads(x) for x in (columnar / "rejects.ndjson").read_text().splitlines()]
    assert any(r["code"] == "UNSUPPORTED_PRECISION" and r["record_id"] == first for r in rejects)


def test_cli_auto_picks_columnar_for_every_input(tmp_path: Path) -> None:
    """``--engine auto`` settles flat Parquet, NDJSON and both mixed with the columnar engine; the
    mixed run is the record engine's, byte for byte."""
    cdrs, tariffs, contracts = generate(tmp_path, 4)
    args = ["settle", "--cdrs", str(cdrs), "--tariffs", str(tariffs), "--contracts", str(contracts)]
    assert main([*args, "--month", "2026-10", "--out", str(tmp_path / "o")]) == 0
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["settings"]["engine"] == "columnar"
    nd = tmp_path / "x.ndjson"
    nd.write_text("{}\n")
    mixed = ["settle", "--cdrs", str(cdrs), str(nd), "--tariffs", str(tariffs), "--month", "2026-10"]
    mixed += ["--contracts", str(contracts)]
    assert main([*mixed, "--out", str(tmp_path / "p")]) == 0
    assert main([*mixed, "--engine", "local", "--out", str(tmp_path / "q")]) == 0
    manifest = json.loads((tmp_path / "p" / "manifest.json").read_text())
    assert manifest["settings"]["engine"] == "columnar"
    assert manifest["counts"]["rejected"] == 5  # the 4 malformed flat records and the "{}" line
    assert_same_run(tmp_path / "q", tmp_path / "p")


def test_columnar_on_dask_is_byte_identical(tmp_path: Path) -> None:
    """Pieces on a 2-worker LocalCluster give the files of the local columnar run."""
    cdrs, tariffs, contracts = generate(tmp_path, 21)
    base = ["settle", "--cdrs", str(cdrs), "--tariffs", str(tariffs), "--contracts", str(contracts)]
    base += ["--month", "2026-10"]
    base += ["--piece-rows", "1500"]  # several pieces, in flight together
    assert main([*base, "--engine", "columnar", "--out", str(tmp_path / "local")]) == 0
    assert main([*base, "--engine", "dask", "--out", str(tmp_path / "dask")]) == 0
    assert json.loads((tmp_path / "dask" / "manifest.json").read_text())["settings"]["engine"] == "dask"
    assert_same_run(tmp_path / "local", tmp_path / "dask")


def test_piece_cdrs_match_the_pricing_flat_reader(tmp_path: Path) -> None:
    """Settlement's column-wise CDR builder gives pricing.flat.flat_cdr's CDRs (plus money,
    parties and credit fields)."""
    import dataclasses

    from pricing.flat import flat_cdr, iter_pieces, piece_cdrs, split_piece

    cdrs, _, _ = generate(tmp_path, 8)
    for piece in iter_pieces([cdrs], 1200):
        fr, rejects = split_piece(piece)
        ks = [k for k in range(fr.n_records) if k not in rejects]
        for k, got in zip(ks, piece_cdrs(piece, fr, ks), strict=True):
            want = flat_cdr(fr, k)
            assert (
                dataclasses.replace(
                    got,
                    total_cost=None,
                    emsp_country_code=None,
                    emsp_party_id=None,
                    location_id=None,
                    contract_id=None,
                    credit=False,
                    credit_reference_id=None,
                )
                == want
            )


def test_json_object_is_json_dumps() -> None:
    import polars as pl

    from settlement.output import json_object

    df = pl.DataFrame(
        {
            "a": ["x", None, 'q"\\\x01é', "\u2028"],
            "b": [True, False, True, False],
            "c": ["1.00", "2", None, ""],
        }
    )
    got = df.select(json_object(df, ["a", "b", "c"]).alias("j"))["j"].to_list()
    assert got == [json.dumps(r, separators=(",", ":"), ensure_ascii=False) for r in df.to_dicts()]


def test_credits_net_originals_from_history_in_both_engines(tmp_path: Path) -> None:
    """A month that holds only credit CDRs nets them against an earlier run's lines (--history)."""
    import polars as pl

    cdrs, tariffs, contracts = generate(tmp_path, 9)
    first = tmp_path / "first"
    common = ["--tariffs", str(tariffs), "--contracts", str(contracts), "--month", "2026-10"]
    assert main(["settle", "--cdrs", str(cdrs), *common, "--out", str(first)]) == 0
    credits = tmp_path / "credits.parquet"
    pl.read_parquet(cdrs).filter(pl.col("credit").fill_null(False)).write_parquet(credits)
    runs = {}
    for engine in ("local", "columnar"):
        runs[engine] = out = tmp_path / engine
        args = ["settle", "--cdrs", str(credits), *common, "--history", str(first), "--engine", engine]
        assert main([*args, "--out", str(out)]) == 0
    assert_same_run(runs["local"], runs["columnar"])
    codes = [json.loads(x)["code"] for x in (runs["columnar"] / "findings.ndjson").read_text().splitlines()]
    refs = pl.read_parquet(credits).unique("cdr_id")["credit_reference_id"].to_list()
    settled = set(pl.concat([pl.read_csv(f, columns=["cdr_id"]) for f in first.rglob("lines.csv")])["cdr_id"])
    without = sum(1 for r in refs if r not in settled)  # originals excluded from the first run's lines
    assert len(refs) > 5 and without < len(refs)
    assert codes.count("CREDIT_WITHOUT_ORIGINAL") == without
    assert "CREDIT_AMOUNT_MISMATCH" not in codes  # generated credits net their originals exactly


def test_reconcile_reads_flat_months(tmp_path: Path) -> None:
    """`roamledger reconcile` on a flat month: every record reconciled or rejected, and the same
    statuses as the settlement run's reconciliation."""
    cdrs, tariffs, _ = generate(tmp_path, 13)
    out = tmp_path / "recon.ndjson"
    flag = ["--policy", "period_boundaries=flag"]  # settle's default: straddles are findings
    assert main(["reconcile", "--tariffs", str(tariffs), *flag, "--out", str(out), str(cdrs)]) == 0
    summary = json.loads(Path(f"{out}.summary.json").read_text())
    assert summary["cdrs"] + summary["rejected"] == summary["read"] > 1500
    settle = ["settle", "--cdrs", str(cdrs), "--tariffs", str(tariffs), "--month", "2026-10"]
    assert main([*settle, "--out", str(tmp_path / "s")]) == 0
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert summary["by_status"] == manifest["reconciliation"]["by_status"]


def tiny_negative(cdrs: Path) -> str:
    """Give one CDR with a reported total the reported totals -0.0040 / -0.0010 (lines of -0.00)."""
    import polars as pl

    df = pl.read_parquet(cdrs)
    target = df.filter(pl.col("reported_total_excl").is_not_null() & (pl.col("period_idx") == 0))["cdr_id"][3]
    table = pq.read_table(cdrs)
    money = {"reported_total_excl": "-0.004", "reported_total_incl": "-0.001"}
    df = df.with_columns(
        pl.when(pl.col("cdr_id") == target).then(pl.lit(v)).otherwise(pl.col(c).cast(pl.String)).alias(c)
        for c, v in money.items()
    )
    out = df.to_arrow()
    pq.write_table(out.cast(table.schema), cdrs)
    return target


@pytest.mark.parametrize(("basis", "disputed"), [("reported", "exclude"), ("recomputed", "include")])
def test_messy_month_stays_columnar_and_byte_identical(tmp_path: Path, basis: str, disputed: str) -> None:
    """Half the CDRs without a reported total, a fifth overcharged by a systematic +10 %, some with
    only the excl. VAT total missing, an unknown tariff id, the wrong currency, negated totals:
    every line status is computed on columns (only credits, duplicates and several-tariff CDRs go
    record by record) and the files are the record engine's, byte for byte."""
    from benchmarks.workload.messy import Mess, make_messy

    cdrs, tariffs, contracts = generate(tmp_path, 31)
    clean = tmp_path / "clean.parquet"
    cdrs.rename(clean)
    mess = Mess(
        excl_only_missing=0.05,
        unknown_tariff=0.03,
        wrong_currency="USD",
        wrong_currency_share=0.02,
        negated=0.02,
    )
    made = make_messy(clean, cdrs, mess)
    assert all(n > 0 for n in made.values()), made
    tiny = tiny_negative(cdrs)
    terms = json.loads(contracts.read_text())
    terms["default"]["basis"] = basis
    terms["default"]["disputed"] = disputed
    contracts.write_text(json.dumps(terms))
    local, columnar = run_both(tmp_path, cdrs, tariffs, contracts, 997)
    assert_same_run(local, columnar)

    manifest = json.loads((columnar / "manifest.json").read_text())
    by_status = manifest["reconciliation"]["by_status"]
    codes = manifest["reconciliation"]["findings_by_code"]
    assert by_status["NOT_PRICED"] > 0.4 * manifest["counts"]["read"]
    assert by_status["OVERCHARGED"] > 0.05 * manifest["counts"]["read"]
    for code in ("NOT_COMPARABLE", "TARIFF_NOT_FOUND", "CURRENCY_MISMATCH", "UNDERCHARGED"):
        assert codes.get(code, 0) > 0, code
    # only credits, duplicate ids and several-tariff CDRs take the record path: a small share
    path = manifest["record_path"]
    assert set(path) <= {"credit", "duplicate id", "several tariffs"}
    assert sum(path.values()) < 0.1 * manifest["counts"]["read"]
    docs = [json.loads(p.read_text()) for p in columnar.rglob("statement.json")]
    listed = [ln for d in docs for ln in d["lines"] + d["disputed"]]
    reasons = {ln["dispute_reason"] for ln in listed}
    assert "could not be recomputed: TARIFF_NOT_FOUND" in reasons
    assert ("no amount on this basis" in reasons) == (basis == "reported")
    if basis == "reported":  # the -0.0040 line is written as the record engine writes it: -0.00
        assert [ln["line_excl_vat"] for ln in listed if ln["cdr_id"] == tiny] == ["-0.00"]


def test_a_piece_the_kernel_refuses_is_settled_record_by_record_and_counted(tmp_path: Path) -> None:
    """A tariff price too big for the kernel's int64 fixed point (a declared overflow): the
    columnar engine sends those pieces to the record path (the reference pricer decides, as in the
    record engine), counts them as "kernel refused", and writes the same files."""
    cdrs, tariffs, contracts = generate(tmp_path, 41)
    for path in sorted(tariffs.glob("*-AC-221.json")):  # one tariff is enough to refuse its pieces
        path.write_text(path.read_text().replace('"price": 0.42', '"price": 900000000000', 1))
    local, columnar = run_both(tmp_path, cdrs, tariffs, contracts, 997)
    assert_same_run(local, columnar)
    path = json.loads((columnar / "manifest.json").read_text())["record_path"]
    assert path["kernel refused"] > 0


def test_out_of_month_says_the_end_in_the_statement_zone(tmp_path: Path) -> None:
    """A session ending 2026-10-31 23:30 UTC ended on 1 November in Amsterdam: the finding shows
    that local end (the one that decides the month), the same bytes in both engines."""
    from test_settle import cdr, run_settle, write_month

    late = cdr("NOV-1")
    late["start_date_time"] = late["charging_periods"][0]["start_date_time"] = "2026-10-31T22:30:00Z"
    late["end_date_time"] = "2026-10-31T23:30:00Z"
    src, tariffs, contracts = write_month(tmp_path, [cdr("A1"), late])
    texts = {}
    for engine in ("local", "columnar"):
        assert run_settle(tmp_path, src, tariffs, contracts, tmp_path / engine, "--engine", engine) == 0
        texts[engine] = (tmp_path / engine / "findings.ndjson").read_bytes()
    assert texts["local"] == texts["columnar"]
    (oom,) = [f for f in map(json.loads, texts["local"].splitlines()) if f["code"] == "OUT_OF_MONTH"]
    assert oom["cdr_id"] == "NOV-1"
    assert oom["message"].startswith(
        "session ended 2026-11-01T00:30:00+01:00 (Europe/Amsterdam), in 2026-11, not"
    )
    assert "UTC date" not in oom["message"] and "2026-10-31" not in oom["message"]


def _cdr(cdr_id: str, tariff_id: str, total_cost: dict) -> dict:
    return {
        "country_code": "NL",
        "party_id": "MYC",
        "id": cdr_id,
        "start_date_time": "2026-10-15T10:00:00Z",
        "end_date_time": "2026-10-15T11:00:00Z",
        "session_id": "S-" + cdr_id,
        "cdr_token": {
            "country_code": "DE",
            "party_id": "MSP",
            "uid": "AA11",
            "type": "RFID",
            "contract_id": "DE-MSP-C1",
        },
        "auth_method": "WHITELIST",
        "cdr_location": {
            "id": "LOC-1",
            "address": "Dam 1",
            "city": "Amsterdam",
            "country": "NLD",
            "coordinates": {"latitude": "52.37", "longitude": "4.89"},
            "evse_uid": "E1",
            "evse_id": "NL*MYC*E1",
            "connector_id": "1",
            "connector_standard": "IEC_62196_T2",
            "connector_format": "SOCKET",
            "connector_power_type": "AC_3_PHASE",
        },
        "currency": "EUR",
        "charging_periods": [
            {
                "start_date_time": "2026-10-15T10:00:00Z",
                "dimensions": [{"type": "ENERGY", "volume": 10}, {"type": "TIME", "volume": 1}],
                "tariff_id": tariff_id,
            }
        ],
        "total_cost": total_cost,
        "total_energy": 10,
        "total_time": 1,
        "last_updated": "2026-10-15T11:05:00Z",
    }


UNPRICEABLE_230 = _cdr(
    "T230-NOTAR", "NOPE", {"before_taxes": 5.0, "taxes": [{"name": "VAT", "percentage": 21, "amount": 1.05}]}
)
PRICED_221 = _cdr("C221", "T-221", {"excl_vat": 2.0, "incl_vat": 2.42})
TARIFF_221 = {
    "country_code": "NL",
    "party_id": "MYC",
    "id": "T-221",
    "currency": "EUR",
    "elements": [{"price_components": [{"type": "ENERGY", "price": 0.2, "vat": 21, "step_size": 1}]}],
    "last_updated": "2026-10-01T00:00:00Z",
}


@pytest.mark.parametrize("tariffs", [True, False])
def test_unpriceable_230_cdrs_settle_as_in_the_record_engine(tmp_path: Path, tariffs: bool) -> None:
    """A file whose 2.3.0 CDRs are all unpriceable (tariff id unknown, or no tariffs at all) while
    they report taxes: no recomputed tax rate in the piece. It crashed the columnar engine (exit 70,
    "failed to vstack column 'pct'": the empty recomputed tax frame kept an Int64 ``pct``); it is
    the record engine's outcome, byte for byte."""
    cdrs = tmp_path / "cdrs"
    cdrs.mkdir()
    (cdrs / "c230.ndjson").write_text(json.dumps(UNPRICEABLE_230) + "\n")
    (cdrs / "c221.ndjson").write_text(json.dumps(PRICED_221) + "\n")
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "t.json").write_text(json.dumps(TARIFF_221))
    contracts = tmp_path / "contracts.json"
    contracts.write_text(
        json.dumps({"statement_time_zone": "Europe/Amsterdam", "default": {"basis": "reported"}})
    )
    args = ["settle", "--cdrs", str(cdrs), "--month", "2026-10", "--contracts", str(contracts)]
    if tariffs:
        args += ["--tariffs", str(tmp_path / "t")]
    rc = main([*args, "--out", str(tmp_path / "col")])
    assert rc == main([*args, "--engine", "local", "--out", str(tmp_path / "loc")])
    assert rc == (0 if tariffs else 2)  # no tariff matched any CDR: a usage error with a hint
    assert_same_run(tmp_path / "loc", tmp_path / "col")
    findings = (tmp_path / "col" / "findings.ndjson").read_text()
    assert "T230-NOTAR" in findings


RESV_TARIFF = {
    "country_code": "NL",
    "party_id": "MYC",
    "id": "T-RESV",
    "currency": "EUR",
    "elements": [
        {
            "price_components": [
                {"type": "FLAT", "price": 1.0, "vat": 21, "step_size": 1},
                {"type": "TIME", "price": 1.2, "vat": 21, "step_size": 60},
            ],
            "restrictions": {"reservation": "RESERVATION"},
        },
        {"price_components": [{"type": "ENERGY", "price": 0.4, "vat": 21, "step_size": 1}]},
    ],
    "last_updated": "2026-10-01T00:00:00Z",
}


def reserved(cdr_id: str, **costs: dict) -> dict:
    """A session preceded by a 0.5 h reservation (the CDR starts when it starts, total_time 1.5 h):
    1.00 + 0.5 h x 1.20 reservation and 10 kWh x 0.40, 5.60 in all."""
    c = _cdr(cdr_id, "T-RESV", {"excl_vat": 5.6, "incl_vat": 6.776})
    c["start_date_time"] = "2026-10-15T09:30:00Z"
    c["charging_periods"].insert(
        0,
        {
            "start_date_time": "2026-10-15T09:30:00Z",
            "dimensions": [{"type": "RESERVATION_TIME", "volume": 0.5}],
            "tariff_id": "T-RESV",
        },
    )
    return c | {"total_time": 1.5} | costs


def test_absent_dimension_costs_are_unknown_and_reservation_time_is_in_total_time(tmp_path: Path) -> None:
    """A CDR that reports only total_reservation_cost (the other dimension costs are optional in
    OCPI: unknown, not 0) is no TOTALS_INCONSISTENT ('5.6 is not the sum of the reported dimension
    costs (1.6)'), and its total_time 1.5 h counts the 0.5 h reservation (no QUANTITY_MISMATCH
    '... add up to 1.0000 h'); both rules still find what is wrong; both engines alike."""
    price = {"excl_vat": 1.6, "incl_vat": 1.936}
    cases = [
        reserved("RESV", total_reservation_cost=price),
        # the reported dimension costs alone exceed the total: inconsistent whatever the others are
        reserved(
            "PART", total_reservation_cost=price, total_energy_cost={"excl_vat": 4.5, "incl_vat": 5.445}
        ),
        # all five reported: the total must be their sum
        reserved(
            "ALL5",
            total_reservation_cost=price,
            total_energy_cost={"excl_vat": 3.0, "incl_vat": 3.63},
            **{f"total_{d}_cost": {"excl_vat": 0, "incl_vat": 0} for d in ("time", "parking", "fixed")},
        ),
        reserved("LONG", total_time=2.5),  # 2.5 h against 0.5 h reservation + 1 h charging
    ]
    cdrs = tmp_path / "c.ndjson"
    cdrs.write_text("".join(json.dumps(c) + "\n" for c in cases))
    (tmp_path / "t.json").write_text(json.dumps(RESV_TARIFF))
    found = {}
    for engine in ("local", "columnar"):
        out = tmp_path / f"{engine}.ndjson"
        args = ["reconcile", "--tariffs", str(tmp_path / "t.json"), "--engine", engine, "--out", str(out)]
        assert main([*args, str(cdrs)]) == 0
        found[engine] = Path(f"{out}.findings.ndjson").read_text()
        lines = [json.loads(x) for x in out.read_text().splitlines()]
        assert [ln["recomputed_total_excl_vat"] for ln in lines] == ["5.6000"] * 4
    assert found["local"] == found["columnar"]
    codes = [(f["cdr_id"], f["code"], f["message"]) for f in map(json.loads, found["local"].splitlines())]
    mine = sorted(c for c in codes if c[1] in ("TOTALS_INCONSISTENT", "QUANTITY_MISMATCH"))
    assert mine == sorted(
        [
            (
                "PART",
                "TOTALS_INCONSISTENT",
                "reported total_cost 5.6 excl. VAT is less than the reported dimension costs alone (6.1; not "
                "reported: total_time_cost, total_parking_cost, total_fixed_cost)",
            ),
            (
                "ALL5",
                "TOTALS_INCONSISTENT",
                "reported total_cost 5.6 excl. VAT is not the sum of the reported dimension costs (4.6)",
            ),
            (
                "LONG",
                "QUANTITY_MISMATCH",
                "total_time 2.5 h but TIME + PARKING_TIME + RESERVATION_TIME volumes add up to 1.5000 h",
            ),
        ]
    )
