"""The ``sys.settrace`` core (CPython 3.11, branch coverage, or ``MPCOV_CORE=settrace``).

The global trace function decides once per code object whether it is
measured; measured frames get a local trace function that records each line
once. When every line of a code object has been seen, that code object is no
longer traced at all (new frames get no local tracer, and the current frame
drops its own), so hot, fully covered code runs at nearly full speed.

With ``branch=True`` it records arcs instead, as ``docs/branches.md`` ("How
the tracers record arcs") specifies: every measured frame gets its own local
tracer holding the frame's last line, and stays traced, since every
transition counts. Each arc is reported once per process.
"""

from __future__ import annotations

import _thread
import sys

from mpcov.cores import drain_arcs, drain_lines

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import CodeType, FrameType
    from typing import Any

    from mpcov.fragment import Arcs, Lines

    TraceFn = Callable[[FrameType, str, object], object]
    # Branch mode: makes the local tracer of one new frame.
    FrameTracerFactory = Callable[[FrameType], TraceFn]


_real_start_new_thread = _thread.start_new_thread

# Code flags of functions whose frames can be suspended and resumed.
_RESUMABLE = 0x20 | 0x80 | 0x200  # CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR
_RESUME: int = {(3, 11): 151, (3, 12): 151, (3, 13): 149}.get(sys.version_info[:2], 0)
if not _RESUME:  # pragma: no cover - an interpreter newer than mpcov knows
    import opcode

    _RESUME = opcode.opmap["RESUME"]
# A yield stops before the RESUME it continues at; 3.13 reports that RESUME itself.
_AFTER_YIELD = 0 if sys.version_info[:2] == (3, 13) else 2


class SettraceCore:
    """Records executed lines with sys.settrace (all threads)."""

    name = "settrace"

    def __init__(
        self, wanted: Callable[[str], bool], notify: Callable[[], None], branch: bool = False
    ) -> None:
        self._wanted = wanted
        self._notify = notify
        self._branch = branch
        self._pending: list[tuple[str, int]] = []
        # Branch mode: new (filename, from, to) arcs, and every arc reported
        # so far per file (emptied in place after a fork).
        self._pending_arcs: list[tuple[str, int, int]] = []
        self._seen_arcs: dict[str, set[tuple[int, int]]] = {}
        self._factories: dict[str, dict[CodeType, FrameTracerFactory | None]] = {}
        # filename -> code object -> local trace function, or None when not
        # traced (not measured, or every line already seen). Keyed by file
        # first because code objects compare equal across files: identical
        # functions at the same line of two files are == (co_filename is not
        # part of code equality).
        self._tracers: dict[str, dict[CodeType, TraceFn | None]] = {}
        self._active = False
        if branch:
            self._global = self._global_arcs  # type: ignore[method-assign]

    def start(self) -> None:
        """Trace the current thread and every thread started from now on."""
        self._active = True
        if "threading" in sys.modules or sys.version_info >= (3, 13):
            # threading has already captured _thread's functions (or, on 3.13+,
            # starts threads another way): use its own hook.
            import threading

            threading.settrace(self._global)  # type: ignore[arg-type]
        else:
            # Importing threading costs ~2.5 ms per process: instead, wrap the
            # primitive that threading (imported later) and _thread users call.
            _thread.start_new_thread = self._traced_start
        sys.settrace(self._global)  # type: ignore[arg-type]

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
        if "threading" in sys.modules:
            import threading

            threading.settrace(None)
        sys.settrace(None)

    def _global(self, frame: FrameType, event: str, arg: object) -> TraceFn | None:
        if event != "call":
            return None
        code = frame.f_code
        filename = code.co_filename
        in_file = self._tracers.get(filename)
        if in_file is None:
            in_file = self._tracers[filename] = {}
        try:
            return in_file[code]
        except KeyError:
            pass
        tracer = self._make_tracer(code, in_file) if self._wanted(filename) else None
        in_file[code] = tracer
        return tracer

    def _make_tracer(
        self, code: CodeType, tracers: dict[CodeType, TraceFn | None]
    ) -> TraceFn | None:
        remaining = {line for _, _, line in code.co_lines() if line is not None}
        if not remaining:
            return None
        filename = code.co_filename
        pending = self._pending
        notify = self._notify

        def local(frame: FrameType, event: str, arg: object) -> TraceFn | None:
            if event == "line":
                line = frame.f_lineno
                if line in remaining:
                    remaining.discard(line)
                    pending.append((filename, line))
                    if len(pending) == 1:
                        notify()
                    if not remaining:
                        tracers[code] = None
                        frame.f_trace = None
                        return None
            return local

        return local

    # -- branch mode -------------------------------------------------------

    def _global_arcs(self, frame: FrameType, event: str, arg: object) -> TraceFn | None:
        if event != "call":
            return None
        code = frame.f_code
        filename = code.co_filename
        in_file = self._factories.get(filename)
        if in_file is None:
            in_file = self._factories[filename] = {}
        try:
            factory = in_file[code]
        except KeyError:
            factory = in_file[code] = (
                self._make_arc_factory(code) if self._wanted(filename) else None
            )
        return factory(frame) if factory is not None else None

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
        resumable = bool(code.co_flags & _RESUMABLE)
        co_code = code.co_code if resumable else b""
        end = len(co_code) - 2

        def real_return(frame: FrameType) -> bool:
            """Is this "return" leaving the frame for good, not yielding?"""
            lasti = frame.f_lasti
            return lasti == end or co_code[lasti + _AFTER_YIELD] != _RESUME

        def new_frame(frame: FrameType) -> TraceFn:
            # RESUME with oparg 0 starts the code object; others continue a generator.
            resumed = resumable and co_code[frame.f_lasti + 1] != 0
            last = frame.f_lineno if resumed else exit_line

            def local(frame: FrameType, event: str, arg: object) -> TraceFn:
                nonlocal last
                if event == "line":
                    line = frame.f_lineno
                    arc = (last, line)
                    last = line
                elif event == "return" and (not resumable or real_return(frame)):
                    arc = (last, exit_line)
                else:
                    return local
                if arc not in seen:
                    seen.add(arc)
                    pending.append((filename, arc[0], arc[1]))
                    if len(pending) == 1:
                        notify()
                return local

            return local

        return new_frame

    def pending(self) -> bool:
        """Is there data a drain would return?"""
        return bool(self._pending) or bool(self._pending_arcs)

    def drain(self) -> tuple[Lines, Arcs]:
        """New lines since the last drain; in branch mode, new arcs too (the
        lines are then the positive ends of the new arcs)."""
        if self._branch:
            return drain_arcs(self._pending_arcs)
        return drain_lines(self._pending), {}

    def after_fork_in_child(self) -> None:
        """Forget what the parent saw: the child records every line it runs
        from here on in frames that start after the fork."""
        del self._pending[:]
        del self._pending_arcs[:]
        for seen in self._seen_arcs.values():
            seen.clear()  # in place: running frames' tracers hold these sets
        self._tracers.clear()
        self._factories.clear()
