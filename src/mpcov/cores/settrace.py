"""The ``sys.settrace`` core (CPython 3.11, or ``MPCOV_CORE=settrace``).

The global trace function decides once per code object whether it is
measured; measured frames get a local trace function that records each line
once. When every line of a code object has been seen, that code object is no
longer traced at all (new frames get no local tracer, and the current frame
drops its own), so hot, fully covered code runs at nearly full speed.
"""

from __future__ import annotations

import _thread
import sys

from mpcov.cores import drain_lines

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import CodeType, FrameType
    from typing import Any

    from mpcov.fragment import Arcs, Lines

    TraceFn = Callable[[FrameType, str, object], object]


_real_start_new_thread = _thread.start_new_thread


class SettraceCore:
    """Records executed lines with sys.settrace (all threads)."""

    name = "settrace"

    def __init__(self, wanted: Callable[[str], bool], notify: Callable[[], None]) -> None:
        self._wanted = wanted
        self._notify = notify
        self._pending: list[tuple[str, int]] = []
        # filename -> code object -> local trace function, or None when not
        # traced (not measured, or every line already seen). Keyed by file
        # first because code objects compare equal across files: identical
        # functions at the same line of two files are == (co_filename is not
        # part of code equality).
        self._tracers: dict[str, dict[CodeType, TraceFn | None]] = {}
        self._active = False

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

    def pending(self) -> bool:
        """Is there data a drain would return?"""
        return bool(self._pending)

    def drain(self) -> tuple[Lines, Arcs]:
        """New lines since the last drain."""
        return drain_lines(self._pending), {}

    def after_fork_in_child(self) -> None:
        """Forget what the parent saw: the child records every line it runs
        from here on in frames that start after the fork."""
        del self._pending[:]
        self._tracers.clear()
