"""The tracer cores, driven in-process: what they record, and that they agree."""

from __future__ import annotations

import os
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import CodeType
from typing import Any

import pytest

from mpcov.cores import choose_core, make_core

HAS_MONITORING = sys.version_info >= (3, 12)
CORES = ["settrace", *(["monitoring"] if HAS_MONITORING else [])]

PROGRAM = textwrap.dedent(
    """\
    import threading

    def used(n):
        total = 0
        for i in range(n):
            if i % 2:
                total += i
            else:
                total -= 1
        return total

    def unused():
        return "never"

    class Thing:
        def __init__(self, x):
            self.x = x

        def method(self):
            return [v * 2
                    for v in range(self.x)]

    def gen(n):
        for i in range(n):
            yield i

    def in_thread(out):
        out.append(used(3))

    result = used(5)
    items = list(gen(3))
    thing = Thing(2).method()
    out = []
    t = threading.Thread(target=in_thread, args=(out,))
    t.start()
    t.join()
    try:
        raise ValueError("x")
    except ValueError:
        caught = True
    f = lambda: 42
    answer = f()
    """
)

# Lines of PROGRAM that run (1-based), as plain Python reports them through
# the line events both cores see.
EXPECTED = {1, 3, 4, 5, 6, 7, 9, 10, 12, 15, 16, 17, 19, 20, 21, 23, 24, 25, 27, 28,
            30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42}


def _record(core_name: str, path: Path, source: str) -> dict[str, set[int]]:
    """Run `source` (compiled as `path`) under a fresh core; return what it recorded."""
    notified: list[int] = []
    target = str(path)
    core: Any = make_core(core_name, lambda f: f == target, lambda: notified.append(1))
    code = compile(source, target, "exec")
    core.start()
    try:
        exec(code, {"__name__": "measured"})
    finally:
        core.stop()
    lines, arcs = core.drain()
    assert arcs == {}
    assert notified, "the core must call notify() when data becomes pending"
    return lines


def _drained_in_forked_child(
    core: Any, src: str | CodeType, target: str, namespace: dict[str, Any], part: int,
    child_arg: int = 2,
) -> str:
    """Run `src` (defining f; source, or code already compiled) under `core`, call
    f(1), fork; the child calls after_fork_in_child() and f(`child_arg`), then
    reports ``drain()[part]`` for `target`."""
    read_fd, write_fd = os.pipe()
    core.start()
    try:
        code = src if isinstance(src, CodeType) else compile(src, target, "exec")
        exec(code, namespace)
        namespace["f"](1)
        core.drain()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                core.after_fork_in_child()
                namespace["f"](child_arg)
                found = core.drain()[part].get(target, set())
                os.write(write_fd, repr(sorted(found)).encode())
            finally:
                os._exit(0)
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            reported = pipe.read()
        os.waitpid(pid, 0)
    finally:
        core.stop()
    return reported


@pytest.fixture
def program(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "prog.py"
    path.write_text(PROGRAM)
    yield path


@pytest.mark.parametrize("core_name", CORES)
def test_core_records_exactly_the_executed_lines(core_name: str, program: Path) -> None:
    """Each core records every line that ran (in all threads) and nothing else."""
    lines = _record(core_name, program, PROGRAM)
    assert set(lines) == {str(program)}
    missing = EXPECTED - lines[str(program)]
    extra = lines[str(program)] - EXPECTED
    assert (missing, extra) == (set(), set())


@pytest.mark.skipif(not HAS_MONITORING, reason="sys.monitoring needs Python 3.12+")
def test_both_cores_record_the_same_lines(program: Path) -> None:
    """settrace and sys.monitoring agree line for line on the same program."""
    assert _record("settrace", program, PROGRAM) == _record("monitoring", program, PROGRAM)


@pytest.mark.parametrize("core_name", CORES)
def test_unwanted_files_are_not_recorded(core_name: str, tmp_path: Path) -> None:
    """Code whose file the filter rejects leaves no trace."""
    path = tmp_path / "other.py"
    core: Any = make_core(core_name, lambda f: False, lambda: None)
    core.start()
    try:
        exec(compile("x = 1\ny = x + 1\n", str(path), "exec"), {})
    finally:
        core.stop()
    assert core.drain() == ({}, {})
    assert not core.pending()


@pytest.mark.parametrize("core_name", CORES)
def test_drain_returns_only_new_lines(core_name: str, tmp_path: Path) -> None:
    """A line is reported once per process: a second drain returns nothing new."""
    path = tmp_path / "loop.py"
    src = "def f():\n    return 1\n"
    target = str(path)
    core: Any = make_core(core_name, lambda f: f == target, lambda: None)
    namespace: dict[str, Callable[[], int]] = {}
    core.start()
    try:
        exec(compile(src, target, "exec"), namespace)
        namespace["f"]()
        first = core.drain()[0]
        namespace["f"]()
        second = core.drain()[0]
    finally:
        core.stop()
    assert first == {target: {1, 2}}
    assert second == {}


def test_choose_core_explains_its_choice() -> None:
    """`mpcov debug` shows why a core was chosen."""
    name, why = choose_core(None)
    assert name == ("monitoring" if HAS_MONITORING else "probes")
    assert why
    assert choose_core("settrace") == ("settrace", "requested")
    if not HAS_MONITORING:
        name, why = choose_core("monitoring")
        assert name == "probes"  # the best one 3.11 has, for lines
        assert "3.12" in why
        assert choose_core("probes") == ("probes", "requested")
    else:
        name, why = choose_core("probes")
        assert name == "monitoring"
        assert "3.11" in why


@pytest.mark.skipif(not HAS_MONITORING, reason="sys.monitoring needs Python 3.12+")
def test_monitoring_core_avoids_coverage_py_tool_id() -> None:
    """coverage.py uses tool id 1; mpcov must pick another one."""
    from mpcov.cores.monitoring import MonitoringCore

    mon = sys.monitoring
    already = mon.get_tool(mon.COVERAGE_ID)
    if already is None:
        mon.use_tool_id(mon.COVERAGE_ID, "coverage.py (simulated)")
    core = MonitoringCore(lambda f: False, lambda: None)
    try:
        core.start()
        assert core._tool not in (None, mon.COVERAGE_ID)
        assert mon.get_tool(core._tool) == "mpcov"
    finally:
        core.stop()
        if already is None:
            mon.free_tool_id(mon.COVERAGE_ID)


@pytest.mark.skipif(not HAS_MONITORING, reason="sys.monitoring needs Python 3.12+")
def test_monitoring_core_says_which_tools_hold_every_id() -> None:
    """With no free tool id the error names the tools that hold them."""
    from mpcov.cores.monitoring import TOOL_IDS, MonitoringCore, NoToolIdError

    mon = sys.monitoring
    taken = [t for t in TOOL_IDS if mon.get_tool(t) is None]
    for tool in taken:
        mon.use_tool_id(tool, f"squatter{tool}")
    try:
        with pytest.raises(NoToolIdError, match=r"no free sys\.monitoring tool id.*squatter"):
            MonitoringCore(lambda f: False, lambda: None).start()
    finally:
        for tool in taken:
            mon.free_tool_id(tool)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("core_name", CORES)
def test_forked_child_records_its_own_run(core_name: str, tmp_path: Path) -> None:
    """After fork, the child forgets the parent's data and records what it runs,
    including lines the parent had already recorded."""
    path = tmp_path / "forky.py"
    src = "def f(n):\n    return n + 1\n"
    target = str(path)
    core: Any = make_core(core_name, lambda f: f == target, lambda: None)
    namespace: dict[str, Callable[[int], int]] = {}
    # The parent runs line 2 before the fork; the child runs it again.
    assert _drained_in_forked_child(core, src, target, namespace, 0) == "[2]"


def test_threads_started_before_tracing_are_left_alone() -> None:
    """Starting a core does not disturb threads that already run."""
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, args=(5,))
    worker.start()
    core: Any = make_core(CORES[-1], lambda f: False, lambda: None)
    core.start()
    core.stop()
    stop.set()
    worker.join(5)
    assert not worker.is_alive()


# -- branch mode, settrace core (monitoring: test_monitoring_branch.py) ----------


def _record_arcs(path: Path, run: Callable[[], object]) -> tuple[Any, Any]:
    """Run `run` under a fresh branch-mode settrace core measuring `path`: (lines, arcs)."""
    target = str(path)
    notified: list[int] = []
    core: Any = make_core("settrace", lambda f: f == target, lambda: notified.append(1),
                          branch=True)
    core.start()
    try:
        run()
    finally:
        core.stop()
    assert notified, "the core must call notify() when data becomes pending"
    return core.drain()


@pytest.mark.parametrize(
    "name", ["branches", "exceptions", "generators", "with_match_async"]
)
def test_branch_mode_records_coveragepys_arcs(name: str, tmp_path: Path) -> None:
    """In branch mode, the settrace core records exactly coverage.py's raw arcs
    (the programs and coverage.py's run come from the arcs comparison), and the
    lines are the positive ends of those arcs."""
    pytest.importorskip("coverage", minversion="7.17")
    import runpy

    from test_arcs_vs_coveragepy import PROGRAMS, _tracing_is_free, coverage_run

    if not _tracing_is_free():
        pytest.skip("the test suite is being traced; this test needs the tracer")
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(PROGRAMS[name]))
    cov_raw, _report = coverage_run(path, tmp_path)
    lines, arcs = _record_arcs(path, lambda: runpy.run_path(str(path), run_name="__main__"))
    assert arcs == {str(path): cov_raw}
    assert lines == {str(path): {n for arc in cov_raw for n in arc if n > 0}}


def test_branch_mode_records_threads_and_drains_only_new_arcs(program: Path) -> None:
    """Arcs of every thread are recorded; each arc is reported once per process."""
    target = str(program)
    core: Any = make_core("settrace", lambda f: f == target, lambda: None, branch=True)
    namespace: dict[str, Any] = {"__name__": "measured"}
    core.start()
    try:
        exec(compile(PROGRAM, target, "exec"), namespace)
        lines, arcs = core.drain()
        namespace["used"](5)
        again = core.drain()
        namespace["used"](0)
        new = core.drain()
    finally:
        core.stop()
    assert lines[target] == EXPECTED
    assert (-27, 28) in arcs[target]  # in_thread(), run by the thread
    assert (10, -3) in arcs[target] and (5, 10) in arcs[target]
    assert again == ({}, {})
    assert new == ({}, {})  # used(0) takes only arcs used(5) took


def test_branch_mode_does_not_change_the_core() -> None:
    """Every core measures branches; monitoring and probes need their probe loader."""
    assert choose_core(None, branch=True) == choose_core(None)
    assert choose_core("settrace", branch=True) == ("settrace", "requested")
    if not HAS_MONITORING:
        assert choose_core("probes", branch=True) == ("probes", "requested")
        with pytest.raises(ValueError, match="probe loader"):
            make_core("probes", lambda f: False, lambda: None, branch=True)
    if HAS_MONITORING:
        assert choose_core("monitoring", branch=True) == ("monitoring", "requested")
        with pytest.raises(ValueError, match="needs probes"):
            make_core("monitoring", lambda f: False, lambda: None, branch=True)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_branch_mode_forked_child_records_its_own_arcs(tmp_path: Path) -> None:
    """After fork, the child reports arcs the parent had already reported."""
    path = tmp_path / "forky.py"
    src = "def f(n):\n    return n + 1\n"
    target = str(path)
    core: Any = make_core("settrace", lambda f: f == target, lambda: None, branch=True)
    namespace: dict[str, Callable[[int], int]] = {}
    child_arcs = _drained_in_forked_child(core, src, target, namespace, 1)
    assert child_arcs == "[(-1, 2), (2, -1)]"


# -- settrace: what stops being traced ------------------------------------------


def test_settrace_stops_tracing_a_function_once_all_its_lines_ran(tmp_path: Path) -> None:
    """A function's ``def`` line gets no line event of its own: once the body
    has run, the function is no longer traced, and a frame that still holds
    its tracer (a suspended generator, here) drops it at its next line."""
    path = tmp_path / "done.py"
    src = textwrap.dedent(
        """\
        import sys

        def tracer_of_my_frame():
            tracer = sys._getframe().f_trace
            return tracer

        def gen():
            yield sys._getframe().f_trace
            yield sys._getframe().f_trace
            yield sys._getframe().f_trace
        """
    )
    target = str(path)
    core: Any = make_core("settrace", lambda f: f == target, lambda: None)
    namespace: dict[str, Any] = {}
    core.start()
    try:
        exec(compile(src, target, "exec"), namespace)
        first, second = namespace["tracer_of_my_frame"](), namespace["tracer_of_my_frame"]()
        g1, g2 = namespace["gen"](), namespace["gen"]()
        started = [next(g1), next(g2)]  # both traced, suspended at line 8
        g1_rest = [next(g1), next(g1)]  # line 10, the last one, untraces g1 at once
        g2_rest = [next(g2), next(g2)]  # g2 drops its tracer at line 9
        third = namespace["tracer_of_my_frame"]()
    finally:
        core.stop()
    assert first is not None and second is None and third is None
    assert None not in started
    assert g1_rest[0] is not None and g1_rest[1] is None
    assert g2_rest == [None, None]
    assert core.drain()[0] == {target: {1, 3, 4, 5, 7, 8, 9, 10}}


def _swept_after_one_call(core: Any, source: str, target: str) -> None:
    """Run `source`'s function ``f(1)`` under `core`, then check that the core's
    cache held ``f``'s code object until a sweep, and let it go then."""
    import gc
    import weakref

    core.start()
    try:
        namespace: dict[str, Any] = {}
        exec(compile(source, target, "exec"), namespace)
        namespace["f"](1)
    finally:
        core.stop()
    code = weakref.ref(namespace.pop("f").__code__)
    gc.collect()
    assert code() is not None  # only the cache holds it now
    core._sweep()
    gc.collect()
    assert code() is None


def test_settrace_cache_lets_unused_code_objects_go(tmp_path: Path) -> None:
    """The decision cache holds the code objects it has seen (so that their ids
    stay theirs) but lets a sweep drop those nothing else holds."""
    target = str(tmp_path / "made.py")
    core: Any = make_core("settrace", lambda f: f == target, lambda: None)
    _swept_after_one_call(core, "def f(x):\n    return 1\n", target)
    assert core.drain()[0] == {target: {1, 2}}


def test_settrace_counts_the_lines_that_can_be_traced() -> None:
    """A function's ``def`` line is not one of its traced lines (unless its body
    is on it); code built by hand without the RESUME that compiled code starts
    with (the interpreter never traces it) counts every line, without error."""
    from mpcov.cores.settrace import _traced_lines

    namespace: dict[str, Any] = {}
    exec("def f():\n    return 1\ndef g(): return 2\n", namespace)
    assert _traced_lines(namespace["f"].__code__) == {2}
    assert _traced_lines(namespace["g"].__code__) == {3}
    code = compile("x = 1\ny = 2\n", "made.py", "exec")
    resume = code.co_code[:2]
    without = code.replace(co_code=code.co_code.replace(resume, bytes([9, 0]), 1))  # NOP
    assert _traced_lines(code) == {1, 2}
    assert _traced_lines(without) >= {1, 2}


RECURSES = """\
import sys


def recurse(n):
    return recurse(n + 1)


def after():
    return "traced?"


limit = sys.getrecursionlimit()
sys.setrecursionlimit(100)
try:
    recurse(0)
except RecursionError:
    pass
sys.setrecursionlimit(limit)
after()
"""


@pytest.mark.parametrize("branch", [False, True], ids=["lines", "arcs"])
def test_settrace_traces_again_after_a_recursion_error(tmp_path: Path, branch: bool) -> None:
    """A RecursionError raised in calling the trace function drops it for the
    thread; putting the recursion limit back re-arms it."""
    path = tmp_path / "deep.py"
    target = str(path)
    core: Any = make_core("settrace", lambda f: f == target, lambda: None, branch=branch)
    core.start()
    try:
        exec(compile(RECURSES, target, "exec"), {"__name__": "deep"})
    finally:
        core.stop()
    assert sys.setrecursionlimit.__module__ == "sys" or sys.setrecursionlimit.__self__ is sys
    drained_lines, drained_arcs = core.drain()
    lines = drained_lines[target]
    assert {9, 19} <= lines  # after()'s body, and the line calling it
    # The line putting the limit back was running when the tracer came back.
    assert 18 in lines
    if branch:
        arcs = drained_arcs[target]
        # The module's frame goes on from line 18, not from the last line it
        # saw before the loss (15): no made-up arc (15, 19).
        assert (18, 19) in arcs and (15, 19) not in arcs
    assert not {16, 17} & lines  # run untraced: lost (docs/fidelity.md)
