"""Branch coverage with probes: the rewrite, witnesses, the probe loader, both cores.

The yardstick is coverage.py: for each program, the branches mpcov reports
taken and missing (after `normalize_executed`) must be coverage.py's, the
executed lines too. Programs come from the arcs comparison and from
`progen`, which writes random programs full of branches.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import textwrap
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Every core measures branches with probes: settrace, and the default one,
# monitoring from 3.12, line probes (the probes core) on 3.11.
CORES = ["settrace", "monitoring"] if sys.version_info >= (3, 12) else ["settrace", "probes"]
DEFAULT_CORE = CORES[-1]
#: 3.11's compiler gives the instructions it makes up (a ``finally`` copy's
#: re-raise, an implicit ``return None``) the line of the code compiled just
#: before them, which a probe can change (docs/branches.md).
MADE_UP_LINES = sys.version_info < (3, 12)

coverage = pytest.importorskip("coverage", minversion="7.17")

from progen import make_program  # noqa: E402
from test_arcs_vs_coveragepy import PARTIAL, PROGRAMS, _tracing_is_free  # noqa: E402
from test_cores import _drained_in_forked_child, _swept_after_one_call  # noqa: E402

from mpcov.analysis import DEFAULT_EXCLUDE, analyze_source, read_source  # noqa: E402
from mpcov.arcs import analyze_arcs, normalize_executed  # noqa: E402
from mpcov.cores import make_core  # noqa: E402
from mpcov.probes import PROBE_BASE, probe_source  # noqa: E402
from mpcov.rewrite import ProbeLoader  # noqa: E402

Arc = tuple[int, int]


@pytest.fixture(autouse=True)
def _free_tracer() -> None:
    if not _tracing_is_free():
        pytest.skip("the test suite is being traced; these tests need the tracer")


def coverage_report(path: Path, tmp_path: Path) -> dict[str, Any]:
    """coverage.py's JSON report of `path` run as ``__main__`` with branch coverage."""
    cov = coverage.Coverage(branch=True, data_file=None, config_file=False)
    try:
        cov.start()
        try:
            runpy.run_path(str(path), run_name="__main__")
        finally:
            cov.stop()
        out = tmp_path / "coverage.json"
        cov.json_report(morfs=[str(path)], outfile=str(out))
    finally:
        cov.get_data().close(force=True)
    report: dict[str, Any] = next(iter(json.loads(out.read_text())["files"].values()))
    return report


class Measured:
    """A monitoring core in branch mode measuring one file, with its probe loader."""

    def __init__(self, path: Path, cache_dir: Path | None = None,
                 core: str = DEFAULT_CORE) -> None:
        self.target = str(path)
        self.warnings: list[str] = []
        wanted: Callable[[str], bool] = lambda f: f == self.target  # noqa: E731
        self.probes = ProbeLoader(wanted, str(cache_dir) if cache_dir else None,
                                  self.warnings.append,
                                  "branch+lines" if core == "probes" else "branch")
        self.notified: list[int] = []
        self.core: Any = make_core(core, wanted, lambda: self.notified.append(1),
                                   branch=True, probes=self.probes)

    def run(self, probed: bool = True) -> tuple[set[int], set[Arc]]:
        """Run the file as ``__main__`` (compiled with probes, or plainly): lines, arcs."""
        self.core.start()
        try:
            code = self.probes.probed_code(self.target) if probed else None
            if code is None:
                code = compile(Path(self.target).read_text(), self.target, "exec")
            exec(code, {"__name__": "__main__", "__file__": self.target})
        finally:
            self.core.stop()
        lines, arcs = self.core.drain()
        return lines.get(self.target, set()), arcs.get(self.target, set())


def made_up_lines(path: Path) -> set[int]:
    """Lines that hold, in `path` compiled plainly, an instruction the compiler
    made up: a re-raise (the end of a ``finally`` or ``with`` copy, an
    ``except``'s cleanup) or a ``return`` of ``None`` that no ``return``
    statement asked for. A tracer sees such a line whenever that instruction
    runs, whether the line's own code ran or not."""
    import ast
    import dis

    source = read_source(str(path))
    returns = {node.lineno for node in ast.walk(ast.parse(source))
               if isinstance(node, ast.Return)}
    found: set[int] = set()
    todo = [compile(source, str(path), "exec")]
    while todo:
        code = todo.pop()
        todo.extend(c for c in code.co_consts if isinstance(c, type(code)))
        before = None
        for ins in dis.get_instructions(code):
            line = ins.positions.lineno if ins.positions else None
            if line and (ins.opname == "RERAISE" or (
                    ins.opname == "RETURN_VALUE" and before is not None
                    and before.opname == "LOAD_CONST" and before.argval is None
                    and line not in returns)):
                found.add(line)
            before = ins
    return found


def check_same_as_coverage(path: Path, lines: set[int], raw: set[Arc],
                           report: dict[str, Any]) -> None:
    """mpcov's judgement of (`lines`, `raw`) is coverage.py's `report`.

    On 3.11 coverage.py may also report a made-up instruction's line that
    probed code runs on another line (:data:`MADE_UP_LINES`), and the arcs into
    it: those lines did not run, mpcov is right to leave them out, and nothing
    else may differ.
    """
    source = read_source(str(path))
    arcs = analyze_arcs(source, str(path), exclude=DEFAULT_EXCLUDE, partial=PARTIAL)
    executed = normalize_executed(raw, arcs)
    analysis = analyze_source(source, str(path))
    if MADE_UP_LINES:
        allowed = made_up_lines(path)
        extra = set(report["executed_lines"]) - set(analysis.executed(lines))
        if extra and extra <= allowed:
            assert set(analysis.executed(lines)) <= set(report["executed_lines"])
            theirs = set(map(tuple, report["executed_branches"]))
            mine = set(arcs.executed_branch_arcs(executed))
            assert mine <= theirs
            assert all(end in extra for _, end in theirs - mine), theirs - mine
            return
    assert sorted(analysis.executed(lines)) == report["executed_lines"]
    assert arcs.missing_arcs(executed) == sorted(map(tuple, report["missing_branches"]))
    assert arcs.executed_branch_arcs(executed) == sorted(map(tuple, report["executed_branches"]))
    summary = report["summary"]
    assert tuple(arcs.totals(executed, analysis.missing(lines))) == (
        summary["num_branches"], summary["num_partial_branches"], summary["missing_branches"],
    )


@pytest.fixture
def program(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    name = request.param
    path = tmp_path / f"prog_{name}.py"
    if isinstance(name, int):
        path.write_text(make_program(name))
    else:
        path.write_text(textwrap.dedent(PROGRAMS[name]))
    yield path


SEEDS = list(range(0, 400, 10))


@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize("program", [*sorted(PROGRAMS), *SEEDS], indirect=True)
def test_probed_code_gives_coveragepys_branches(program: Path, tmp_path: Path, core: str
                                                ) -> None:
    report = coverage_report(program, tmp_path)
    lines, arcs = Measured(program, core=core).run()
    assert all(line < PROBE_BASE for line in lines)
    check_same_as_coverage(program, lines, arcs, report)


@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize("program", [*sorted(PROGRAMS), *SEEDS[:10]], indirect=True)
def test_unprobed_code_gives_coveragepys_branches(program: Path, tmp_path: Path, core: str
                                                  ) -> None:
    """Code the loader did not compile is recorded completely, with the same result."""
    report = coverage_report(program, tmp_path)
    lines, arcs = Measured(program, core=core).run(probed=False)
    check_same_as_coverage(program, lines, arcs, report)


def same_log_probed(seed: int, tmp_path: Path, run_probed: Callable[[Path], Any]) -> None:
    """A `progen` program logs the same results and exceptions run plainly and
    by `run_probed(path)` (which returns the program's namespace)."""
    path = tmp_path / "prog.py"
    source = make_program(seed)
    path.write_text(source)
    plain: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(source, str(path), "exec"), plain)
    assert plain["log"] == run_probed(path)["log"]


def _run_branch_probed(path: Path) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(probe_source(path.read_text(), str(path))[0], namespace)
    return namespace


@pytest.mark.parametrize("seed", range(0, 400, 7))
def test_probes_change_nothing_the_program_does(seed: int, tmp_path: Path) -> None:
    """Same results, same log, same exceptions, with and without probes."""
    same_log_probed(seed, tmp_path, _run_branch_probed)


def test_tracebacks_keep_their_lines(tmp_path: Path) -> None:
    source = textwrap.dedent(
        """\
        def f(x):
            for i in range(3):
                if x: raise ValueError(i)
            while x:
                x -= 1
            match x:
                case 1:
                    pass
            if x == 0:
                raise KeyError(x)
        """
    )
    path = str(tmp_path / "tb.py")

    def failure(code: Any, arg: int) -> list[tuple[int | None, str]]:
        namespace: dict[str, Any] = {}
        exec(code, namespace)
        try:
            namespace["f"](arg)
        except Exception as exc:
            return [(fs.lineno, fs.line or "") for fs in traceback.extract_tb(exc.__traceback__)]
        raise AssertionError("no exception")

    plain = compile(source, path, "exec")
    probed = probe_source(source, path)[0]
    for arg in (0, 1):
        assert failure(plain, arg)[1:] == failure(probed, arg)[1:]


def test_probes_only_add_lines_beyond_the_file() -> None:
    source = "if a:\n    b = 1\nfor x in y: pass\nwhile c: break\n"
    code = probe_source(source, "f.py")[0]
    real = {line for _, _, line in code.co_lines() if line and line < PROBE_BASE}
    assert real == {1, 2, 3, 4}


def test_witnesses_of_a_simple_if() -> None:
    source = "if a:\n    b = 1\nc = 2\n"
    _code, by_line, by_probe = probe_source(source, "f.py")
    assert by_line[2] == ((1, 2),)
    assert list(by_probe.values()) == [((1, 3),)]


def test_a_statement_over_several_lines_witnesses_from_any_of_them() -> None:
    source = "if a:\n    b = (\n        1)\nc = 2\n"
    by_line = probe_source(source, "f.py")[1]
    assert by_line[2] == by_line[3] == ((1, 2),)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring needs Python 3.12+")
def test_lines_mode_core_is_unchanged_by_branch_support(tmp_path: Path) -> None:
    path = tmp_path / "p.py"
    path.write_text("def f(x):\n    if x:\n        return 1\n    return 2\nf(1)\n")
    target = str(path)
    core: Any = make_core("monitoring", lambda f: f == target, lambda: None)
    core.start()
    try:
        exec(compile(path.read_text(), target, "exec"), {})
    finally:
        core.stop()
    assert core.drain() == ({target: {1, 2, 3, 5}}, {})


@pytest.mark.parametrize("core", CORES)
def test_drain_reports_only_new_arcs_and_threads_are_measured(tmp_path: Path, core: str
                                                              ) -> None:
    path = tmp_path / "threads.py"
    path.write_text(textwrap.dedent(
        """\
        import threading

        def work(n):
            if n > 1:
                return n
            return 0

        def run(n):
            t = threading.Thread(target=work, args=(n,))
            t.start()
            t.join()
        """
    ))
    measured = Measured(path, core=core)
    measured.core.start()
    try:
        namespace: dict[str, Any] = {"__name__": "threads"}
        code = measured.probes.probed_code(measured.target)
        assert code is not None
        exec(code, namespace)
        namespace["run"](5)
        lines, arcs = measured.core.drain()
        namespace["run"](5)
        again = measured.core.drain()
        namespace["run"](0)
        new = measured.core.drain()
    finally:
        measured.core.stop()
    target = measured.target
    assert {4, 5} <= lines[target]
    assert (4, 5) in arcs[target]
    assert again == ({}, {})
    assert new == ({target: {6}}, {target: {(4, 6)}})


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("core", CORES)
def test_forked_child_records_its_own_arcs(tmp_path: Path, core: str) -> None:
    path = tmp_path / "forky.py"
    path.write_text("def f(n):\n    if n:\n        return 1\n    return 0\n")
    measured = Measured(path, core=core)
    code = measured.probes.probed_code(measured.target)
    assert code is not None
    reported = _drained_in_forked_child(measured.core, code, measured.target, {}, 1,
                                        child_arg=1)
    assert reported == "[(2, 3)]"


# -- the probe loader and its cache ------------------------------------------------


def _module(tmp_path: Path, text: str = "def f(x):\n    if x:\n        return 1\n") -> Path:
    path = tmp_path / "mod.py"
    path.write_text(text)
    return path


def test_loader_compiles_imports_with_probes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    path = _module(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "mod", raising=False)
    probes = ProbeLoader(lambda f: f == str(path), None, pytest.fail)
    probes.install()
    try:
        import mod  # type: ignore[import-not-found]
    finally:
        probes.uninstall()
        sys.modules.pop("mod", None)
    assert id(mod.f.__code__) in probes.code_ids
    assert str(path) in probes.tables
    lines = {line for _, _, line in mod.f.__code__.co_lines() if line}
    assert any(line >= PROBE_BASE for line in lines)


def test_uninstall_puts_the_import_system_back() -> None:
    loader = sys.modules["_frozen_importlib_external"].SourceFileLoader
    before = loader.get_code
    probes = ProbeLoader(lambda f: True, None, pytest.fail)
    probes.install()
    assert loader.get_code is not before
    probes.uninstall()
    assert loader.get_code is before
    assert "get_code" not in loader.__dict__


def test_pytests_rewriting_is_patched_while_installed_and_put_back() -> None:
    import _pytest.assertion.rewrite as rewriting

    names = ("_rewrite_test", "_read_pyc", "_write_pyc", "rewrite_asserts")
    before = {name: getattr(rewriting, name) for name in names}
    probes = ProbeLoader(lambda f: f.endswith("wanted.py"), None, pytest.fail)
    probes.install()
    try:
        assert rewriting._rewrite_test is not before["_rewrite_test"]
        assert rewriting._rewrite_test.__wrapped__ is before["_rewrite_test"]
        # Files not measured go pytest's way; measured ones skip pytest's cache.
        assert rewriting._read_pyc(Path("other.py"), Path("/nonexistent/x.pyc")) is None
        assert rewriting._read_pyc(Path("wanted.py"), Path("/nonexistent/x.pyc")) is None
    finally:
        probes.uninstall()
    assert {name: getattr(rewriting, name) for name in names} == before


def test_a_pytest_that_differs_is_left_alone() -> None:
    import types

    from mpcov.pytest_probes import patch

    module = types.ModuleType("_pytest.assertion.rewrite")
    module._rewrite_test = module._read_pyc = module.rewrite_asserts = print  # type: ignore[attr-defined]
    probes = ProbeLoader(lambda f: True, None, pytest.fail)
    assert patch(module, probes) is None
    assert module._rewrite_test is print  # type: ignore[attr-defined]


def test_pytests_module_is_patched_once_it_is_imported(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The finder waits for the module, leaves the search to the others
    until then, and leaves ``sys.meta_path`` once it has seen it."""
    import mpcov.rewrite

    (tmp_path / "fake_rewriting.py").write_text("value = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(mpcov.rewrite, "_PYTEST_REWRITE", "fake_rewriting")
    seen: list[Any] = []
    probes = ProbeLoader(lambda f: True, None, pytest.fail)
    monkeypatch.setattr(probes, "_patch_pytest", seen.append)
    probes.install()
    try:
        finder = sys.meta_path[0]
        assert type(finder).__name__ == "_ImportWatch"
        import json.tool  # noqa: F401  (any other import is found as usual)

        assert seen == [] and finder in sys.meta_path
        import fake_rewriting  # type: ignore[import-not-found]

        assert seen == [fake_rewriting] and fake_rewriting.value == 42
        assert finder not in sys.meta_path
    finally:
        probes.uninstall()
        sys.modules.pop("fake_rewriting", None)
    assert all(type(f).__name__ != "_ImportWatch" for f in sys.meta_path)


def test_cache_is_used_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _module(tmp_path)
    cache = tmp_path / "cache"
    first = ProbeLoader(lambda f: True, str(cache), pytest.fail).probed_code(str(path))
    assert first is not None and len(list(cache.iterdir())) == 1

    import mpcov.probes

    def no_probing(*args: object) -> None:
        raise AssertionError("probed again instead of read from the cache")

    monkeypatch.setattr(mpcov.probes, "probe_source", no_probing)
    second = ProbeLoader(lambda f: True, str(cache), pytest.fail)
    assert second.probed_code(str(path)) == first
    assert second.tables[str(path)]
    monkeypatch.undo()
    # An edited file is probed again.
    path.write_text("def f(x):\n    if x:\n        return 2\n    return 3\n")
    third = ProbeLoader(lambda f: True, str(cache), pytest.fail).probed_code(str(path))
    assert third is not None
    (function,) = [c for c in third.co_consts if hasattr(c, "co_lines")]
    assert 4 in {line for _, _, line in function.co_lines()}


def test_cache_of_another_mpcov_is_not_used(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Probes cached by other rewriting code (an upgraded mpcov, a checkout
    installed again at the same version) are made again, not trusted."""
    import mpcov.probes
    import mpcov.rewrite

    path = _module(tmp_path)
    cache = tmp_path / "cache"
    monkeypatch.setattr(mpcov.rewrite, "_stamp", ("0.1.0", ((1, 1), (2, 2), (3, 3))))
    ProbeLoader(lambda f: True, str(cache), pytest.fail).probed_code(str(path))
    monkeypatch.setattr(mpcov.rewrite, "_stamp", None)  # this mpcov's own stamp
    calls: list[str] = []
    real = mpcov.probes.probe_source

    def counted(source: str, name: str, then: Any = None) -> Any:
        calls.append(name)
        return real(source, name, then)

    monkeypatch.setattr(mpcov.probes, "probe_source", counted)
    assert ProbeLoader(lambda f: True, str(cache), pytest.fail).probed_code(str(path))
    assert calls == [str(path)]
    assert ProbeLoader(lambda f: True, str(cache), pytest.fail).probed_code(str(path))
    assert calls == [str(path)]  # and cached again, under this stamp


def test_damaged_or_unwritable_cache_is_no_error(tmp_path: Path) -> None:
    path = _module(tmp_path)
    cache = tmp_path / "cache"
    ProbeLoader(lambda f: True, str(cache), pytest.fail).probed_code(str(path))
    (entry,) = cache.iterdir()
    entry.write_bytes(b"\x00garbage")
    assert ProbeLoader(lambda f: True, str(cache), pytest.fail).probed_code(str(path))
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    assert ProbeLoader(lambda f: True, str(blocked), pytest.fail).probed_code(str(path))


def test_unprobeable_files_are_left_to_the_usual_compile(tmp_path: Path) -> None:
    warnings: list[str] = []
    bad = _module(tmp_path, "def f(:\n")
    probes = ProbeLoader(lambda f: True, None, warnings.append)
    assert probes.probed_code(str(bad)) is None  # the import itself reports it
    assert probes.probed_code(str(tmp_path / "missing.py")) is None
    assert warnings == []
    assert ProbeLoader(lambda f: False, None, pytest.fail).probed_code(str(bad)) is None


def _judged(path: Path, lines: set[int], raw: set[Arc]) -> tuple[list[Arc], list[Arc], list[int]]:
    """(executed branch arcs, missing branch arcs, executed statements) as reported."""
    source = read_source(str(path))
    arcs = analyze_arcs(source, str(path), exclude=DEFAULT_EXCLUDE, partial=PARTIAL)
    executed = normalize_executed(raw, arcs)
    statements = sorted(analyze_source(source, str(path)).executed(lines))
    return arcs.executed_branch_arcs(executed), arcs.missing_arcs(executed), statements


@pytest.mark.parametrize("program", [*sorted(PROGRAMS), *SEEDS[::4]], indirect=True)
def test_both_cores_report_the_same_branches(program: Path) -> None:
    """The settrace core recording arcs itself and the default core with probes
    agree on every program."""
    target = str(program)
    settrace: Any = make_core("settrace", lambda f: f == target, lambda: None, branch=True)
    settrace.start()
    try:
        runpy.run_path(target, run_name="__main__")
    finally:
        settrace.stop()
    traced_lines, traced_arcs = settrace.drain()
    lines, arcs = Measured(program).run()
    probed = _judged(program, lines, arcs)
    traced = _judged(program, traced_lines[target], traced_arcs[target])
    if MADE_UP_LINES and probed != traced:
        # Only lines that plain code reaches through a made-up instruction
        # (see check_same_as_coverage), and the arcs into them, may differ.
        extra = set(traced[2]) - set(probed[2])
        assert extra and extra <= made_up_lines(program)
        assert set(probed[2]) <= set(traced[2])
        assert set(probed[0]) <= set(traced[0])
        assert all(end in extra for _, end in set(traced[0]) - set(probed[0]))
        return
    assert probed == traced


def _main_module(path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    import types

    module = types.ModuleType("__mp_main__")
    module.__file__ = str(path)
    # As the interpreter compiles a script: inheriting no __future__ flags.
    exec(compile(path.read_text(), str(path), "exec", dont_inherit=True), vars(module))
    monkeypatch.setitem(sys.modules, "__mp_main__", module)
    return module


SCRIPT = "class K:\n    def m(self, x):\n        if x:\n            return 1\n\ndef f(x):\n" \
         "    if x:\n        return 2\n"


def test_main_module_functions_get_probed_code(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "script.py"
    path.write_text(SCRIPT)
    os.utime(path, ns=(0, 0))
    module = _main_module(path, monkeypatch)
    probes = ProbeLoader(lambda f: True, None, pytest.fail)
    before = module.f.__code__
    probes.adopt(before)
    assert id(module.f.__code__) in probes.code_ids
    assert id(module.K.m.__code__) in probes.code_ids
    assert module.f(1) == 2 and module.K().m(1) == 1


def test_an_edited_main_script_is_left_alone(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "script.py"
    path.write_text(SCRIPT)
    module = _main_module(path, monkeypatch)
    probes = ProbeLoader(lambda f: True, None, pytest.fail)
    path.write_text(SCRIPT.replace("return 2", "return 3"))  # newer than the process
    probes.adopt(module.f.__code__)
    assert module.f(1) == 2 and id(module.f.__code__) not in probes.code_ids


def test_settrace_sweeps_unprobed_code_it_recorded_the_arc_way(tmp_path: Path) -> None:
    """Code compiled without probes (exec of a string) is recorded by the
    settrace core the arc way; its cache lets such code objects go too."""
    target = str(tmp_path / "made.py")
    probes = ProbeLoader(lambda f: f == target, None, pytest.fail)
    core: Any = make_core("settrace", lambda f: f == target, lambda: None,
                          branch=True, probes=probes)
    source = "def f(x):\n    if x:\n        return 1\n    return 2\n"
    _swept_after_one_call(core, source, target)
    lines, arcs = core.drain()
    assert lines[target] == {1, 2, 3}
    assert {(2, 3), (3, -1)} <= arcs[target]
