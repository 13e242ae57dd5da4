"""The layout the design promises: imports go one way (api → settlement → pricing), the pure kernel
imports only what it prices with, and no module grows past what a newcomer can read."""

from __future__ import annotations

import ast
import subprocess
import sys
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


def imported(path: Path, modules_only: bool = False) -> set[str]:
    """Every module (and, unless ``modules_only``, every ``module.name``) an import statement names
    anywhere in the file, also inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            if not modules_only:
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


KERNEL = ("kernel", "kernel_money", "fixed_point")
# The pure kernel: arrays in, arrays out — no I/O, no pydantic, no OCPI versions, no formatting.
KERNEL_MAY_IMPORT = {
    "__future__",
    "concurrent.futures",
    "dataclasses",
    "typing",
    "numpy",
    "pricing.compile",  # the compiled element tables
    "pricing.period_table",
    "pricing.model",
    "pricing.policy",
    "pricing.errors",
    *(f"pricing.{m}" for m in KERNEL),
}


@pytest.mark.parametrize("module", KERNEL)
def test_the_kernel_imports_only_what_it_prices_with(module: str) -> None:
    names = {
        n
        for n in imported(ROOT / "pricing" / f"{module}.py")
        if not any(n.startswith(f"{m}.") and m in KERNEL_MAY_IMPORT for m in {n.rsplit(".", 1)[0]})
    }
    assert names <= KERNEL_MAY_IMPORT, sorted(names - KERNEL_MAY_IMPORT)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_is_over_800_lines(package: str) -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in modules(package)
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 800
    }
    assert not long


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_are_at_the_top_of_modules(package: str) -> None:
    """The dependency graph is visible at the top of each file (``if TYPE_CHECKING:`` blocks aside)."""
    inner = []
    for path in modules(package):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in ast.walk(tree):
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                inner += [
                    f"{path.relative_to(ROOT)}:{node.lineno}"
                    for node in ast.walk(fn)
                    if isinstance(node, ast.Import | ast.ImportFrom)
                ]
    assert not inner, inner


def test_a_command_imports_only_its_own_module() -> None:
    """``roamledger price`` (and each worker process it spawns) loads neither the settlement
    store, the HTTP server nor the workload generator; ``--help`` still lists every command."""
    code = (
        "import sys\n"
        "from api.cli import COMMANDS, build_parser\n"
        "args = build_parser('price').parse_args(['price', '--out', 'o.ndjson', 'c.ndjson'])\n"
        "assert args.command == 'price'\n"
        "heavy = [m for m in ('settlement', 'benchmarks', 'fastapi', 'alembic') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert len(build_parser()._subparsers._group_actions[0].choices) == len(COMMANDS)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
