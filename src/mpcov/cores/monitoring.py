"""The ``sys.monitoring`` core (CPython 3.12+).

Cost model: a ``PY_START`` callback runs once per code object and decides
whether its file is measured; measured code objects get ``LINE`` events, and
each line location reports once and is then disabled. Code that is not
measured, and every line already recorded, runs at full speed.
"""

from __future__ import annotations

import sys

from mpcov.cores import drain_lines

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import CodeType

    from mpcov.fragment import Arcs, Lines

_mon = sys.monitoring
_E = _mon.events
_DISABLE = _mon.DISABLE
# coverage.py takes COVERAGE_ID (1); debuggers 0, profilers 2, optimizers 5.
# 3 and 4 have no owner; fall back to the others only if both are taken.
TOOL_IDS = (4, 3, 2, 0, 5)
TOOL_NAME = "mpcov"


class NoToolIdError(RuntimeError):
    """Every sys.monitoring tool id is taken by other tools."""


class MonitoringCore:
    """Records executed lines with sys.monitoring."""

    name = "monitoring"

    def __init__(self, wanted: Callable[[str], bool], notify: Callable[[], None]) -> None:
        self._wanted = wanted
        self._notify = notify
        self._pending: list[tuple[str, int]] = []
        self._tool: int | None = None

    def _claim_tool_id(self) -> int:
        for tool in TOOL_IDS:
            if _mon.get_tool(tool) is None:
                _mon.use_tool_id(tool, TOOL_NAME)
                return tool
        owners = ", ".join(f"{t}={_mon.get_tool(t)}" for t in TOOL_IDS)
        raise NoToolIdError(f"no free sys.monitoring tool id ({owners})")

    def start(self) -> None:
        """Claim a tool id and start watching every code object that starts."""
        tool = self._tool = self._claim_tool_id()
        _mon.register_callback(tool, _E.PY_START, self._on_start)
        _mon.register_callback(tool, _E.LINE, self._on_line)
        _mon.set_events(tool, _E.PY_START)

    def stop(self) -> None:
        """Stop all events and give the tool id back."""
        tool = self._tool
        if tool is None:
            return
        self._tool = None
        _mon.set_events(tool, 0)
        _mon.register_callback(tool, _E.PY_START, None)
        _mon.register_callback(tool, _E.LINE, None)
        _mon.free_tool_id(tool)

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

    def pending(self) -> bool:
        """Is there data a drain would return?"""
        return bool(self._pending)

    def drain(self) -> tuple[Lines, Arcs]:
        """New lines since the last drain."""
        return drain_lines(self._pending), {}

    def after_fork_in_child(self) -> None:
        """Forget the parent's pending data and re-arm every disabled event, so
        the child records every line it runs, not only those new to the parent."""
        del self._pending[:]
        if self._tool is not None:
            _mon.restart_events()
