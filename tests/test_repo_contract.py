"""The repository contract: `.ci/run` runs exactly the README's test command."""

from __future__ import annotations

import re

from conftest import ROOT


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```sh\n(.*?)\n```", text, flags=re.S)[:2]


def test_ci_runs_the_readme_test_command() -> None:
    install_and_settle, test = readme_commands()
    assert "roamledger settle" in install_and_settle and "fixtures/sample" in install_and_settle
    ci = [
        ln
        for ln in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
        if ln.startswith("python")
    ]
    assert ci == [test]
    assert "ruff check ." in test and "ruff format --check ." in test and "pytest" in test
