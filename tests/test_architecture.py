"""The import rules of docs/architecture.md, read from its package table and checked on every
import statement of our packages (lazy ones too), plus: no import cycle between modules."""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "docs" / "architecture.md"

Where = Literal["module", "function", "type_checking"]


@dataclass(frozen=True, kw_only=True)
class Rule:
    package: str
    imports: frozenset[str] | Literal["any"]
    """Our packages or modules it may import, besides itself."""
    never: frozenset[str]
    """Third-party top-level modules it may not import at all."""
    functions_only: frozenset[str]
    """Third-party top-level modules it may import only inside function bodies."""


@dataclass(frozen=True, kw_only=True)
class Import:
    module: str
    """The importing module, e.g. `serve.app`."""
    path: str
    line: int
    target: str
    """The imported module as written, made absolute, e.g. `model.artifact` or `numpy.typing`."""
    where: Where


def _names(cell: str) -> frozenset[str]:
    return frozenset(name.rstrip("/") for name in re.findall(r"`([^`]+)`", cell))


def read_rules(markdown: str) -> dict[str, Rule]:
    """The rows of the table under `## Packages`, keyed by package name (`tests` included)."""
    section = markdown.split("## Packages", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    rules = {}
    for row in rows:
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        package = cells[0].strip("`/")
        imports: frozenset[str] | Literal["any"]
        imports = "any" if cells[2] == "any" else _names(cells[2])
        never: set[str] = set()
        functions_only: set[str] = set()
        for clause in filter(None, (part.strip() for part in cells[3].split(";"))):
            names, _, limit = clause.rpartition(":")
            if limit.strip() == "never":
                never |= _names(names)
            elif limit.strip() == "inside functions only":
                functions_only |= _names(names)
            else:
                raise ValueError(f"{package}: unknown limit {clause!r} in {TABLE}")
        rules[package] = Rule(
            package=package,
            imports=imports,
            never=frozenset(never),
            functions_only=frozenset(functions_only),
        )
    return rules


def packages_in_pyproject() -> set[str]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        include = tomllib.load(file)["tool"]["setuptools"]["packages"]["find"]["include"]
    return {pattern.rstrip("*") for pattern in include}


def modules_of(root: Path, packages: set[str]) -> dict[str, Path]:
    """Every module of `packages` under `root` by dotted name (a package by its own name)."""
    modules = {}
    for package in sorted(packages):
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root)
            parts = relative.with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imports_in(module: str, path: Path, root: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    relative = path.relative_to(root).as_posix()

    def visit(node: ast.AST, where: Where) -> Iterator[Import]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(
                    module=module, path=relative, line=node.lineno, target=alias.name, where=where
                )
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                # `from model import artifact` imports the module model.artifact.
                target = f"{base}.{alias.name}" if alias.name != "*" else base
                yield Import(
                    module=module, path=relative, line=node.lineno, target=target, where=where
                )
        inner: Where = where
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            inner = "function" if where == "module" else where
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                yield from visit(child, "type_checking")
            for child in node.orelse:
                yield from visit(child, inner)
            return
        for child in ast.iter_child_nodes(node):
            yield from visit(child, inner)

    yield from visit(tree, "module")


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def ours(target: str, modules: Mapping[str, Path]) -> str | None:
    """The module of ours that `target` names (its longest known prefix), or None."""
    name = target
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def rule_violations(
    rules: Mapping[str, Rule], modules: Mapping[str, Path], root: Path
) -> list[str]:
    found = []
    for module, path in modules.items():
        rule = rules[module.split(".")[0]]
        for item in imports_in(module, path, root):
            place = f"{item.path}:{item.line} imports {item.target}"
            top = item.target.split(".")[0]
            target = ours(item.target, modules)
            if target is not None:
                if target.split(".")[0] == rule.package or rule.imports == "any":
                    continue
                allowed = any(
                    target == name or target.startswith(f"{name}.") for name in rule.imports
                )
                if not allowed:
                    found.append(f"{place}: {rule.package}/ may import only {_listed(rule)}")
            elif top in rule.never:
                found.append(f"{place}: {rule.package}/ never imports {top}")
            elif top in rule.functions_only and item.where == "module":
                found.append(f"{place} at module level: {rule.package}/ imports it in functions")
    return found


def _listed(rule: Rule) -> str:
    return ", ".join(sorted(rule.imports)) or "none of our packages"


def import_cycles(modules: Mapping[str, Path], root: Path) -> list[list[str]]:
    """Groups of modules that import each other, directly or around a loop (Tarjan's SCCs)."""
    graph: dict[str, set[str]] = {module: set() for module in modules}
    for module, path in modules.items():
        for item in imports_in(module, path, root):
            target = ours(item.target, modules)
            if target is not None and target != module:
                graph[module].add(target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return cycles


@pytest.fixture(scope="module")
def rules() -> dict[str, Rule]:
    return read_rules(TABLE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def modules() -> dict[str, Path]:
    return modules_of(ROOT, packages_in_pyproject())


def test_the_table_has_a_row_for_every_package_and_tests(rules: dict[str, Rule]) -> None:
    assert set(rules) == packages_in_pyproject() | {"tests"}
    assert rules["serve"].imports == {"model.artifact", "model.errors"}
    assert "xgboost" in rules["serve"].never


def test_packages_import_only_what_the_table_allows(
    rules: dict[str, Rule], modules: dict[str, Path]
) -> None:
    assert rule_violations(rules, modules, ROOT) == []


def test_no_import_cycle_between_modules(modules: dict[str, Path]) -> None:
    assert import_cycles(modules, ROOT) == []


def test_the_checks_find_what_they_look_for(tmp_path: Path) -> None:
    """A made-up tree with one of each violation, so a silent checker cannot pass."""
    (tmp_path / "low").mkdir()
    (tmp_path / "high").mkdir()
    (tmp_path / "low" / "__init__.py").write_text("")
    (tmp_path / "low" / "a.py").write_text("import heavy\nfrom low import b\n")
    (tmp_path / "low" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import heavy\n"
        "def f():\n    import heavy\n    from . import a\n    from high import c\n"
    )
    (tmp_path / "high" / "__init__.py").write_text("")
    (tmp_path / "high" / "c.py").write_text("import banned\nfrom low.a import x\n")
    table = (
        "## Packages\n\n| package | holds | imports from our packages | third-party limits |\n"
        "|---|---|---|---|\n| `low/` | x | none | `heavy`: inside functions only |\n"
        "| `high/` | x | `low.a` | `banned`: never |\n"
    )
    rules = read_rules(table)
    modules = modules_of(tmp_path, {"low", "high"})
    assert sorted(rule_violations(rules, modules, tmp_path)) == [
        "high/c.py:1 imports banned: high/ never imports banned",
        "low/a.py:1 imports heavy at module level: low/ imports it in functions",
        "low/b.py:7 imports high.c: low/ may import only none of our packages",
    ]
    assert import_cycles(modules, tmp_path) == [["high.c", "low.a", "low.b"]]
