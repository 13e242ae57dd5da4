"""Writing a command's output files so that a failed or interrupted run leaves nothing behind.

Every file of a run is first written into a hidden staging folder beside the output (created here,
so removing it on failure deletes nothing of the user's), then renamed into place at the end.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pricing.errors import RoamledgerError
from pricing.files import expand_inputs, signals_held

REJECTS = ".rejects.ndjson"  # the suffix of a run's rejects file (``OUT.rejects.ndjson``)


def check_output_file(out: Path, inputs: Iterable[str | os.PathLike[str]]) -> None:
    """Refuse an output whose files (``OUT`` and its ``OUT.*`` siblings) would replace an input of
    the run: the input would be lost even when the run fails; and one that names a folder (it
    would fail only after the whole run, on the rename)."""
    if out.is_dir():
        raise RoamledgerError(
            f"--out {out}: is a folder, and the output is one file. "
            f"Hint: name a file in it, e.g. {out / out.name}"
        )
    target = out.resolve()
    for given in expand_inputs(inputs):
        path = Path(given).resolve()
        if path == target or (path.parent == target.parent and path.name.startswith(f"{target.name}.")):
            raise RoamledgerError(
                f"--out {out}: the run would write over its input {given}. Hint: choose another output name"
            )


REPORTS = (REJECTS, ".meta.json", ".summary.json")  # what a failed run writes: why, and its counts


class Staged:
    """The files of one run under ``out``'s name, written into a hidden folder first.

    A failed run (nothing read, every record rejected: ``failed``) writes only its rejects and its
    counts (meta / summary). Where ``out`` exists (an earlier run, or a file of the user's), they are
    named ``OUT.failed.*``: the earlier files stay as they were, and no rejects file stands beside
    them that disagrees with their counts."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.folder = out.parent / f".{out.name}.roamledger-partial-{os.getpid()}"
        self.names: list[str] = []
        self.failed = False
        self.earlier = out.exists()

    def path(self, name: str) -> Path:
        """Where to write the output file ``name`` (a sibling of ``out``) for now."""
        self.names.append(name)
        return self.folder / name

    def placed(self, name: str) -> str | None:
        """The name the file ``name`` gets beside ``out`` (None: a failed run does not keep it)."""
        if not self.failed:
            return name
        if not name.endswith(REPORTS):
            return None
        return f"{self.out.name}.failed{name[len(self.out.name) :]}" if self.earlier else name


@contextmanager
def staged_files(out: Path) -> Iterator[Staged]:
    """Yield a :class:`Staged`; on success move its files next to ``out`` (:meth:`Staged.placed`),
    else remove them all."""
    staged = Staged(out)
    staged.folder.mkdir(parents=True)
    try:
        yield staged
        with signals_held():  # the earlier set of files or the new one, never a mix
            for name in sorted(staged.names, key=lambda n: n.endswith(".meta.json")):
                src, placed = staged.folder / name, staged.placed(name)
                if placed is not None and src.exists():
                    os.replace(src, out.parent / placed)
    finally:
        shutil.rmtree(staged.folder, ignore_errors=True)


def kept_note(staged: Staged) -> str:
    """What a failed run's error adds when it kept an earlier ``out``."""
    return f" ({staged.out} is kept as it was)" if staged.failed and staged.earlier else ""
