"""Importing measured modules with probes, from a cache.

This is the measured-process side of :mod:`mpcov.probes` (branch probes,
either core, branch mode) and :mod:`mpcov.lineprobes` (line probes, the
``probes`` core of CPython 3.11). The core asks the import system for probed
code: the
:class:`ProbeLoader` hook replaces ``SourceFileLoader.get_code`` so that a
measured ``.py`` file compiles with its probes, and records the file's witness
tables (which arcs each line and each probe imply). Code objects it did not
make (a script run as ``python script.py``, code from ``exec``) are measured
by the core's slower full-arc recorder instead.

A probed module costs a parse, a rewrite and a compile, so the result is
cached (marshal) under the cache directory, keyed by the file's path,
modification time and size, the interpreter's bytecode magic and mpcov's
version. Cache hits import nothing: only builtins are used here; the
rewriting itself (:mod:`mpcov.probes`, with ``ast``) is imported on a miss.
A cache that cannot be read or written is skipped, never an error.
"""

from __future__ import annotations

import marshal
import os
import sys
import time

import mpcov

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import CodeType
    from typing import Any

    Witnesses = dict[int | tuple[int, int], tuple[tuple[int, int], ...]]

#: Version of the cache files' layout and of the probes' meaning.
#: 1: (format, version, magic, path, mtime_ns, size, code, by_line, by_probe)
#: 2: version is (mpcov version, the rewriting modules' sizes and mtimes)
#: 3: (format, version, key, code, by_line, by_probe); the key may be longer
#:    than (magic, path, mtime_ns, size) for a flavour (pytest's rewriting)
CACHE_FORMAT = 3

#: The modules whose code decides what a probed file holds.
_REWRITERS = ("probes.py", "arcs.py", "analysis.py", "lineprobes.py", "cores/lineprobe.py")
_stamp: tuple[Any, ...] | None = None


def _rewriter_stamp() -> tuple[Any, ...]:
    """mpcov's version and the size and mtime of the modules that rewrite:
    cached probes are used only by the code that made them, so a changed
    mpcov (an upgrade, a checkout installed again) never reads stale ones."""
    global _stamp
    if _stamp is None:
        here = os.path.dirname(mpcov.__file__ or "")
        files: list[tuple[int, int]] = []
        for name in _REWRITERS:
            try:
                st = os.stat(os.path.join(here, name))
                files.append((st.st_size, st.st_mtime_ns))
            except OSError:
                files.append((-1, -1))
        _stamp = (mpcov.__version__, tuple(files))
    return _stamp

_external: Any = sys.modules["_frozen_importlib_external"]


class Flavour:
    """Another way to compile probed files (for :mod:`mpcov.pytest_probes`).

    `compiler(raw)` returns the function that turns a file's probed syntax
    tree into its code (`raw`: the file's bytes); `key` joins the cache key
    (whatever else that code depends on) and `tag` the cache file's name.
    """

    tag = ""
    key: tuple[Any, ...] = ()

    def compiler(self, raw: bytes) -> Callable[[Any], CodeType]:
        raise NotImplementedError


def _main_module(path: str) -> Any:
    """The main module (``__main__``, or a spawn worker's ``__mp_main__``) if it
    was loaded from `path`."""
    for name in ("__main__", "__mp_main__"):
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__file__", None) == path:
            return module
    return None


def _same_code(old: CodeType, new: CodeType) -> bool:
    """Is `new` `old` compiled with probes (same names, constants, closure)?
    Line probes add a function constant (the probe) and may add the name
    ``BaseException`` (a last ``except`` clause of their own)."""
    code_type = type(old)
    function_type = type(_same_code)
    names = new.co_names
    if "BaseException" not in old.co_names:
        names = tuple(name for name in names if name != "BaseException")
    return (
        old.co_names == names
        and old.co_varnames == new.co_varnames
        and old.co_freevars == new.co_freevars
        and old.co_cellvars == new.co_cellvars
        and old.co_argcount == new.co_argcount
        and old.co_kwonlyargcount == new.co_kwonlyargcount
        and old.co_flags == new.co_flags
        and [c for c in old.co_consts if type(c) is not code_type]
        == [c for c in new.co_consts if type(c) not in (code_type, function_type)]
    )


def _swap_code(
    namespace: dict[str, Any],
    twins: dict[tuple[str, int], CodeType],
    path: str,
    module_name: str,
    probed_ids: set[int],
) -> None:
    """Give the functions found in `namespace` (and in the classes defined there)
    their probed twins' code."""
    function_type = type(_swap_code)
    todo = list(namespace.values())
    seen: set[int] = set()
    while todo:
        value = todo.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if isinstance(value, type):
            if getattr(value, "__module__", None) == module_name:
                todo.extend(vars(value).values())
            continue
        if isinstance(value, (staticmethod, classmethod)):
            todo.append(value.__func__)
            continue
        if isinstance(value, property):
            todo.extend(f for f in (value.fget, value.fset, value.fdel) if f is not None)
            continue
        if type(value) is not function_type:
            continue
        wrapped = getattr(value, "__wrapped__", None)
        if wrapped is not None:
            todo.append(wrapped)
        old = value.__code__
        if old.co_filename != path or id(old) in probed_ids:
            continue
        new = twins.get((old.co_qualname, old.co_firstlineno))
        if new is not None and _same_code(old, new):
            value.__code__ = new


_PYTEST_REWRITE = "_pytest.assertion.rewrite"
_DIGEST_PRIME = 4294967291  # the largest prime below 2**32: an 8-hex-digit digest


def write_cache_file(path: str, data: bytes) -> None:
    """Replace cache file `path` with `data` at once (readers see the old file
    or the new one, never part of it); a cache that cannot be written is no error."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        try:
            os.remove(tmp)
        except OSError:
            pass


def default_cache_dir() -> str:
    """``$MPCOV_CACHE_DIR``, else ``$XDG_CACHE_HOME/mpcov``, else ``~/.cache/mpcov``."""
    explicit = os.environ.get("MPCOV_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mpcov")


class ProbeLoader:
    """Compiles measured modules with probes; remembers their witness tables.

    `wanted(path)` says whether a file is measured; `cache_dir` is where
    probed code is cached (None: no cache); `warn(message)` reports a file
    that could not be probed (once per file). `kind` is ``branch`` (branch
    probes, :mod:`mpcov.probes`), ``lines`` (the line probes of the
    ``probes`` core, :mod:`mpcov.lineprobes`, which need no witnesses) or
    ``branch+lines`` (both: the probes core in branch mode); a core using
    line probes sets `finish`, which turns code as cached into the code that
    runs (its probe function in place of the placeholder).
    """

    def __init__(
        self,
        wanted: Callable[[str], bool],
        cache_dir: str | None,
        warn: Callable[[str], None],
        kind: str = "branch",
    ) -> None:
        self._wanted = wanted
        self._cache_dir = cache_dir
        self._warn = warn
        self.kind = kind
        self.finish: Callable[[CodeType], CodeType] | None = None
        self._runpy_wait: Callable[[], None] | None = None
        self._runpy_undo: Callable[[], None] | None = None
        #: filename -> (line witnesses, probe witnesses)
        self.tables: dict[str, tuple[Witnesses, Witnesses]] = {}
        #: ids of every probed code object (kept alive by `_modules`)
        self.code_ids: set[int] = set()
        self._modules: list[CodeType] = []
        self._real_get_code: Any = None
        self._own_get_code: Any = None
        # Main-module files: probed code by (qualified name, first line); None
        # when the file cannot be adopted.
        self._adopted: dict[str, dict[tuple[str, int], CodeType] | None] = {}
        self._started_ns = time.time_ns()
        self._pytest_wait: Callable[[], None] | None = None
        self._pytest_undo: Callable[[], None] | None = None

    # -- the import hook --------------------------------------------------------

    def install(self) -> None:
        """Make ``SourceFileLoader`` compile measured files with probes."""
        loader_class = _external.SourceFileLoader
        if self._real_get_code is not None:
            return
        # get_code is inherited from SourceLoader: shadow it, and delete the
        # shadow to undo (unless the class had one of its own).
        self._own_get_code = loader_class.__dict__.get("get_code")
        real = self._real_get_code = loader_class.get_code
        probed = self.probed_code

        def get_code(loader: Any, fullname: str) -> Any:
            try:
                path = loader.get_filename(fullname)
            except Exception:
                path = None
            if path is not None:
                code = probed(path)
                if code is not None:
                    return code
            return real(loader, fullname)

        get_code.__doc__ = real.__doc__
        loader_class.get_code = get_code
        # pytest compiles test modules itself: probe them as it does so.
        rewriting = sys.modules.get(_PYTEST_REWRITE)
        if rewriting is not None:
            self._patch_pytest(rewriting)
        else:
            from mpcov.lifecycle import after_import  # (loaded already)

            self._pytest_wait = after_import(_PYTEST_REWRITE, self._patch_pytest)
        if self.kind != "branch":
            # runpy.run_path compiles the file itself (a spawn worker's main
            # module): line probes have no other way to see that code. runpy
            # is frozen, so the import watch cannot see it: multiprocessing's
            # spawn module, which imports it, is watched instead (another
            # user of run_path is measured through the core's fallback).
            if "runpy" in sys.modules:
                self._patch_runpy()
            else:
                from mpcov.lifecycle import after_import

                self._runpy_wait = after_import(
                    "multiprocessing.spawn", lambda _spawn: self._patch_runpy()
                )

    def _patch_runpy(self) -> None:
        self._runpy_wait = None
        module: Any = sys.modules.get("runpy")
        real = getattr(module, "_get_code_from_file", None)
        if (
            self._real_get_code is None
            or self._runpy_undo is not None
            or getattr(getattr(real, "__code__", None), "co_argcount", 0) != 2
        ):
            return  # not 3.11's _get_code_from_file(run_name, fname) -> (code, fname)
        probed = self.probed_code
        assert real is not None

        def _get_code_from_file(*args: Any) -> Any:
            fname = args[-1] if args else None
            if isinstance(fname, str) and os.path.isabs(fname):
                code = probed(fname)
                if code is not None:
                    return code, fname
            return real(*args)

        def undo() -> None:
            if module._get_code_from_file is _get_code_from_file:
                module._get_code_from_file = real

        module._get_code_from_file = _get_code_from_file
        self._runpy_undo = undo

    def _patch_pytest(self, module: Any) -> None:
        self._pytest_wait = None
        if self._real_get_code is None or self._pytest_undo is not None:
            return
        try:
            from mpcov.pytest_probes import patch

            self._pytest_undo = patch(module, self)
        except Exception as exc:
            self._warn(f"pytest's test modules are measured the slow way ({exc!r})")

    def uninstall(self) -> None:
        """Put the import system back as it was."""
        if self._real_get_code is None:
            return
        if self._own_get_code is None:
            del _external.SourceFileLoader.get_code
        else:
            _external.SourceFileLoader.get_code = self._own_get_code
        self._real_get_code = None
        # Stop waiting for pytest and runpy, or undo their patches.
        calls = (self._pytest_wait, self._pytest_undo, self._runpy_wait, self._runpy_undo)
        self._pytest_wait = self._pytest_undo = self._runpy_wait = self._runpy_undo = None
        for call in calls:
            if call is not None:
                call()

    def wants(self, path: str) -> bool:
        """Is `path` a measured Python source file (one to probe)?"""
        return path.endswith(".py") and self._wanted(path)

    def probed_code(self, path: str, flavour: Flavour | None = None) -> CodeType | None:
        """The probed module code of `path`, or None to compile it as usual
        (not measured, not Python source, or it cannot be probed).

        `flavour` compiles it another way (pytest's assertion rewriting): its
        `compiler` turns the probed syntax tree into code, and its `key` and
        `tag` keep that code apart from the plain one in the cache.
        """
        if not self.wants(path):
            return None
        try:
            stat = os.stat(path)
            key: tuple[Any, ...] = (_external.MAGIC_NUMBER, path, stat.st_mtime_ns, stat.st_size)
            if flavour is not None:
                key += flavour.key
            entry = self._read_cache(path, key, flavour)
            if entry is None:
                entry = self._probe(path, key, flavour)
        except (SyntaxError, OSError):
            return None  # the usual compile reports it, as usual
        except Exception as exc:
            self._warn(f"no probes in {path} ({exc!r}); measuring it the slow way")
            return None
        code, by_line, by_probe = entry
        if self.finish is not None:
            code = self.finish(code)
        self.register(path, code, by_line, by_probe)
        return code

    def register(self, path: str, code: CodeType, by_line: Witnesses, by_probe: Witnesses) -> None:
        """Remember probed module `code` of `path` and its witness tables."""
        self.tables[path] = (by_line, by_probe)
        self._modules.append(code)
        ids = self.code_ids
        todo = [code]
        while todo:
            one = todo.pop()
            ids.add(id(one))
            todo.extend(c for c in one.co_consts if type(c) is type(code))

    # -- probing and caching ---------------------------------------------------

    def _probe(
        self, path: str, key: tuple[Any, ...], flavour: Flavour | None
    ) -> tuple[CodeType, Witnesses, Witnesses]:
        with open(path, "rb") as f:
            raw = f.read()
        then = None if flavour is None else flavour.compiler(raw)
        source = _external.decode_source(raw)
        entry: tuple[CodeType, Witnesses, Witnesses]
        if self.kind == "lines":
            from mpcov.lineprobes import probe_lines

            entry = (probe_lines(source, path, then), {}, {})
        else:
            from mpcov.probes import probe_source

            if self.kind == "branch+lines":  # branch probes, then line probes
                from mpcov.lineprobes import compiler_with_line_probes

                then = compiler_with_line_probes(then, path)
            entry = probe_source(source, path, then)
        self._write_cache(path, key, flavour, entry)
        return entry

    def _cache_path(self, path: str, flavour: Flavour | None) -> str | None:
        if self._cache_dir is None:
            return None
        name = os.path.basename(path)[:-3]
        tag = sys.implementation.cache_tag
        if self.kind != "branch":
            tag += "." + self.kind.replace("+", "-")
        if flavour is not None:
            tag += "." + flavour.tag
        # Tells same-named files apart; any stable digest does (the entry's
        # key holds the whole path). One big-int remainder, computed in C: no
        # zlib to load, no loop over the bytes in Python, on every import.
        digest = int.from_bytes(path.encode("utf-8", "surrogateescape"), "little") % _DIGEST_PRIME
        return os.path.join(self._cache_dir, f"{name}.{digest:08x}.{tag}.probes")

    def _read_cache(
        self, path: str, key: tuple[Any, ...], flavour: Flavour | None
    ) -> tuple[CodeType, Witnesses, Witnesses] | None:
        cache = self._cache_path(path, flavour)
        if cache is None:
            return None
        try:
            with open(cache, "rb") as f:
                data = marshal.loads(f.read())
        except (OSError, EOFError, ValueError, TypeError):
            return None
        if (
            type(data) is not tuple
            or len(data) != 6
            or data[:3] != (CACHE_FORMAT, _rewriter_stamp(), key)
        ):
            return None
        return data[3], data[4], data[5]

    def _write_cache(
        self,
        path: str,
        key: tuple[Any, ...],
        flavour: Flavour | None,
        entry: tuple[CodeType, Witnesses, Witnesses],
    ) -> None:
        cache = self._cache_path(path, flavour)
        if cache is None:
            return
        write_cache_file(cache, marshal.dumps((CACHE_FORMAT, _rewriter_stamp(), key, *entry)))

    # -- the main module ------------------------------------------------------------

    def adopt(self, code: CodeType) -> None:
        """`code` runs unprobed: if it belongs to the main module (a script the
        interpreter compiled itself, or a spawn worker's ``__mp_main__``), give
        that module's functions and methods probed code for their next calls.

        The frames already running keep their code (the core records them
        completely). A script edited since this process started is left alone,
        and so is any function whose probed twin does not match it.
        """
        path = code.co_filename
        module = _main_module(path)
        if module is None:
            return
        twins = self._adopted.get(path, {})
        if path not in self._adopted:
            twins = self._adopted[path] = self._twins(path)
        if twins:
            _swap_code(vars(module), twins, path, module.__name__, self.code_ids)

    def _twins(self, path: str) -> dict[tuple[str, int], CodeType] | None:
        try:
            if os.stat(path).st_mtime_ns >= self._started_ns:
                return None  # edited since it was compiled: no longer the same code
        except OSError:
            return None
        probed = self.probed_code(path)
        if probed is None:
            return None
        todo, twins = [probed], {}
        while todo:
            one = todo.pop()
            twins[one.co_qualname, one.co_firstlineno] = one
            todo.extend(c for c in one.co_consts if type(c) is type(probed))
        return twins

    def after_fork_in_child(self) -> None:
        """Nothing to forget: probed code and tables are the same in the child."""
