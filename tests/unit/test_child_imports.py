"""Modules that run in every measured process import only builtin modules.

Start-up cost is paid by every child process a test suite starts: ``re``,
``typing``, ``dataclasses`` and ``collections.abc`` each cost milliseconds, and
psutil, filelock, sqlite3, json, argparse and ast have no business there.
Type-only imports sit behind ``TYPE_CHECKING = False`` and are not executed.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import sys
from pathlib import Path

import pytest

# What the child-side modules may import at run time, each justified by need.
ALLOWED = {
    "os", "sys", "marshal", "time", "atexit", "_signal", "_thread", "_posixsubprocess",
    "threading",  # settrace core only, and only when threading is already loaded or on 3.13+
    "zlib",  # imported lazily, for the checksum of a fragment record over 2 KB
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


# -- the child modules' code, compiled by the parent (mpcov.preload) ---------------

CHILD_PROBE = """\
import sys
spawn_patch_loaded = "_posixsubprocess" in sys.modules
future_loaded = "__future__" in sys.modules
import inspect, json
import mpcov.bootstrap as b
rec = b.activate("test")
loaded = {name: "preloaded" if "get_code" in vars(m.__loader__) else type(m.__loader__).__name__
          for name, m in sys.modules.items()
          if name.startswith("mpcov.") and name not in ("mpcov.bootstrap", "mpcov.manifest")}
lifecycle = sys.modules["mpcov.lifecycle"]
print(json.dumps({
    "measuring": rec is not None,
    "loaded": loaded,
    "finders": [type(f).__name__ for f in sys.meta_path],
    "source_ok": "class Recorder" in inspect.getsource(lifecycle),
    "file": lifecycle.__file__,
    "cached": lifecycle.__cached__,
    "package_path": list(sys.modules["mpcov.cores"].__path__),
    "spawn_patch_loaded": spawn_patch_loaded,
    "future_loaded": future_loaded,
}))
"""


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPCOV_CACHE_DIR", str(tmp_path / "cache"))


def _child_with(tmp_path: Path, edit: object = None, branch: bool = False) -> dict[str, object]:
    """Start a child measuring under a fresh manifest (`edit` changes its
    child_code first) and say how it loaded mpcov's modules."""
    import json
    import os
    import subprocess
    import sys

    from mpcov.api import prepare_run
    from mpcov.config import Config
    from mpcov.manifest import read_manifest, write_manifest

    config = Config(data_file=str(tmp_path / ".mpcov"), branch=branch)
    prepared = prepare_run(config, cwd=str(tmp_path), environ={}, warn=pytest.fail)
    if callable(edit):
        manifest = read_manifest(prepared.manifest_path)
        edit(manifest["child_code"])
        write_manifest(prepared.manifest_path, {k: v for k, v in manifest.items()
                                                if k != "format"})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MPCOV_", "COVERAGE_"))}
    env["MPCOV_RUN"] = prepared.manifest_path
    env["MPCOV_CACHE_DIR"] = str(tmp_path / "probe-cache")
    out = subprocess.run([sys.executable, "-c", CHILD_PROBE], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "mpcov:" not in out.stderr, out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    assert result["measuring"] is True
    return result


@pytest.mark.parametrize("branch", [False, True], ids=["line", "branch"])
def test_a_child_imports_its_modules_from_the_manifest(tmp_path: Path, branch: bool) -> None:
    import mpcov.lifecycle
    from mpcov.cores import choose_core
    from mpcov.preload import BRANCH, COMMON, CORES

    result = _child_with(tmp_path, branch=branch)
    loaded = result["loaded"]
    assert isinstance(loaded, dict)
    core_module = CORES[choose_core(None, branch)[0]][0]  # (the others may not be needed)
    expected = set(COMMON) | {core_module} | (set(BRANCH) if branch else set())
    assert expected <= set(loaded)
    assert {loaded[name] for name in expected} == {"preloaded"}
    # Ordinary source modules for everyone else, and the finder is gone.
    assert "SimpleNamespace" not in result["finders"]
    assert result["source_ok"] is True
    assert result["file"] == mpcov.lifecycle.__file__
    assert result["cached"] == mpcov.lifecycle.__cached__
    assert result["package_path"] == list(sys.modules["mpcov.cores"].__path__)
    # A process that starts no children does not load _posixsubprocess (an
    # extension module) for mpcov's sake.
    assert result["spawn_patch_loaded"] is False
    # Nor __future__: the child modules' `from __future__ import annotations`
    # is a compiler flag in the preloaded code.
    assert result["future_loaded"] is False


def test_a_changed_module_is_imported_the_usual_way(tmp_path: Path) -> None:
    def stale(bundle: dict[str, object]) -> None:
        modules = bundle["modules"]
        assert isinstance(modules, dict)
        path, _mtime, size, code = modules["mpcov.sigwatch"]
        modules["mpcov.sigwatch"] = (path, 1, size, code)  # as if edited since

    loaded = _child_with(tmp_path, stale)["loaded"]
    assert isinstance(loaded, dict)
    assert loaded["mpcov.sigwatch"] == "SourceFileLoader"
    assert loaded["mpcov.fragment"] == "preloaded"


@pytest.mark.parametrize("key", ["magic", "optimize", "dir"])
def test_code_of_another_interpreter_or_mpcov_is_not_used(tmp_path: Path, key: str) -> None:
    other = {"magic": b"\x00\x00\r\n", "optimize": 2, "dir": "/elsewhere/mpcov"}

    def foreign(bundle: dict[str, object]) -> None:
        bundle[key] = other[key]

    loaded = _child_with(tmp_path, foreign)["loaded"]
    assert isinstance(loaded, dict)
    assert set(loaded.values()) == {"SourceFileLoader"}


def test_a_manifest_without_child_code_still_measures(tmp_path: Path) -> None:
    loaded = _child_with(tmp_path, lambda bundle: bundle.clear())["loaded"]
    assert isinstance(loaded, dict)
    assert "mpcov.lifecycle" in loaded and set(loaded.values()) == {"SourceFileLoader"}


def test_the_compiled_modules_are_cached_and_checked(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from mpcov import preload

    cache = str(tmp_path / "code-cache")
    first = preload.child_code("monitoring", False, cache)
    assert set(first["modules"]) == {*preload.COMMON, "mpcov.cores.monitoring"}

    def no_compiling(source: bytes, path: str) -> None:
        raise AssertionError(f"compiled {path} again instead of reading the cache")

    with monkeypatch.context() as m:
        m.setattr(preload, "_compile", no_compiling)
        second = preload.child_code("monitoring", False, cache)
    assert second == first  # (code objects compare by their contents)
    # A module whose size or modification time differs is compiled again.
    path = first["modules"]["mpcov.select"][0]
    real_stat = os.stat

    def touched(p: str, *args: object, **kwargs: object) -> os.stat_result:
        st = real_stat(p, *args, **kwargs)  # type: ignore[arg-type]
        if p == path:
            return os.stat_result((*st[:8], st.st_mtime + 1, st[9]))
        return st

    with monkeypatch.context() as m:
        m.setattr(preload.os, "stat", touched)
        calls: list[str] = []
        real_compile = preload._compile
        m.setattr(preload, "_compile", lambda src, p: calls.append(p) or real_compile(src, p))
        preload.child_code("monitoring", False, cache)
    assert path in calls
    # A damaged cache file is no error.
    for entry in os.listdir(cache):
        with open(os.path.join(cache, entry), "wb") as f:
            f.write(b"\x00garbage")
    assert preload.child_code("monitoring", False, cache) == first


def test_the_future_import_becomes_a_flag_with_lines_unchanged() -> None:
    from mpcov import preload

    source = (b'"""doc"""\nfrom __future__ import annotations\n\n'
              b"def f(x: Missing) -> None:\n    return x\n")
    code = preload._compile(source, "m.py")
    namespace: dict[str, object] = {}
    exec(code, namespace)
    f = namespace["f"]
    assert f.__annotations__ == {"x": "Missing", "return": "None"}  # type: ignore[attr-defined]
    assert "annotations" not in namespace
    assert f.__code__.co_firstlineno == 4  # type: ignore[attr-defined]
    assert "__future__" not in code.co_names


def test_the_import_watch_leaves_frozen_modules_frozen() -> None:
    """Watching a module the interpreter has frozen in would load it from
    source: the watch lets the frozen importer have it (and never fires)."""
    import subprocess
    import sys

    program = (
        "import _imp, sys\n"
        "from mpcov.lifecycle import after_import\n"
        "fired = []\n"
        "assert 'runpy' not in sys.modules and _imp.find_frozen('runpy') is not None\n"
        "after_import('runpy', fired.append)\n"
        "after_import('json', fired.append)\n"
        "import runpy, json\n"
        "print(runpy.__spec__.origin, [m.__name__ for m in fired])\n"
    )
    out = subprocess.run([sys.executable, "-I", "-c", program], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["frozen", "['json']"]
