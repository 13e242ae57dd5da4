"""Output snapshots: the SHA-256 of every file the commands write on the sample month and on small
generated months of the three OCPI versions. A refactor must leave them all unchanged; a change
that means to alter an output regenerates them and says why in its commit:

    python tests/snapshot_cases.py --write

The cases run in-process through the command line (``api.cli.main``) with relative input paths, so
the recorded manifests do not depend on where the repository lives.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from io import StringIO
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SNAPSHOT = HERE / "snapshots" / "outputs.json"
SAMPLE = "fixtures/sample"
MONTH = "2026-10"
GENERATE = [
    "--cdrs", "400", "--seed", "11", "--versions", "2.2.1:50,2.1.1:20,2.3.0:30", "--malformed", "4",
    "--credit-rate", "0.03", "--duplicate-rate", "0.02", "--out-of-month-rate", "0.02",
    "--overcharge-rate", "0.03", "--quiet",
]  # fmt: skip


@contextmanager
def cwd(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def roamledger(*argv: str) -> None:
    # The package must be importable from the repository (the test suite installs it in editable mode).
    from api.cli import main

    with redirect_stdout(StringIO()), redirect_stderr(StringIO()) as err:
        code = main(list(argv))
    if code != 0:
        raise AssertionError(f"roamledger {' '.join(argv)} exited {code}: {err.getvalue()}")


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def sample_cases(out: Path) -> None:
    """The sample month (README command 1), in English and French, priced and reconciled."""
    with cwd(ROOT):
        common = ["--cdrs", f"{SAMPLE}/cdrs", "--tariffs", f"{SAMPLE}/tariffs", "--month", MONTH]
        roamledger("settle", *common, "--contracts", f"{SAMPLE}/contracts.json", "--out", str(out / "settle"))
        roamledger(
            "settle", *common, "--contracts", f"{SAMPLE}/contracts.json", "--locale", "fr_FR",
            "--out", str(out / "settle_fr"),
        )  # fmt: skip
        tariffs = ["--tariffs", f"{SAMPLE}/tariffs"]
        roamledger(
            "price", *tariffs, "--explain", "--out", str(out / "price" / "sample.csv"), f"{SAMPLE}/cdrs"
        )
        roamledger("reconcile", *tariffs, "--out", str(out / "reconcile" / "sample.ndjson"), f"{SAMPLE}/cdrs")


def generated_cases(out: Path) -> None:
    """Generated months (NDJSON of three versions, and the flat Parquet layout), priced and settled by
    every engine that reads them."""
    work = out / "work"
    work.mkdir(parents=True)
    with cwd(work):
        roamledger("generate", *GENERATE, "--out", "nd/m.ndjson", "--contracts-out", "nd/contracts.json")
        roamledger("generate", *GENERATE, "--out", "flat/m.parquet", "--contracts-out", "flat/contracts.json")
        for kind in ("nd", "flat"):
            cdrs = "nd" if kind == "nd" else "flat/m.parquet"
            settle = ["settle", "--cdrs", cdrs, "--tariffs", f"{kind}/tariffs", "--month", MONTH]
            settle += ["--contracts", f"{kind}/contracts.json"]
            roamledger(*settle, "--out", f"../{kind}_settle_local", "--engine", "local")
            if kind == "flat":
                roamledger(*settle, "--out", f"../{kind}_settle_columnar", "--engine", "columnar")
            roamledger("price", "--tariffs", f"{kind}/tariffs", "--out", f"../{kind}_price/p.ndjson", cdrs)
            roamledger("price", "--tariffs", f"{kind}/tariffs", "--out", f"../{kind}_price/p.parquet", cdrs)


def run_cases(out: Path) -> dict[str, str]:
    sample_cases(out / "sample")
    generated_cases(out / "generated")
    return digests(out)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        result = run_cases(Path(tmp))
    if "--write" in sys.argv:
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {SNAPSHOT.relative_to(ROOT)}: {len(result)} files")
    else:
        print(json.dumps(result, indent=1, sort_keys=True))
