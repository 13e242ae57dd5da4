"""The layout the design promises: imports go one way (api → settlement → pricing), the pure kernel
imports only what it prices with, and no module grows past what a newcomer can read."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGES = ("pricing", "settlement", "api")
# What each package may import from the project (benchmarks only for the `generate` command).
ALLOWED = {
    "pricing": {"pricing"},
    "settlement": {"pricing", "settlement"},
    "api": {"pricing", "settlement", "api", "benchmarks"},
}
FIRST_PARTY = {"pricing", "settlement", "api", "benchmarks"}


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module an import statement names anywhere in the file (also inside functions)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_go_one_way(package: str) -> None:
    wrong = sorted(
        f"{path.relative_to(ROOT)} imports {name}"
        for path in modules(package)
        for name in imported(path)
        if name.split(".")[0] in FIRST_PARTY and name.split(".")[0] not in ALLOWED[package]
    )
    assert not wrong, "imports against api → settlement → pricing:\n" + "\n".join(wrong)


def test_the_check_sees_a_wrong_import(tmp_path: Path) -> None:
    bad = tmp_path / "m.py"
    bad.write_text("def f():\n    from settlement.jobs import settle\n", encoding="utf-8")
    assert "settlement.jobs" in imported(bad)


def test_only_the_generate_command_imports_benchmarks() -> None:
    users = sorted(
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in modules(package)
        if any(name.split(".")[0] == "benchmarks" for name in imported(path))
    )
    assert users in ([], ["api/cli/generate.py"])
