"""The probes core (CPython 3.11): self-removing line probes.

The yardstick is the settrace core, which records the line events of plain
code: the probes core, on probed code, must record the same lines (up to
the statement they belong to), run each probe once, change nothing the
program does, and fall back to tracing for measured code it did not probe.
"""

from __future__ import annotations

import os
import runpy
import sys
import textwrap
import traceback
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(
    sys.version_info[:2] != (3, 11) or sys.implementation.name != "cpython",
    reason="the probes core is for CPython 3.11 (3.12+ measures with sys.monitoring)",
)

from progen import make_program  # noqa: E402
from test_arcs_vs_coveragepy import PROGRAMS  # noqa: E402
from test_cores import EXPECTED, PROGRAM, _drained_in_forked_child  # noqa: E402

from mpcov.analysis import analyze_source, read_source  # noqa: E402
from mpcov.cores import make_core  # noqa: E402
from mpcov.lineprobes import probe_lines  # noqa: E402
from mpcov.rewrite import ProbeLoader  # noqa: E402


class Probed:
    """A probes core measuring `targets`, with its probe loader."""

    def __init__(self, *targets: Path) -> None:
        self.targets = {str(t) for t in targets}
        self.warnings: list[str] = []
        self.notified: list[int] = []
        wanted: Callable[[str], bool] = lambda f: f in self.targets  # noqa: E731
        self.loader = ProbeLoader(wanted, None, self.warnings.append, "lines")
        self.core: Any = make_core("probes", wanted, lambda: self.notified.append(1),
                                   probes=self.loader)

    def code(self, path: Path) -> types.CodeType:
        code = self.loader.probed_code(str(path))
        assert code is not None, self.warnings
        return code

    def run(self, path: Path, namespace: dict[str, Any] | None = None) -> set[int]:
        """Run `path`, compiled with probes, as a module: the lines recorded."""
        self.core.start()
        try:
            exec(self.code(path), {"__name__": "measured"} if namespace is None else namespace)
        finally:
            self.core.stop()
        return self.core.drain()[0].get(str(path), set())


def settrace_lines(path: Path) -> set[int]:
    """The lines the settrace core records running plain `path`."""
    target = str(path)
    core: Any = make_core("settrace", lambda f: f == target, lambda: None)
    code = compile(path.read_text(), target, "exec")
    core.start()
    try:
        exec(code, {"__name__": "measured"})
    finally:
        core.stop()
    return core.drain()[0].get(target, set())


def test_records_exactly_the_executed_lines(tmp_path: Path) -> None:
    """Every statement that ran (in all threads), nothing else, and no tracing."""
    path = tmp_path / "prog.py"
    path.write_text(PROGRAM)
    probed = Probed(path)
    lines = _statements(path, probed.run(path))
    expected = _statements(path, EXPECTED)  # (a comprehension's second line is its statement's)
    assert (expected - lines, lines - expected) == (set(), set())
    assert probed.core._fallback is None
    assert probed.notified


def _statements(path: Path, lines: set[int]) -> set[int]:
    return set(analyze_source(read_source(str(path)), str(path)).executed(lines))


@pytest.mark.parametrize("name", [*sorted(PROGRAMS), *range(0, 400, 9)])
def test_same_statements_as_the_settrace_core(name: str | int, tmp_path: Path) -> None:
    """The statements reported run are those the line events of plain code
    show, but for a line 3.11 gives an instruction it makes up (see
    made_up_lines): plain code can show it when it did not run."""
    from test_monitoring_branch import made_up_lines

    path = tmp_path / f"prog_{name}.py"
    source = make_program(name) if isinstance(name, int) else textwrap.dedent(PROGRAMS[name])
    path.write_text(source)
    traced = _statements(path, settrace_lines(path))
    probed = Probed(path)
    mine = _statements(path, probed.run(path, {"__name__": "__main__"}))
    assert mine <= traced
    assert traced - mine <= made_up_lines(path)
    assert probed.core._fallback is None


def _run_line_probed(path: Path) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    Probed(path).run(path, namespace)
    return namespace


@pytest.mark.parametrize("seed", range(0, 400, 11))
def test_probes_change_nothing_the_program_does(seed: int, tmp_path: Path) -> None:
    """Same results, same log, same exceptions, with and without probes."""
    from test_monitoring_branch import same_log_probed

    same_log_probed(seed, tmp_path, _run_line_probed)


TRY = """\
def f(x):
    try:
        if x == 1:
            raise KeyError(x)
        if x == 2:
            raise ValueError(x)
        return 0
    except KeyError:
        return 1
    except (TypeError, IndexError):
        return 2
    finally:
        pass
"""


def test_a_clause_that_matched_nothing_is_recorded_and_the_traceback_is_kept(
    tmp_path: Path,
) -> None:
    """An exception that no ``except`` matched still tested each clause (a
    tracer sees their lines); it leaves with the same traceback."""
    path = tmp_path / "tries.py"
    path.write_text(TRY)

    def failure(code: types.CodeType) -> list[tuple[int | None, str]]:
        namespace: dict[str, Any] = {}
        exec(code, namespace)
        assert namespace["f"](1) == 1
        try:
            namespace["f"](2)
        except ValueError as exc:
            assert exc.__context__ is None
            return [(fs.lineno, fs.line or "") for fs in traceback.extract_tb(exc.__traceback__)]
        raise AssertionError("no exception")

    plain = failure(compile(TRY, str(path), "exec"))
    probed = Probed(path)
    probed.core.start()
    try:
        assert failure(probed.code(path))[1:] == plain[1:]
    finally:
        probed.core.stop()
    lines = probed.core.drain()[0][str(path)]
    assert {8, 10} <= lines  # the `except` lines, tested for the ValueError
    assert 11 not in lines and 13 in lines
    assert probed.core._fallback is None


def test_each_probe_runs_once(tmp_path: Path) -> None:
    """Once recorded, a probe is a jump over itself: the probe function is not
    called again, and the code still does what it did (also as a copy)."""
    path = tmp_path / "loop.py"
    path.write_text("def f(n):\n    total = 0\n    for i in range(n):\n"
                    "        total += i\n    return total\n")
    probed = Probed(path)
    namespace: dict[str, Any] = {}
    probed.core.start()
    try:
        exec(probed.code(path), namespace)
        f = namespace["f"]
        assert f(3) == 3
        calls: list[str] = []

        def profile(frame: Any, event: str, arg: object) -> None:
            if event == "call":
                calls.append(frame.f_code.co_name)

        sys.setprofile(profile)
        try:
            assert f(10) == 45
        finally:
            sys.setprofile(None)
        assert calls == ["f"]
        copy = types.FunctionType(f.__code__.replace(), {})
        assert copy(5) == 10
    finally:
        probed.core.stop()
    assert probed.core.drain()[0][str(path)] == {1, 2, 3, 4, 5}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_records_lines_the_parent_recorded(tmp_path: Path) -> None:
    """The child puts the parent's removed probes back: it records what it runs."""
    path = tmp_path / "forked.py"
    source = "def f(x):\n    if x > 1:\n        return 2\n    return 1\n"
    path.write_text(source)
    probed = Probed(path)
    reported = _drained_in_forked_child(probed.core, probed.code(path), str(path), {}, part=0)
    assert reported == "[2, 3]"


def test_measured_code_without_probes_falls_back_to_tracing(tmp_path: Path) -> None:
    """Code compiled elsewhere (``exec`` of a measured file's source) is traced."""
    path = tmp_path / "elsewhere.py"
    path.write_text("def g():\n    return 5\nx = g()\n")
    other = tmp_path / "other.py"
    other.write_text("y = 1\n")
    probed = Probed(path)
    probed.core.start()
    try:
        exec(compile(other.read_text(), str(other), "exec"), {})  # not measured
        assert probed.core._fallback is None
        exec(compile(path.read_text(), str(path), "exec"), {})
        assert probed.core._fallback is not None
    finally:
        probed.core.stop()
    assert probed.core.drain()[0] == {str(path): {1, 2, 3}}


def test_run_path_runs_probed_code(tmp_path: Path) -> None:
    """runpy.run_path (a spawn worker's main module) compiles with probes."""
    path = tmp_path / "main.py"
    path.write_text("import sys\nif __name__ == '__mp_main__':\n    z = 3\n")
    probed = Probed(path)
    probed.core.start()
    try:
        result = runpy.run_path(str(path), run_name="__mp_main__")
    finally:
        probed.core.stop()
    assert result["z"] == 3
    assert probed.core._fallback is None
    assert probed.core.drain()[0] == {str(path): {1, 2, 3}}


def test_a_module_that_runs_no_statement_is_recorded(tmp_path: Path) -> None:
    """An empty ``__init__.py`` ran: the tracers see line 0, so does the core."""
    path = tmp_path / "__init__.py"
    path.write_text("")
    assert Probed(path).run(path) == {0}


def test_future_imports_and_docstrings_stay_first(tmp_path: Path) -> None:
    path = tmp_path / "doc.py"
    path.write_text('"""The doc."""\nfrom __future__ import annotations\n'
                    'class C:\n    """C doc."""\n    x: int = 1\n'
                    'def f():\n    "f doc"\n    return 1\n')
    namespace: dict[str, Any] = {}
    lines = Probed(path).run(path, namespace)
    assert namespace["__doc__"] == "The doc."
    assert namespace["C"].__doc__ == "C doc."
    assert namespace["f"].__doc__ == "f doc"
    assert namespace["C"].__annotations__ == {"x": "int"}
    assert lines == {1, 2, 3, 4, 5, 6}


def test_probe_lines_compiles_what_compile_accepts() -> None:
    with pytest.raises(SyntaxError):
        probe_lines("def broken(:\n", "bad.py")
    code = probe_lines("x = 1\n", "good.py")
    assert any(type(c) is bytes for c in code.co_consts)  # the placeholder, until loaded


def test_a_failing_probe_or_audit_hook_never_reaches_the_program(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mpcov.cores.lineprobe as lineprobe

    path = tmp_path / "calm.py"
    path.write_text("def f():\n    return 7\nx = f()\n")
    probed = Probed(path)

    def broken(*args: object) -> int:
        raise RuntimeError("mpcov bug")

    monkeypatch.setattr(lineprobe, "_remove", broken)
    monkeypatch.setattr(probed.core, "on_exec", broken)
    namespace: dict[str, Any] = {}
    probed.core.start()
    try:
        exec(probed.code(path), namespace)
        exec(compile("y = 1", str(path), "exec"), namespace)  # the audit hook runs
    finally:
        probed.core.stop()
    assert (namespace["x"], namespace["y"]) == (7, 1)
