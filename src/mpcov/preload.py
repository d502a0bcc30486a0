"""The child-side modules' code, compiled once by the parent for every child.

Importing a module from the path costs a measured process more than running
it: finding it (``sys.meta_path``, the path finder, a directory cache),
then checking and reading its cached bytecode, about 0.45 million
instructions each on CPython 3.13, for each of the seven modules a child
needs after :mod:`mpcov.bootstrap`. So the process that writes the run
manifest compiles those modules once and puts their code in the manifest
(key ``child_code``, made here); each child then imports them from there
(:func:`mpcov.bootstrap._preloaded`), through the import system as usual
(module locks, ``__spec__``, parent package attributes), minus the search and
the bytecode cache. Their ``from __future__ import annotations`` is compiled
in as a compiler flag, not run: running it imports ``__future__`` (0.2 ms),
which nothing else in a child needs. ``inspect``, tracebacks and ``importlib.reload`` see
ordinary source modules.

A child uses the code only if it is the same mpcov (same package directory,
every file's size and modification time unchanged) and the same bytecode
(the interpreter's magic number and ``-O`` level); otherwise it imports the
usual way.
"""

from __future__ import annotations
import __future__

import ast
import importlib.util
import os
import sys
from typing import Any

import mpcov

#: What a measuring child imports after bootstrap and manifest, by mode.
COMMON = ("mpcov.select", "mpcov.fragment", "mpcov.sigwatch", "mpcov.lifecycle", "mpcov.cores")
CORES = {"monitoring": ("mpcov.cores.monitoring",), "settrace": ("mpcov.cores.settrace",)}
BRANCH = ("mpcov.rewrite",)


def child_code(core: str, branch: bool) -> dict[str, Any]:
    """The ``child_code`` entry of a run manifest, for children running
    `core` (in `branch` mode); empty if a module cannot be read."""
    names = [*COMMON, *CORES.get(core, ()), *(BRANCH if branch and sys.version_info >= (3, 12)
                                               else ())]
    here = os.path.dirname(os.path.abspath(mpcov.__file__ or ""))
    modules: dict[str, tuple[str, int, int, Any]] = {}
    for name in names:
        relative = name.split(".")[1:]
        path = os.path.join(here, *relative) + ".py"
        if not os.path.exists(path):
            path = os.path.join(here, *relative, "__init__.py")
        try:
            with open(path, "rb") as f:
                source = f.read()
            stat = os.stat(path)
            code = _compile(source, path)
        except (OSError, SyntaxError, ValueError):
            return {}
        modules[name] = (path, stat.st_mtime_ns, stat.st_size, code)
    return {
        "magic": importlib.util.MAGIC_NUMBER,
        "optimize": sys.flags.optimize,
        "dir": here,
        "modules": modules,
    }


def _compile(source: bytes, path: str) -> Any:
    """`source` compiled as the import system would, except that its
    ``from __future__`` statements become compiler flags (the features are
    the same; the ``__future__`` module is not imported at run time)."""
    tree = ast.parse(source, path)
    flags = 0
    body = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            for alias in node.names:
                flags |= getattr(__future__, alias.name).compiler_flag
        else:
            body.append(node)
    tree.body = body
    return compile(tree, path, "exec", flags=flags, dont_inherit=True)
