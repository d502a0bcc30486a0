"""The child-side modules' code, compiled once for every child of a run.

Importing a module from the path costs a measured process a search of
``sys.meta_path`` and the path finder's directory cache, then a check and a
read of its cached bytecode, for each of the six or seven modules a child
needs after :mod:`mpcov.bootstrap`. So the process that writes the run
manifest puts those modules' code in it (key ``child_code``, made here); each
child then imports them from there (:func:`mpcov.bootstrap._preloaded`),
through the import system as usual (module locks, ``__spec__``, parent
package attributes), minus the search and the bytecode cache. Their
``from __future__ import annotations`` is compiled in as a compiler flag, not
run: running it imports ``__future__`` (0.2 ms), which nothing else in a child
needs. ``inspect``, tracebacks and ``importlib.reload`` see ordinary source
modules.

Compiling them costs the parent about 50 ms, so the result is cached under
mpcov's cache directory (the probe cache's), keyed by the interpreter's
bytecode magic and ``-O`` level and each file's path, size and modification
time; a run with a warm cache pays one small read. A cache that cannot be
read or written is skipped.

A child uses the code only if it is the same mpcov (same package directory,
every file's size and modification time unchanged) and the same bytecode
(the interpreter's magic number and ``-O`` level); otherwise it imports the
usual way.
"""

from __future__ import annotations

import marshal
import os
import sys

import mpcov

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: What a measuring child imports after bootstrap and manifest, by mode.
COMMON = ("mpcov.select", "mpcov.fragment", "mpcov.sigwatch", "mpcov.lifecycle", "mpcov.cores")
CORES = {
    "monitoring": ("mpcov.cores.monitoring",),
    "settrace": ("mpcov.cores.settrace",),
    # (Not settrace, the fallback a `python script.py` child starts: every
    # child would pay for unmarshalling it.)
    "probes": ("mpcov.cores.lineprobe", "mpcov.rewrite"),
}
BRANCH = ("mpcov.rewrite",)

#: Version of the cache file's layout.
CACHE_FORMAT = 1

_FUTURE = b"from __future__ import annotations\n"
_CO_FUTURE_ANNOTATIONS = 0x1000000  # __future__.annotations.compiler_flag


def child_code(core: str, branch: bool, cache_dir: str | None = None) -> dict[str, Any]:
    """The ``child_code`` entry of a run manifest, for children running
    `core` (in `branch` mode); empty if a module cannot be read.
    `cache_dir`: where to cache it (None: mpcov's default cache directory)."""
    external: Any = sys.modules["_frozen_importlib_external"]
    names = [*COMMON, *CORES.get(core, ())]
    if branch:
        names += [name for name in BRANCH if name not in names]
    here = os.path.dirname(os.path.abspath(mpcov.__file__ or ""))
    files: list[tuple[str, str, int, int]] = []
    for name in names:
        relative = name.split(".")[1:]
        path = os.path.join(here, *relative) + ".py"
        if not os.path.exists(path):
            path = os.path.join(here, *relative, "__init__.py")
        try:
            stat = os.stat(path)
        except OSError:
            return {}
        files.append((name, path, stat.st_mtime_ns, stat.st_size))
    key = (CACHE_FORMAT, external.MAGIC_NUMBER, sys.flags.optimize, tuple(files))
    cache = _cache_path(cache_dir, core, branch)
    bundle = _read(cache, key)
    if bundle is None:
        modules: dict[str, tuple[str, int, int, Any]] = {}
        for name, path, mtime_ns, size in files:
            try:
                with open(path, "rb") as f:
                    code = _compile(f.read(), path)
            except (OSError, SyntaxError, ValueError):
                return {}
            modules[name] = (path, mtime_ns, size, code)
        bundle = {
            "magic": external.MAGIC_NUMBER,
            "optimize": sys.flags.optimize,
            "dir": here,
            "modules": modules,
        }
        _write(cache, key, bundle)
    return bundle


def _compile(source: bytes, path: str) -> Any:
    """`source` compiled as the import system would, except that a
    ``from __future__ import annotations`` line is a compiler flag instead
    (the same feature; no ``__future__`` import at run time). The line is
    blanked, not removed, so every other line keeps its number."""
    flags = 0
    if _FUTURE in source:
        source = source.replace(_FUTURE, b"\n", 1)
        flags = _CO_FUTURE_ANNOTATIONS
    return compile(source, path, "exec", flags=flags, dont_inherit=True)


def _cache_path(cache_dir: str | None, core: str, branch: bool) -> str:
    if cache_dir is None:
        from mpcov.rewrite import default_cache_dir

        cache_dir = default_cache_dir()
    mode = "branch" if branch else "line"
    return os.path.join(cache_dir, f"child-code.{sys.implementation.cache_tag}.{core}.{mode}")


def _read(cache: str, key: tuple[Any, ...]) -> dict[str, Any] | None:
    try:
        with open(cache, "rb") as f:
            data = marshal.loads(f.read())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if type(data) is not tuple or len(data) != 2 or data[0] != key:
        return None
    bundle: dict[str, Any] = data[1]
    return bundle


def _write(cache: str, key: tuple[Any, ...], bundle: dict[str, Any]) -> None:
    from mpcov.rewrite import write_cache_file

    write_cache_file(cache, marshal.dumps((key, bundle)))
