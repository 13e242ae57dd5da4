"""Every file the commands write on the sample month and on generated months of the three OCPI
versions is byte-identical to the recorded snapshot (see ``snapshot_cases``): refactors change no
output; a deliberate change regenerates the snapshot in its own commit."""

from __future__ import annotations

import json
from pathlib import Path

from snapshot_cases import SNAPSHOT, run_cases


def test_outputs_are_unchanged(tmp_path: Path) -> None:
    expected = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    got = run_cases(tmp_path)
    changed = sorted(k for k in expected.keys() & got.keys() if expected[k] != got[k])
    assert not changed, f"outputs changed (regenerate with python tests/snapshot_cases.py --write): {changed}"
    assert sorted(got.keys() - expected.keys()) == [], "new output files"
    assert sorted(expected.keys() - got.keys()) == [], "output files no longer written"
