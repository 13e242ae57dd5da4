"""Writing a command's output files so that a failed or interrupted run leaves nothing behind.

Every file of a run is first written into a hidden staging folder beside the output (created here,
so removing it on failure deletes nothing of the user's), then renamed into place at the end.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class Staged:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.folder = out.parent / f".{out.name}.roamledger-partial-{os.getpid()}"
        self.names: list[str] = []

    def path(self, name: str) -> Path:
        """Where to write the output file ``name`` (a sibling of ``out``) for now."""
        self.names.append(name)
        return self.folder / name


@contextmanager
def staged_files(out: Path) -> Iterator[Staged]:
    """Yield a :class:`Staged`; on success move its files next to ``out``, else remove them all."""
    staged = Staged(out)
    staged.folder.mkdir(parents=True)
    try:
        yield staged
        for name in staged.names:
            src = staged.folder / name
            if src.exists():
                os.replace(src, out.parent / name)
    finally:
        shutil.rmtree(staged.folder, ignore_errors=True)
