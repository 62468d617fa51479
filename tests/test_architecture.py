"""The shape of the package (issue 10): leaves are leaves, no import cycle, no private names of others.

Imports are read with :mod:`ast`, function-level ones included; imports
under ``if t.TYPE_CHECKING:`` are type-only and do not count.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "flask_authgate"
#: Modules that must not reach the request machinery, even through others.
LEAVES = ("errors", "identity", "config", "credentials")
#: The request machinery and what sits on it.
UPPER = (
    "pipeline",
    "decorators",
    "authorization",
    "rules",
    "responses",
    "extension",
    "cli",
    "testing",
    "tokens",
    "_state",
)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING") or (
        isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"
    )


def imports(module: str) -> set[str]:
    """The package modules ``module`` imports at run time (function-level imports included)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("flask_authgate"):
                rest = node.module.split(".")[1:]
                found.add(rest[0] if rest else node.names[0].name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("flask_authgate."):
                    found.add(alias.name.split(".")[1])
        for sub in ast.iter_child_nodes(node):
            visit(sub)

    visit(tree)
    found.discard(module)
    return found


MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
GRAPH = {m: imports(m) for m in MODULES}


def reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in GRAPH.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


@pytest.mark.parametrize("leaf", LEAVES)
def test_leaves_never_reach_the_request_machinery(leaf: str) -> None:
    assert not reachable(leaf) & set(UPPER), f"{leaf} reaches {sorted(reachable(leaf) & set(UPPER))}"


def test_the_import_graph_has_no_cycle() -> None:
    cycles = sorted(m for m in MODULES if m in reachable(m))
    assert cycles == []


def test_no_module_imports_a_private_name_of_another_module_or_package() -> None:
    offenders = []
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if alias.name.startswith("_") and alias.name != "__version__":
                        offenders.append(f"{path.name}: from {node.module} import {alias.name}")
    assert offenders == []


def test_each_third_party_library_has_its_owners() -> None:
    owners = {"itsdangerous": {"signed_tokens"}, "redis": {"revocation"}}
    for library, allowed in owners.items():
        users = {m for m in MODULES if f"import {library}" in (PACKAGE / f"{m}.py").read_text()}
        assert users <= allowed | {m for m in MODULES if m.startswith("_redis")}, (library, users)
