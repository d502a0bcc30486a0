"""The ``sys.monitoring`` core (CPython 3.12+).

Cost model: a ``PY_START`` callback runs once per code object and decides
whether its file is measured; measured code objects get ``LINE`` events, and
each line location reports once and is then disabled. Code that is not
measured, and every line already recorded, runs at full speed.

Branch mode (``docs/branches.md``, "How the tracers record arcs") keeps that
cost model for code compiled with branch probes (``mpcov.probes``; the
`probes` object handed in loads it): the lines and probes it reports are
turned into arcs at drain time through the file's witness tables. Any other
measured code object (a script run as ``python script.py``, code made by
``exec``) is recorded the slow, complete way: every ``LINE`` of its frames,
with each frame's last line, and its ``PY_START``/``PY_RESUME``/
``PY_RETURN``/``PY_YIELD``/``PY_UNWIND``/``PY_THROW`` events, exactly the
recipe that reproduces coverage.py's raw arcs.
"""

from __future__ import annotations

import _thread
import sys

from mpcov.cores import PROBE_BASE, drain_lines, drain_probed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import CodeType
    from typing import Any

    from mpcov.fragment import Arcs, Lines

_mon = sys.monitoring
_E = _mon.events
_DISABLE = _mon.DISABLE
# coverage.py takes COVERAGE_ID (1); debuggers 0, profilers 2, optimizers 5.
# 3 and 4 have no owner; fall back to the others only if both are taken.
TOOL_IDS = (4, 3, 2, 0, 5)
TOOL_NAME = "mpcov"
# Local events of a code object recorded the complete way.
_FULL_EVENTS = _E.LINE | _E.PY_RETURN | _E.PY_YIELD | _E.PY_RESUME
_get_ident = _thread.get_ident


class NoToolIdError(RuntimeError):
    """Every sys.monitoring tool id is taken by other tools."""


class MonitoringCore:
    """Records executed lines (and, given `probes`, arcs) with sys.monitoring.

    `probes`, for branch mode, is an ``mpcov.rewrite.ProbeLoader``: its
    ``install()``/``uninstall()``, ``code_ids`` (probed code objects) and
    ``tables`` (file -> line and probe witnesses) are used.
    """

    name = "monitoring"

    def __init__(
        self, wanted: Callable[[str], bool], notify: Callable[[], None], probes: Any = None
    ) -> None:
        self._wanted = wanted
        self._notify = notify
        #: the probe loader (branch mode; mpcov.runscript reads it too)
        self.probes = probes
        self._pending: list[tuple[str, int]] = []
        self._tool: int | None = None
        # Branch mode, code recorded the complete way: new arcs, arcs seen,
        # the code objects (by id, kept alive in `_full_codes`), their
        # offset -> line maps, and each thread's stack of [last line, thrown].
        self._pending_arcs: list[tuple[str, int, int]] = []
        self._probe_hits: list[tuple[str, int, int]] = []  # (file, probe line, offset)
        self._seen_arcs: set[tuple[str, int, int]] = set()
        self._full: set[int] = set()
        self._full_codes: list[CodeType] = []
        self._offset_lines: dict[int, dict[int, int]] = {}
        self._stacks: dict[int, list[list[int]]] = {}

    def _claim_tool_id(self) -> int:
        for tool in TOOL_IDS:
            if _mon.get_tool(tool) is None:
                _mon.use_tool_id(tool, TOOL_NAME)
                return tool
        owners = ", ".join(f"{t}={_mon.get_tool(t)}" for t in TOOL_IDS)
        raise NoToolIdError(f"no free sys.monitoring tool id ({owners})")

    def _callbacks(self) -> dict[int, Callable[..., object]]:
        if self.probes is None:
            return {_E.PY_START: self._on_start, _E.LINE: self._on_line}
        return {
            _E.PY_START: self._on_start_branch,
            _E.LINE: self._on_line_branch,
            _E.PY_RESUME: self._on_resume,
            _E.PY_RETURN: self._on_return,
            _E.PY_YIELD: self._on_yield,
            _E.PY_UNWIND: self._on_unwind,
            _E.PY_THROW: self._on_throw,
        }

    def start(self) -> None:
        """Claim a tool id and start watching every code object that starts."""
        tool = self._tool = self._claim_tool_id()
        for event, callback in self._callbacks().items():
            _mon.register_callback(tool, event, callback)
        if self.probes is not None:
            self.probes.install()
        _mon.set_events(tool, _E.PY_START)

    def stop(self) -> None:
        """Stop all events and give the tool id back."""
        tool = self._tool
        if tool is None:
            return
        self._tool = None
        _mon.set_events(tool, 0)
        for event in self._callbacks():
            _mon.register_callback(tool, event, None)
        _mon.free_tool_id(tool)
        if self.probes is not None:
            self.probes.uninstall()

    # -- line mode ---------------------------------------------------------------

    def _on_start(self, code: CodeType, offset: int) -> object:
        if self._wanted(code.co_filename) and self._tool is not None:
            _mon.set_local_events(self._tool, code, _E.LINE)
        return _DISABLE

    def _on_line(self, code: CodeType, line: int) -> object:
        pending = self._pending
        pending.append((code.co_filename, line))
        if len(pending) == 1:
            self._notify()
        return _DISABLE

    # -- branch mode ---------------------------------------------------------------

    def _on_start_branch(self, code: CodeType, offset: int) -> object:
        key = id(code)
        if key in self._full:
            self._frames().append([-code.co_firstlineno, 0])
            return None
        tool = self._tool
        if tool is None or not self._wanted(code.co_filename):
            return _DISABLE
        if key in self.probes.code_ids:
            _mon.set_local_events(tool, code, _E.LINE)
            return _DISABLE
        # Not probed: record this code object completely, from this frame on,
        # and let the probe loader give the main module's functions probed
        # code for their next calls.
        try:
            self.probes.adopt(code)
        except Exception:
            pass  # never the program's problem: this code is recorded anyway
        if not self._full:
            _mon.set_events(tool, _E.PY_START | _E.PY_UNWIND | _E.PY_THROW)
        self._full.add(key)
        self._full_codes.append(code)
        _mon.set_local_events(tool, code, _FULL_EVENTS)
        self._frames().append([-code.co_firstlineno, 0])
        return None

    def _on_line_branch(self, code: CodeType, line: int) -> object:
        if id(code) in self._full:
            frames = self._stacks.get(_get_ident())
            if frames:
                frame = frames[-1]
                self._arc(code.co_filename, frame[0], line)
                frame[0] = line
                frame[1] = 0
            return None
        if line >= PROBE_BASE:
            # Which copy of the probe ran matters where the compiler copied it
            # (finally bodies): the frame is the caller of this callback.
            self._probe_hits.append((code.co_filename, line, sys._getframe(1).f_lasti))
            line = PROBE_BASE  # a marker: `pending` is what notify() watches
        pending = self._pending
        pending.append((code.co_filename, line))
        if len(pending) == 1:
            self._notify()
        return _DISABLE

    def _frames(self) -> list[list[int]]:
        ident = _get_ident()
        frames = self._stacks.get(ident)
        if frames is None:
            frames = self._stacks[ident] = []
        return frames

    def _arc(self, filename: str, start: int, end: int) -> None:
        arc = (filename, start, end)
        if arc not in self._seen_arcs:
            self._seen_arcs.add(arc)
            pending = self._pending_arcs
            pending.append(arc)
            if len(pending) == 1:
                self._notify()

    def _line_at(self, code: CodeType, offset: int) -> int:
        lines = self._offset_lines.get(id(code))
        if lines is None:
            lines = self._offset_lines[id(code)] = {
                at: line
                for start, end, line in code.co_lines()
                if line is not None
                for at in range(start, end, 2)
            }
        return lines.get(offset, 0)

    def _on_resume(self, code: CodeType, offset: int) -> object:
        # Local event: only code recorded the complete way has it.
        self._frames().append([self._line_at(code, offset), 0])
        return None

    def _on_throw(self, code: CodeType, offset: int, exc: BaseException) -> object:
        if id(code) in self._full:
            self._frames().append([self._line_at(code, offset), 1])
        return None

    def _leave(self, code: CodeType) -> None:
        frames = self._stacks.get(_get_ident())
        if frames:
            last, thrown = frames.pop()
            # An exception thrown in at a yield and not caught leaves no exit
            # arc (coverage.py's tracer takes it for a yield).
            if not thrown:
                self._arc(code.co_filename, last, -code.co_firstlineno)

    def _on_return(self, code: CodeType, offset: int, value: object) -> object:
        self._leave(code)
        return None

    def _on_unwind(self, code: CodeType, offset: int, exc: BaseException) -> object:
        if id(code) in self._full:
            self._leave(code)
        return None

    def _on_yield(self, code: CodeType, offset: int, value: object) -> object:
        frames = self._stacks.get(_get_ident())
        if frames:
            frames.pop()
        return None

    # -- data ------------------------------------------------------------------------

    def pending(self) -> bool:
        """Is there data a drain would return?"""
        return bool(self._pending) or bool(self._pending_arcs) or bool(self._probe_hits)

    def drain(self) -> tuple[Lines, Arcs]:
        """New lines since the last drain; in branch mode, new arcs too."""
        if self.probes is None:
            return drain_lines(self._pending), {}
        return drain_probed(
            self._pending, self._pending_arcs, self._probe_hits, self.probes.tables
        )

    def after_fork_in_child(self) -> None:
        """Forget the parent's pending data and re-arm every disabled event, so
        the child records every line it runs, not only those new to the parent."""
        del self._pending[:]
        del self._pending_arcs[:]
        del self._probe_hits[:]
        self._seen_arcs.clear()
        ident = _get_ident()
        self._stacks = {ident: self._stacks.get(ident, [])}
        if self._tool is not None:
            _mon.restart_events()
