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
the bytecode cache. ``inspect``, tracebacks and ``importlib.reload`` see
ordinary source modules.

A child uses the code only if it is the same mpcov (same package directory,
every file's size and modification time unchanged) and the same bytecode
(the interpreter's magic number and ``-O`` level); otherwise it imports the
usual way.
"""

from __future__ import annotations

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
            code = compile(source, path, "exec", dont_inherit=True)
        except (OSError, SyntaxError, ValueError):
            return {}
        modules[name] = (path, stat.st_mtime_ns, stat.st_size, code)
    return {
        "magic": importlib.util.MAGIC_NUMBER,
        "optimize": sys.flags.optimize,
        "dir": here,
        "modules": modules,
    }
