"""The ``sys.settrace`` core (CPython 3.11, branch coverage, or ``MPCOV_CORE=settrace``).

The global trace function decides once per code object whether it is
measured; measured frames get a local trace function that records each line
once. When every line of a code object has been seen, that code object is no
longer traced at all (new frames get no local tracer, and frames still holding
the tracer drop it at their next event), so hot, fully covered code runs at
the speed of untraced code under ``sys.settrace``.

With ``branch=True`` it records arcs too. Code compiled with branch probes
(``mpcov.probes``; `probes` is the ``mpcov.rewrite.ProbeLoader`` that loads
it) is traced as in line mode, probe lines included (with their instruction
offsets), and the lines become arcs at drain time through the file's witness
tables, so it too stops being traced once every line ran. Any other measured
code records arcs itself, as ``docs/branches.md`` ("How the tracers record
arcs") specifies: every frame gets its own local tracer holding the frame's
last line, and stays traced, since every transition counts. Each arc is
reported once per process.

Speed: the global trace function runs for every Python call in the process
(measured or not), the local one for every line of a traced frame, so both
are a handful of bytecodes. Decisions are cached by ``id(code)``: hashing a
code object hashes its bytecode, constants and names on every call. Each
cache entry holds its code object, so the id cannot be reused while cached.
"""

from __future__ import annotations

import _thread
import sys

from mpcov.cores import PROBE_BASE, drain_arcs, drain_lines, drain_probed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import CodeType, FrameType
    from typing import Any

    from mpcov.fragment import Arcs, Lines

    TraceFn = Callable[[FrameType, str, object], object]
    # Branch mode: makes the local tracer of one new frame.
    FrameTracerFactory = Callable[[FrameType], TraceFn]
    # id(code) -> (code, what the global trace function hands its frames).
    ById = dict[int, tuple[CodeType, Any]]


_real_start_new_thread = _thread.start_new_thread
_real_setrecursionlimit = sys.setrecursionlimit

# Code flags of functions whose frames can be suspended and resumed.
_RESUMABLE = 0x20 | 0x80 | 0x200  # CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR
_RESUME: int = {(3, 11): 151, (3, 12): 151, (3, 13): 149}.get(sys.version_info[:2], 0)
if not _RESUME:  # pragma: no cover - an interpreter newer than mpcov knows
    import opcode

    _RESUME = opcode.opmap["RESUME"]
# A yield stops before the RESUME it continues at; 3.13 reports that RESUME itself.
_AFTER_YIELD = 0 if sys.version_info[:2] == (3, 13) else 2

# The id cache is swept of entries whose code object only the cache still
# holds once it has this many entries (then again at twice the survivors),
# so a program that keeps compiling code does not keep it all alive.
_SWEEP_MIN = 1 << 14


class _EveryLine:
    """Stands in for the remaining lines of a code object whose lines have all
    been seen: every line "is in it", so a frame still holding the code's
    tracer (a recursion's outer frame, another thread's, a suspended
    generator's) takes the slow path at its next line and drops the tracer."""

    def __contains__(self, line: object) -> bool:
        return True

    def __bool__(self) -> bool:
        return False


_EVERY_LINE: Any = _EveryLine()


def _traced_lines(code: CodeType) -> set[int]:
    """The lines of `code` that can get a "line" event: not those only of the
    instructions up to the first RESUME (the ``def`` line of a function, line
    0 of a module), which are never traced. Counting them would keep nearly
    every function traced forever."""
    co_code = code.co_code
    size = len(co_code)
    resume = 0
    while resume < size and co_code[resume] != _RESUME:  # MAKE_CELL, RETURN_GENERATOR...
        resume += 2
    if resume == size:  # hand-made code without RESUME: count every line
        resume = -2
    return {line for _, end, line in code.co_lines() if line is not None and end > resume + 2}


def _probe_copies(code: CodeType) -> dict[int, set[int]]:
    """Probe line -> the offsets where it starts, for probe lines that start in
    more than one place (the copies the compiler makes of a ``finally`` body)."""
    starts: dict[int, set[int]] = {}
    previous = None
    for start, _end, line in code.co_lines():
        if line is not None and line >= PROBE_BASE and line != previous:
            starts.setdefault(line, set()).add(start)
        previous = line
    return {line: offsets for line, offsets in starts.items() if len(offsets) > 1}


class SettraceCore:
    """Records executed lines with sys.settrace (all threads)."""

    name = "settrace"

    def __init__(
        self,
        wanted: Callable[[str], bool],
        notify: Callable[[], None],
        branch: bool = False,
        probes: Any = None,
    ) -> None:
        self._wanted = wanted
        self._notify = notify
        self._branch = branch
        #: the probe loader (branch mode), for mpcov.runscript
        self.probes = probes
        # Branch mode with probes: (file, probe line, offset) of probes run;
        # code objects recorded the arc way, by id (the line way is _by_id).
        self._probe_hits: list[tuple[str, int, int]] = []
        self._arc_by_id: ById = {}
        self._pending: list[tuple[str, int]] = []
        # Line mode: every line reported so far, per file (emptied in place
        # after a fork: tracers hold these sets).
        self._reported: dict[str, set[int]] = {}
        # Branch mode: new (filename, from, to) arcs, and every arc reported
        # so far per file (emptied in place after a fork).
        self._pending_arcs: list[tuple[str, int, int]] = []
        self._seen_arcs: dict[str, set[tuple[int, int]]] = {}
        # id(code) -> (code, local tracer or None) in line mode, (code, frame
        # tracer factory or None) in branch mode; None: not traced (not
        # measured, or every line already seen).
        self._by_id: ById = {}
        self._sweep_at = _SWEEP_MIN
        self._active = False
        # As the fallback of the probes core: code objects not to trace
        # (they record themselves), and, in line mode, what to call with any
        # other measured code object before tracing it (ProbeLoader.adopt;
        # branch mode calls the probe loader's own).
        self.skip_ids: set[int] = set()
        self.adopt: Callable[[CodeType], None] | None = None
        if not branch:
            self._global: TraceFn = self._global_lines()
        elif probes is None:
            self._global = self._global_arcs()
        else:
            self._global = self._global_probed()

    def start(self) -> None:
        """Trace the current thread and every thread started from now on."""
        self._active = True
        if self.probes is not None:
            self.probes.install()
        if "threading" in sys.modules or sys.version_info >= (3, 13):
            # threading has already captured _thread's functions (or, on 3.13+,
            # starts threads another way): use its own hook.
            import threading

            threading.settrace(self._global)  # type: ignore[arg-type]
        else:
            # Importing threading costs ~2.5 ms per process: instead, wrap the
            # primitive that threading (imported later) and _thread users call.
            _thread.start_new_thread = self._traced_start
        sys.setrecursionlimit = self._setrecursionlimit
        sys.settrace(self._global)  # type: ignore[arg-type]

    def _setrecursionlimit(self, limit: int, /) -> None:
        """``sys.setrecursionlimit``, which also traces this thread again if it
        lost its tracer: a RecursionError raised in calling the trace function
        (a program recursing to the limit on purpose) makes the interpreter
        drop it for the thread, and a program that does that on purpose
        usually puts the limit back afterwards."""
        _real_setrecursionlimit(limit)
        if self._active and sys.gettrace() is None:
            sys.settrace(self._global)  # type: ignore[arg-type]
            self._resume_stack(sys._getframe(1))

    def _resume_stack(self, frame: FrameType | None) -> None:
        """This thread is traced again after losing its tracer: the line each
        of its measured frames is running now did run (the one calling
        ``sys.setrecursionlimit`` among them), and an arc tracer goes on from
        it, not from the line it last saw before the loss."""
        while frame is not None:
            tracer = frame.f_trace
            line = frame.f_lineno
            filename = frame.f_code.co_filename
            if tracer is not None and line is not None and line < PROBE_BASE:
                code = getattr(tracer, "__code__", None)
                cells = getattr(tracer, "__closure__", None) or ()
                names = code.co_freevars if code is not None else ()
                if "last" in names:  # an arc tracer: its frame's last line
                    cells[names.index("last")].cell_contents = line
                elif self._wanted(filename):
                    reported = self._reported.setdefault(filename, set())
                    if line not in reported:
                        reported.add(line)
                        self._pending.append((filename, line))
                        if len(self._pending) == 1:
                            self._notify()
            frame = frame.f_back

    def _traced_start(self, function: Any, args: Any, kwargs: Any = None) -> int:
        def bootstrap() -> None:
            if self._active:
                sys.settrace(self._global)  # type: ignore[arg-type]
            function(*args, **(kwargs or {}))

        return _real_start_new_thread(bootstrap, ())

    def stop(self) -> None:
        """Stop tracing."""
        self._active = False
        if _thread.start_new_thread == self._traced_start:
            _thread.start_new_thread = _real_start_new_thread
        if sys.setrecursionlimit == self._setrecursionlimit:
            sys.setrecursionlimit = _real_setrecursionlimit
        if self.probes is not None:
            self.probes.uninstall()
        if "threading" in sys.modules:
            import threading

            threading.settrace(None)
        sys.settrace(None)

    def _cache(self, code: CodeType, decision: object, arc_way: bool = False) -> None:
        """Remember what the global trace function hands frames of `code`
        (`arc_way`: in the cache of unprobed code recorded the arc way)."""
        if len(self._by_id) + len(self._arc_by_id) >= self._sweep_at:
            self._sweep()
        (self._arc_by_id if arc_way else self._by_id)[id(code)] = (code, decision)

    def _sweep(self) -> None:
        """Forget the code objects only the caches hold (dropping a live one
        costs one more decision, never a wrong one)."""
        getrefcount = sys.getrefcount
        for by_id in (self._by_id, self._arc_by_id):
            # By key, holding no entry between checks: dropping a module's code
            # object can free the code of its functions (its constants), which
            # come later in the dict, being made later.
            for key in list(by_id):
                if getrefcount(by_id[key][0]) <= 2:  # the entry's and getrefcount's own
                    del by_id[key]
        self._sweep_at = max(_SWEEP_MIN, 2 * (len(self._by_id) + len(self._arc_by_id)))

    # -- line mode ---------------------------------------------------------

    def _global_lines(self) -> TraceFn:
        """The global trace function of line mode. It only ever gets "call"
        events (sys.settrace sends the others to the frame's own tracer)."""
        decide = self._decide_lines

        def global_trace(
            frame: FrameType, event: str, arg: object, by_id: ById = self._by_id, _id: Any = id
        ) -> Any:
            try:
                return by_id[_id(frame.f_code)][1]
            except KeyError:
                return decide(frame.f_code)

        return global_trace

    def _decide_lines(self, code: CodeType) -> TraceFn | None:
        tracer = None
        if self._wanted(code.co_filename) and id(code) not in self.skip_ids:
            if self.adopt is not None:
                try:
                    self.adopt(code)
                except Exception:
                    pass  # never the program's problem: this code is traced anyway
            tracer = self._make_tracer(code)
        self._cache(code, tracer)
        return tracer

    def _make_tracer(self, code: CodeType) -> TraceFn | None:
        filename = code.co_filename
        reported = self._reported.get(filename)
        if reported is None:
            reported = self._reported[filename] = set()
        remaining = _traced_lines(code) - reported
        if not remaining:
            return None
        pending = self._pending
        notify = self._notify
        by_id = self._by_id
        key = id(code)
        hits = self._probe_hits
        # Probe lines the compiler copied (finally bodies): the offsets of the
        # copies not run yet; such a line stays traced until all have run.
        copies = _probe_copies(code) if self.probes is not None else {}

        def local(frame: FrameType, event: str, arg: object) -> TraceFn | None:
            nonlocal remaining
            # Nearly every call is a line already seen: one test, and out.
            if frame.f_lineno in remaining and event == "line":
                if remaining:
                    line = frame.f_lineno
                    if line >= PROBE_BASE:
                        offset = frame.f_lasti
                        left = copies.get(line)
                        if left is not None:
                            if offset not in left:
                                return local
                            left.discard(offset)
                            hits.append((filename, line, offset))
                            if len(hits) == 1:
                                notify()
                            if left:
                                return local
                        else:
                            hits.append((filename, line, offset))
                    remaining.discard(line)
                    if line not in reported:  # another code object may have had it
                        reported.add(line)
                        pending.append((filename, line))
                        if len(pending) == 1:
                            notify()
                    if remaining:
                        return local
                    remaining = _EVERY_LINE
                    entry = by_id.get(key)
                    if entry is not None and entry[1] is local:  # not swept or re-made
                        by_id[key] = (entry[0], None)
                # Returning None from a line event leaves f_trace as it was.
                frame.f_trace = None
                return None
            return local

        return local

    # -- branch mode -------------------------------------------------------

    def _global_arcs(self) -> TraceFn:
        """The global trace function of branch mode: a new local tracer for
        each frame of measured code."""
        decide = self._decide_arcs

        def global_trace(
            frame: FrameType, event: str, arg: object, by_id: ById = self._by_id, _id: Any = id
        ) -> Any:
            # Called with another event only by someone who installed it as a
            # frame's local tracer: a frame tracer made mid-frame would record
            # a wrong first arc.
            if event != "call":
                return None
            try:
                factory = by_id[_id(frame.f_code)][1]
            except KeyError:
                factory = decide(frame.f_code)
            return factory(frame) if factory is not None else None

        return global_trace

    def _global_probed(self) -> TraceFn:
        """The global trace function of branch mode with probes: probed code is
        traced the line way (its cache is `_by_id`), other measured code the
        arc way (`_arc_by_id`)."""
        decide = self._decide_probed

        def global_trace(
            frame: FrameType,
            event: str,
            arg: object,
            by_id: ById = self._by_id,
            arc_by_id: ById = self._arc_by_id,
            _id: Any = id,
        ) -> Any:
            if event != "call":
                return None
            key = _id(frame.f_code)
            try:
                return by_id[key][1]
            except KeyError:
                pass
            try:
                factory = arc_by_id[key][1]
            except KeyError:
                return decide(frame)
            return factory(frame)

        return global_trace

    def _decide_probed(self, frame: FrameType) -> TraceFn | None:
        code = frame.f_code
        if not self._wanted(code.co_filename) or id(code) in self.skip_ids:
            self._cache(code, None)
            return None
        if id(code) in self.probes.code_ids:
            tracer = self._make_tracer(code)
            self._cache(code, tracer)
            return tracer
        try:
            self.probes.adopt(code)
        except Exception:
            pass  # never the program's problem: this code is recorded anyway
        factory = self._make_arc_factory(code)
        self._cache(code, factory, arc_way=True)
        return factory(frame)

    def _decide_arcs(self, code: CodeType) -> FrameTracerFactory | None:
        filename = code.co_filename
        factory = self._make_arc_factory(code) if self._wanted(filename) else None
        self._cache(code, factory)
        return factory

    def _make_arc_factory(self, code: CodeType) -> FrameTracerFactory:
        """What makes the local tracer of each frame of `code` (its `last` line is
        per frame), following docs/branches.md section "How the tracers record arcs"."""
        filename = code.co_filename
        exit_line = -code.co_firstlineno
        seen = self._seen_arcs.get(filename)
        if seen is None:
            seen = self._seen_arcs[filename] = set()
        pending = self._pending_arcs
        notify = self._notify

        def record(arc: tuple[int, int]) -> None:
            seen.add(arc)
            pending.append((filename, arc[0], arc[1]))
            if len(pending) == 1:
                notify()

        if not code.co_flags & _RESUMABLE:

            def new_frame(frame: FrameType) -> TraceFn:
                last = exit_line

                def local(frame: FrameType, event: str, arg: object) -> TraceFn:
                    nonlocal last
                    if event == "line":
                        line = frame.f_lineno
                        arc = (last, line)
                        last = line
                        if arc not in seen:
                            record(arc)
                    elif event == "return":
                        arc = (last, exit_line)
                        if arc not in seen:
                            record(arc)
                    return local

                return local

            return new_frame

        co_code = code.co_code
        end = len(co_code) - 2

        def resumed_frame(frame: FrameType) -> TraceFn:
            # RESUME with oparg 0 starts the code object; others continue it.
            last = frame.f_lineno if co_code[frame.f_lasti + 1] != 0 else exit_line

            def local(frame: FrameType, event: str, arg: object) -> TraceFn:
                nonlocal last
                if event == "line":
                    line = frame.f_lineno
                    arc = (last, line)
                    last = line
                    if arc not in seen:
                        record(arc)
                elif event == "return":
                    # Leaving the frame for good, or only yielding?
                    lasti = frame.f_lasti
                    if lasti == end or co_code[lasti + _AFTER_YIELD] != _RESUME:
                        arc = (last, exit_line)
                        if arc not in seen:
                            record(arc)
                return local

            return local

        return resumed_frame

    def pending(self) -> bool:
        """Is there data a drain would return?"""
        return bool(self._pending) or bool(self._pending_arcs) or bool(self._probe_hits)

    def drain(self) -> tuple[Lines, Arcs]:
        """New lines since the last drain; in branch mode, new arcs too (without
        probes, the lines are the positive ends of the new arcs)."""
        if not self._branch:
            return drain_lines(self._pending), {}
        if self.probes is None:
            return drain_arcs(self._pending_arcs)
        return drain_probed(
            self._pending, self._pending_arcs, self._probe_hits, self.probes.tables
        )

    def after_fork_in_child(self) -> None:
        """Forget what the parent saw: the child records every line it runs
        from here on in frames that start after the fork."""
        del self._pending[:]
        del self._pending_arcs[:]
        del self._probe_hits[:]
        for lines in self._reported.values():
            lines.clear()  # in place: tracers hold these sets
        for seen in self._seen_arcs.values():
            seen.clear()  # in place: running frames' tracers hold these sets
        self._by_id.clear()
        self._arc_by_id.clear()
