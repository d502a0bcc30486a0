"""mpcov.arcs must predict the arcs coverage.py predicts, and judge executed arcs as it does.

Static half: mpcov's own modules and the stdlib modules of the analysis
comparison, each with coverage.py's default exclusions and with a heavy
``exclude_also``-like set, must give coverage.py's ``PythonParser.arcs()`` and
``exit_counts()`` exactly. Known, deliberate differences are listed (with their
reason) in KNOWN_DIFFERENCES and in docs/branches.md.

Dynamic half: small programs run in this process under coverage.py (its C
tracer, as ``coverage run --branch`` uses on 3.11-3.13) and under the reference
recorders below, which do what docs/branches.md asks of mpcov's tracer cores.
The raw arcs must be coverage.py's, and :func:`normalize_executed` plus
:class:`ArcAnalysis` must give its JSON report's branch arcs and totals.
"""

from __future__ import annotations

import dis
import json
import runpy
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

import pytest
from test_analysis_vs_coveragepy import HEAVY_EXCLUDE, real_files

from mpcov.analysis import DEFAULT_EXCLUDE, analyze_source, read_source
from mpcov.arcs import Arc, analyze_arcs, normalize_executed
from mpcov.errors import NotPythonError

# 7.17 changed which arcs are predicted (no entry arcs, `with` exits fixed).
coverage = pytest.importorskip(
    "coverage", minversion="7.17", reason="needs coverage.py >= 7.17 to compare with"
)
from coverage.exceptions import NotPython  # noqa: E402
from coverage.misc import join_regex  # noqa: E402
from coverage.parser import PythonParser  # noqa: E402

EXCLUDES = {"default": DEFAULT_EXCLUDE, "heavy": HEAVY_EXCLUDE}
# coverage.py's partial_branches and partial_branches_always defaults.
PARTIAL = (
    r"#\s*(pragma|PRAGMA)[:\s]?\s*(no|NO)\s*(branch|BRANCH)",
    r"^\s*while (True|1|False|0):",
    r"^\s*if (True|1|False|0):",
)

# file -> exclusion set name -> (reason, coverage.py's arcs minus ours, ours
# minus coverage.py's, lines whose exit counts differ). None found so far; an
# entry must state exactly what differs.
KNOWN_DIFFERENCES: dict[str, dict[str, tuple[str, set[Arc], set[Arc], set[int]]]] = {}


def coverage_arcs(path: Path, exclude: tuple[str, ...]) -> tuple[set[Arc], dict[int, int]]:
    """coverage.py's possible arcs and exit counts for `path`."""
    parser = PythonParser(filename=str(path), exclude=join_regex(exclude))
    parser.parse_source()
    return set(parser.arcs()), dict(parser.exit_counts())


@pytest.mark.parametrize("exclude_name", sorted(EXCLUDES))
@pytest.mark.parametrize(("name", "path"), real_files(), ids=[n for n, _ in real_files()])
def test_same_arcs_as_coveragepy(name: str, path: Path, exclude_name: str) -> None:
    exclude = EXCLUDES[exclude_name]
    try:
        cov_arcs, cov_exits = coverage_arcs(path, exclude)
    except NotPython:
        with pytest.raises(NotPythonError):
            analyze_arcs(read_source(str(path)), str(path), exclude=exclude, partial=PARTIAL)
        return
    ours = analyze_arcs(read_source(str(path)), str(path), exclude=exclude, partial=PARTIAL)
    exit_lines = set(cov_exits) | set(ours.exit_counts)
    diff = (
        cov_arcs - ours.arcs,
        set(ours.arcs - cov_arcs),
        {n for n in exit_lines if cov_exits.get(n) != ours.exit_counts.get(n)},
    )
    known = KNOWN_DIFFERENCES.get(name, {}).get(exclude_name)
    assert diff == (known[1:] if known else (set(), set(), set()))


def test_with_whose_body_compiles_to_nothing(tmp_path: Path) -> None:
    # coverage.py 7.17 fails an assertion on this (the `with` line has two
    # ways on: its body's end, itself, and the next statement); mpcov leaves
    # the arcs as they are.
    path = tmp_path / "w.py"
    path.write_text("with m:\n    global g\nx = 1\n")
    with pytest.raises(AssertionError):
        coverage_arcs(path, DEFAULT_EXCLUDE)
    ours = analyze_arcs(path.read_text(), str(path), exclude=DEFAULT_EXCLUDE, partial=PARTIAL)
    assert ours.arcs == {(1, 3), (3, -1)}


# -- executed arcs ----------------------------------------------------------------

RESUME = dis.opmap["RESUME"]


def _real_return(frame: FrameType) -> bool:
    """Is this "return" event leaving the frame for good, not yielding?"""
    code, lasti = frame.f_code.co_code, frame.f_lasti
    if lasti + 2 == len(code):
        return True
    # A yield stops before the RESUME it will continue at; 3.13 reports that RESUME.
    if sys.version_info[:2] != (3, 13):
        lasti += 2
    return code[lasti] != RESUME


def record_with_settrace(path: str, run: Callable[[], object]) -> set[Arc]:
    """The arcs the settrace recipe of docs/branches.md records in `path` during `run`."""
    arcs: set[Arc] = set()

    def call(frame: FrameType, event: str, arg: object) -> Any:
        code = frame.f_code
        if event != "call" or code.co_filename != path:
            return None
        # RESUME 0 starts the code object; other RESUMEs continue a generator.
        started = code.co_code[frame.f_lasti + 1] == 0
        last = -code.co_firstlineno if started else frame.f_lineno

        def local(frame: FrameType, event: str, arg: object) -> Any:
            nonlocal last
            if event == "line":
                arcs.add((last, frame.f_lineno))
                last = frame.f_lineno
            elif event == "return" and _real_return(frame):
                arcs.add((last, -code.co_firstlineno))
            return local

        return local

    sys.settrace(call)
    try:
        run()
    finally:
        sys.settrace(None)
    return arcs


class MonitoringRecorder:
    """The sys.monitoring recipe of docs/branches.md (Python 3.12+), one thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.arcs: set[Arc] = set()
        # Per running frame of `path`: its last line, and whether it was
        # resumed by throw() and has run no line since.
        self._frames: list[list[int]] = []
        self._lines: dict[CodeType, dict[int, int]] = {}

    def _line_at(self, code: CodeType, offset: int) -> int:
        if code not in self._lines:
            self._lines[code] = {
                o: line
                for start, end, line in code.co_lines()
                if line
                for o in range(start, end, 2)
            }
        return self._lines[code][offset]

    def _mine(self, code: CodeType) -> bool:
        return code.co_filename == self.path

    def start(self, code: CodeType, offset: int) -> object:
        if not self._mine(code):
            return sys.monitoring.DISABLE
        self._frames.append([-code.co_firstlineno, 0])
        return None

    def resume(self, code: CodeType, offset: int) -> object:
        if not self._mine(code):
            return sys.monitoring.DISABLE
        self._frames.append([self._line_at(code, offset), 0])
        return None

    def throw(self, code: CodeType, offset: int, exc: BaseException) -> None:
        if self._mine(code):
            self._frames.append([self._line_at(code, offset), 1])

    def line(self, code: CodeType, line: int) -> object:
        if not self._mine(code):
            return sys.monitoring.DISABLE
        frame = self._frames[-1]
        self.arcs.add((frame[0], line))
        frame[:] = [line, 0]
        return None

    def jump(self, code: CodeType, source: int, dest: int) -> object:
        if not self._mine(code):
            return sys.monitoring.DISABLE
        # settrace reports a backward jump inside one line as that line again.
        line = self._line_at(code, dest)
        if dest < source and line == self._line_at(code, source):
            self.line(code, line)
        return None

    def leave(self, code: CodeType, offset: int, value: object) -> object:
        """PY_RETURN and PY_UNWIND: the frame is left for good."""
        if not self._mine(code):
            return sys.monitoring.DISABLE if not isinstance(value, BaseException) else None
        last, thrown = self._frames.pop()
        # An exception thrown in at a yield and not caught leaves no exit arc
        # (coverage.py's tracer takes it for a yield).
        if not thrown:
            self.arcs.add((last, -code.co_firstlineno))
        return None

    def pause(self, code: CodeType, offset: int, value: object) -> object:
        """PY_YIELD: the frame is suspended, not left."""
        if not self._mine(code):
            return sys.monitoring.DISABLE
        self._frames.pop()
        return None

    def record(self, run: Callable[[], object]) -> set[Arc]:
        mon = sys.monitoring
        events = mon.events
        tool = next(t for t in (4, 3, 2, 5) if mon.get_tool(t) is None)
        callbacks: dict[int, Callable[..., object]] = {
            events.PY_START: self.start,
            events.PY_RESUME: self.resume,
            events.PY_THROW: self.throw,
            events.LINE: self.line,
            events.JUMP: self.jump,
            events.PY_RETURN: self.leave,
            events.PY_UNWIND: self.leave,
            events.PY_YIELD: self.pause,
        }
        mon.use_tool_id(tool, "mpcov-test")
        try:
            for event, callback in callbacks.items():
                mon.register_callback(tool, event, callback)
            mon.set_events(tool, sum(callbacks))
            run()
        finally:
            mon.set_events(tool, 0)
            for event in callbacks:
                mon.register_callback(tool, event, None)
            mon.free_tool_id(tool)
        return self.arcs


PROGRAMS = {
    "branches": """\
        import functools

        def deco(fn):
            @functools.wraps(fn)
            def wrapper(*a):
                return fn(*a)
            return wrapper

        @deco
        def classify(n):
            if (n > 10 and
                    n < 100):
                return "mid"
            if n < 0:  # pragma: no branch
                return "neg"
            for i in range(n):
                if i == 3:
                    break
            else:
                return "small"
            return "big"

        def excluded(x):
            if x:  # pragma: no cover
                return 1
            while x < 3: x += 1
            while True:
                if x:
                    break
            return x

        def squares(n):
            return [i * i for i in range(n) if i % 2], {k: v for k, v in zip("ab", "cd")}

        def deep(n):
            return n if n <= 0 else deep(n - 1)

        class K:
            '''Doc.'''
            attr = [i for i in range(3) if i]
            f = lambda self: 1
            def m(self, x):
                while x > 0:
                    x -= 1
                    if x == 5:
                        break
                else:
                    x = 100
                return x

        for n in (5, 50, 500, -1):
            classify(n)
        excluded(0)
        squares(4)
        deep(3)
        K().m(3); K().m(7)
        if 0:
            print("never")
        """,
    "exceptions": """\
        def tries(x):
            try:
                if x == 1:
                    raise ValueError(x)
                elif x == 2:
                    return "two"
            except ValueError:
                x = -1
            except KeyError:
                x = -2
            else:
                x = 10
            finally:
                x += 1
            return x

        def nested(x):
            try:
                try:
                    if x:
                        raise KeyError(x)
                finally:
                    y = 1
            except KeyError:
                y = 2
            return y

        def boom():
            raise RuntimeError("x")

        for x in (1, 2, 3):
            tries(x)
        nested(0); nested(1)
        try:
            boom()
        except RuntimeError:
            pass
        """,
    "generators": """\
        def gen(n):
            for i in range(n):
                if i % 2:
                    yield i
                else:
                    continue
            yield from range(2)

        def closer():
            try:
                yield 1
                yield 2
            finally:
                done = True

        list(gen(5))
        g = closer(); next(g); g.close()
        g = gen(3); next(g)
        try:
            g.throw(KeyError)
        except KeyError:
            pass
        assert all(x for x in [1, 2])
        """,
    "with_match_async": """\
        import asyncio, contextlib

        def withs(path):
            with contextlib.nullcontext(path) as p:
                a = p
                if a:
                    b = 1
            with contextlib.nullcontext():
                with contextlib.nullcontext():
                    c = 2
            return c

        def matcher(v):
            match v:
                case 1:
                    return "one"
                case [a, b] if a > b:
                    return "desc"
                case str():
                    return "str"
                case _:
                    return "other"

        async def agen():
            for i in range(3):
                await asyncio.sleep(0)
                yield i

        async def amain():
            out = []
            async for v in agen():
                if v > 0:
                    out.append(v)
            async with contextlib.AsyncExitStack():
                pass
            return out

        withs("p"); withs("")
        for v in (1, [2, 1], [1, 2], "s", 3.0):
            matcher(v)
        asyncio.run(amain())
        """,
    # Scopes whose body is on their own line: the line is run by two code
    # objects (the definition's and the body's), and is no branch of either.
    "suites_ending_in_branches": """\
        # Each suite ends with a branch that falls out: 3.11 gives the
        # instructions its compiler makes up after such a suite (an async
        # with's end of body, a finally's re-raise) the line compiled last.
        import asyncio, contextlib

        async def awith(seen):
            async with contextlib.AsyncExitStack():
                if seen:
                    seen.append(0)
            return seen

        async def afor(items):
            async for v in agen(items):
                if v:
                    items.append(-v)
            else:
                pass
            async with contextlib.AsyncExitStack():
                for v in items:
                    if v > 5:
                        break
            return items

        async def agen(items):
            for v in list(items):
                yield v

        def sync(seen, flag):
            with contextlib.nullcontext():
                while seen:
                    if seen.pop() > 1:
                        flag = not flag
            try:
                if flag:
                    seen.append(1)
            finally:
                if not seen:
                    seen.append(2)
            try:
                match len(seen):
                    case 1: seen.append(3)
                    case 5:
                        seen.append(4)
            except ValueError:
                if flag:
                    pass
            if flag:
                def inner(): return 1
            return seen

        def raising(flag):
            try:
                try:
                    raise ValueError(flag)
                finally:
                    if flag:
                        flag = 0
            except ValueError:
                pass

        asyncio.run(awith([1]))
        asyncio.run(awith([]))
        asyncio.run(afor([1, 0, 7]))
        sync([3, 1], True)
        sync([], False)
        raising(1)
""",
    "one_line_scopes": """\
        import asyncio, functools

        def outer(flag):
            if flag:
                def f(x): return x + 1
            else:
                def f(x): return x - 1
            return f(1) if flag else 0

        def caller(flag):
            if flag:
                def g(x): return x * 2
            else:
                g = None
            return g(3) if g else 0

        def looped(n):
            out = []
            for i in range(n):
                if i % 2:
                    def h(): return i
                    out.append(h())
                out.append(i)
            return out

        class K:
            def m(self): return 1
            def unused(self): return 2
            @functools.lru_cache
            def cached(self): return 3
            class Inner: x = 1
            async def am(self): return 4

        def never(): return 0
        def raises(): raise ValueError
        def doc_only(): "only a docstring"
        def doc_then(): "a docstring"; return 5
        class D: "a docstring"
        def gen(): yield 1
        def idle_gen(): yield 2
        def passes(): pass

        outer(True); outer(False)
        caller(True); caller(False)
        looped(4)
        k = K(); k.m(); k.cached()
        asyncio.run(k.am())
        try:
            raises()
        except ValueError:
            pass
        pick = (lambda v: v + 1) if k else (lambda v: v - 1)
        pick(1)
        doc_only(); doc_then(); list(gen()); idle_gen(); passes()
        assert doc_only.__doc__ == "only a docstring" and D.__doc__ == "a docstring"
        assert doc_then.__doc__ == "a docstring"
        """,
}


def _tracing_is_free() -> bool:
    """Can this test own the tracer (the suite is not itself measured)?"""
    if sys.gettrace() is not None or threading.gettrace() is not None:
        return False
    return sys.version_info < (3, 12) or sys.monitoring.get_tool(1) is None


@pytest.fixture
def program(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    if not _tracing_is_free():
        pytest.skip("the test suite is being traced; these tests need the tracer")
    path = tmp_path / f"{request.param}.py"
    path.write_text(textwrap.dedent(PROGRAMS[request.param]))
    yield path


def _run(path: Path) -> Callable[[], object]:
    return lambda: runpy.run_path(str(path), run_name="__main__")


def coverage_run(path: Path, tmp_path: Path) -> tuple[set[Arc], dict[str, Any]]:
    """coverage.py's raw arcs for `path` after running it, and its JSON report of it."""
    cov = coverage.Coverage(branch=True, data_file=None, config_file=False)
    try:
        cov.start()
        try:
            _run(path)()
        finally:
            cov.stop()
        raw = set(cov.get_data().arcs(str(path)) or ())
        out = tmp_path / "coverage.json"
        cov.json_report(morfs=[str(path)], outfile=str(out))
    finally:
        cov.get_data().close(force=True)
    report = json.loads(out.read_text())["files"]
    return raw, next(iter(report.values()))


def check_against_report(path: Path, raw: set[Arc], report: dict[str, Any]) -> None:
    """Our judgement of `raw` is the report's."""
    source = read_source(str(path))
    arcs = analyze_arcs(source, str(path), exclude=DEFAULT_EXCLUDE, partial=PARTIAL)
    executed = normalize_executed(raw, arcs)
    not_run = analyze_source(source, str(path)).missing(n for arc in raw for n in arc if n > 0)
    summary = report["summary"]
    assert arcs.missing_arcs(executed) == sorted(map(tuple, report["missing_branches"]))
    assert arcs.executed_branch_arcs(executed) == sorted(map(tuple, report["executed_branches"]))
    assert tuple(arcs.totals(executed, not_run)) == (
        summary["num_branches"],
        summary["num_partial_branches"],
        summary["missing_branches"],
    )


@pytest.mark.parametrize("program", sorted(PROGRAMS), indirect=True)
def test_settrace_recipe_records_coveragepys_arcs(program: Path, tmp_path: Path) -> None:
    cov_raw, report = coverage_run(program, tmp_path)
    ours = record_with_settrace(str(program), _run(program))
    assert ours == cov_raw
    check_against_report(program, ours, report)


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring is new in Python 3.12")
@pytest.mark.parametrize("program", sorted(PROGRAMS), indirect=True)
def test_monitoring_recipe_records_coveragepys_arcs(program: Path, tmp_path: Path) -> None:
    cov_raw, report = coverage_run(program, tmp_path)
    ours = MonitoringRecorder(str(program)).record(_run(program))
    assert ours == cov_raw
    check_against_report(program, ours, report)
