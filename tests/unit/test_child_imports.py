"""Modules that run in every measured process import only builtin modules.

Start-up cost is paid by every child process a test suite starts: ``re``,
``typing``, ``dataclasses`` and ``collections.abc`` each cost milliseconds, and
psutil, filelock, sqlite3, json, argparse and ast have no business there.
Type-only imports sit behind ``TYPE_CHECKING = False`` and are not executed.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

# What the child-side modules may import at run time, each justified by need.
ALLOWED = {
    "os", "sys", "marshal", "time", "atexit", "_signal", "_thread", "_posixsubprocess",
    "threading",  # settrace core only, and only when threading is already loaded or on 3.13+
    "zlib",  # imported lazily, at the first fragment write
    "opcode",  # settrace core, only on interpreters newer than those it knows (3.14+)
}
CHILD_MODULES = [
    "mpcov.bootstrap", "mpcov.manifest", "mpcov.select", "mpcov.fragment",
    "mpcov.lifecycle", "mpcov.sigwatch", "mpcov.cores", "mpcov.cores.monitoring",
    "mpcov.cores.settrace", "mpcov.rewrite",
]


def _runtime_imports(tree: ast.AST) -> set[str]:
    """Top-level modules imported anywhere except under ``if TYPE_CHECKING:``."""
    found: set[str] = set()
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            skipped.update(id(n) for n in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module != "__future__":
            found.add(node.module.split(".")[0])
    return found - {"mpcov"}


@pytest.mark.parametrize("name", CHILD_MODULES)
def test_child_module_imports_only_builtins(name: str) -> None:
    spec = importlib.util.find_spec(name)  # located, not imported: some need 3.12+
    assert spec is not None and spec.origin
    tree = ast.parse(Path(spec.origin).read_text())
    assert _runtime_imports(tree) <= ALLOWED
