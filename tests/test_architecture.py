"""The shape of the package (issue 10): leaves are leaves, no import cycle, no private names of others.

Each third-party library is imported by one module, its owner; the others reach it through that one.

Imports are read with :mod:`ast`, function-level ones included; imports
under ``if t.TYPE_CHECKING:`` are type-only and do not count.
"""

from __future__ import annotations

import ast
import pathlib
import sys

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
#: Not third-party libraries for the one-owner rule: the package itself and the framework it extends.
FRAMEWORK = frozenset({"flask_authgate", "flask", "werkzeug"})
#: Each third-party library the package imports, and the one module that imports it (issue: "each
#: third-party library owned by one module"). Everything else reaches the library through its owner.
OWNERS = {
    "jwt": "_pyjwt",
    "redis": "_redis_backend",
    "itsdangerous": "signed_tokens",
    "blinker": "signals",
    "click": "cli",
    "opentelemetry": "metrics",
    "pytest": "pytest_plugin",
    "cryptography": "testing",
}


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING") or (
        isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"
    )


def runtime_imports(source: str) -> list[ast.Import | ast.ImportFrom]:
    """The import statements of ``source`` that run (function-level ones included, type-only ones not)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for sub in ast.iter_child_nodes(node):
            visit(sub)

    visit(ast.parse(source))
    return found


def _source(module: str) -> str:
    return (PACKAGE / f"{module}.py").read_text()


def imports(module: str) -> set[str]:
    """The package modules ``module`` imports at run time (function-level imports included)."""
    found: set[str] = set()
    for node in runtime_imports(_source(module)):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("flask_authgate"):
                rest = node.module.split(".")[1:]
                found.add(rest[0] if rest else node.names[0].name)
        else:
            for alias in node.names:
                if alias.name.startswith("flask_authgate."):
                    found.add(alias.name.split(".")[1])
    found.discard(module)
    return found


def libraries(source: str) -> set[str]:
    """The top-level third-party packages ``source`` imports at run time (not the framework, not the stdlib)."""
    names: set[str] = set()
    for node in runtime_imports(source):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        else:
            names.update(alias.name.split(".")[0] for alias in node.names)
    return names - FRAMEWORK - set(sys.stdlib_module_names)


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


#: What each leaf may reach at all: config only the pure parsers of its values (no fetching, no
#: verifying: ``config`` never imports ``issuers``, ``jwks``, ``discovery``, ``_http`` or PyJWT).
LEAF_REACH = {
    "errors": set(),
    "identity": set(),
    "credentials": {"errors"},
    "config": {"errors", "claims", "issuer_config", "resource_metadata", "_redis_url", "_urls"},
}


@pytest.mark.parametrize("leaf", LEAVES)
def test_leaves_reach_only_what_they_are_allowed(leaf: str) -> None:
    assert reachable(leaf) <= LEAF_REACH[leaf], f"{leaf} reaches {sorted(reachable(leaf) - LEAF_REACH[leaf])}"


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


def test_each_third_party_library_is_imported_by_exactly_its_one_owner() -> None:
    users: dict[str, set[str]] = {}
    for module in [*MODULES, "__init__"]:
        for library in libraries(_source(module)):
            users.setdefault(library, set()).add(module)
    wrong = {library: sorted(modules) for library, modules in users.items() if modules != {OWNERS.get(library)}}
    assert wrong == {}, "a library imported outside its owner, or without one in OWNERS"
    assert set(users) == set(OWNERS), "an owner in OWNERS that no longer imports its library"


def test_the_library_check_counts_function_level_imports_and_not_type_only_ones() -> None:
    source = """
from __future__ import annotations
import typing as t
import os.path
from flask import g
from werkzeug.exceptions import HTTPException
from . import errors
from ._pyjwt import decoder
from jwt.algorithms import get_default_algorithms
if t.TYPE_CHECKING:
    import redis
else:
    import blinker
def f():
    import cryptography.x509, click
"""
    assert libraries(source) == {"jwt", "blinker", "cryptography", "click"}
