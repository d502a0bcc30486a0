"""Tracer cores: the code that watches a process execute.

Every core has the same small interface (duck-typed, to keep ``typing`` out of
measured processes)::

    core = make_core(name, wanted, notify, branch, probes)
                                  # wanted(filename) -> bool, cached by the caller
                                  # notify() is called when new data becomes pending
                                  # branch: record arcs too; the monitoring core
                                  # needs `probes` (an mpcov.rewrite.ProbeLoader)
    core.start()                  # begin measuring this process (all threads)
    core.stop()
    lines, arcs = core.drain()    # new data since the last drain:
                                  #   {filename: {line, ...}}, {filename: {(from, to), ...}}
    core.after_fork_in_child()    # forget everything: the child records its own run

Cores import nothing of mpcov: they are handed what they need.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

CORES = ("monitoring", "settrace", "probes")


def choose_core(requested: str | None, branch: bool = False) -> tuple[str, str]:
    """Pick a core for this interpreter: (name, why).

    `requested` comes from the configuration or ``MPCOV_CORE``; ``None`` means
    the best one available: ``monitoring`` on 3.12+, ``probes``
    (``mpcov.cores.lineprobe``) on CPython 3.11, else ``settrace``. `branch`
    does not change the choice: every core records arcs.
    """
    has_monitoring = sys.version_info >= (3, 12)
    if requested == "settrace":
        return "settrace", "requested"
    if requested == "monitoring":
        if has_monitoring:
            return "monitoring", "requested"
        fallback = "requested monitoring, but sys.monitoring needs Python 3.12+"
    elif requested == "probes":
        if has_monitoring:
            return "monitoring", "requested probes, which are for 3.11 (3.12+ has sys.monitoring)"
        fallback = "requested probes"
    else:
        fallback = "sys.monitoring is not available before Python 3.12"
    if has_monitoring:
        return "monitoring", "sys.monitoring is available (Python 3.12+)"
    from mpcov.cores.lineprobe import unusable

    why = unusable()
    if why is not None:
        return "settrace", f"{fallback}, and line probes cannot run: {why}"
    if requested == "probes":
        return "probes", "requested"
    return "probes", f"{fallback}: self-removing line probes"


def drain_lines(pending: list[tuple[str, int]]) -> dict[str, set[int]]:
    """Take every ``(filename, line)`` recorded so far out of `pending`, grouped
    by file. Safe while callbacks append concurrently: it removes exactly the
    items it read (list slicing and slice deletion are atomic)."""
    count = len(pending)
    lines: dict[str, set[int]] = {}
    for filename, line in pending[:count]:
        found = lines.get(filename)
        if found is None:
            found = lines[filename] = set()
        found.add(line)
    del pending[:count]
    return lines


def drain_arcs(
    pending: list[tuple[str, int, int]],
) -> tuple[dict[str, set[int]], dict[str, set[tuple[int, int]]]]:
    """Take every ``(filename, from, to)`` recorded so far out of `pending`:
    (lines, arcs) by file, the lines being the positive ends of the arcs.
    Safe while callbacks append concurrently, as :func:`drain_lines`."""
    count = len(pending)
    lines: dict[str, set[int]] = {}
    arcs: dict[str, set[tuple[int, int]]] = {}
    for filename, start, end in pending[:count]:
        found = arcs.get(filename)
        if found is None:
            found = arcs[filename] = set()
            lines[filename] = set()
        found.add((start, end))
        ran = lines[filename]
        if start > 0:
            ran.add(start)
        if end > 0:
            ran.add(end)
    del pending[:count]
    return lines, arcs


#: Probe line numbers start here (mpcov.probes.PROBE_BASE, not imported:
#: that module needs ast).
PROBE_BASE = 1 << 29


def apply_witnesses(
    lines: dict[str, set[int]],
    arcs: dict[str, set[tuple[int, int]]],
    hits: list[tuple[str, int, int]],
    tables: dict[str, tuple[dict[Any, Any], dict[Any, Any]]],
) -> tuple[dict[str, set[int]], dict[str, set[tuple[int, int]]]]:
    """Branch mode with probes: add to `arcs` what the new `lines` and probe
    `hits` ``(file, probe line, offset)`` imply, by each file's witness tables
    (``mpcov.rewrite.ProbeLoader.tables``). Probe lines (and the marker line
    :data:`PROBE_BASE`) are taken out of `lines`. Returns (lines, arcs)
    without empty entries; `hits` is emptied of what it read."""
    count = len(hits)
    for filename, probe, offset in hits[:count]:
        table = tables.get(filename)
        if table is not None:
            by_probe = table[1]
            implied = by_probe.get((probe, offset))
            if implied is None:
                implied = by_probe.get(probe, ())
            arcs.setdefault(filename, set()).update(implied)
    del hits[:count]
    for filename, found in lines.items():
        probes = [line for line in found if line >= PROBE_BASE]
        found.difference_update(probes)
        table = tables.get(filename)
        if table is None:
            continue
        by_line = table[0]
        implied_by_lines: set[tuple[int, int]] = set()
        for line in found:
            witnessed = by_line.get(line)
            if witnessed:
                implied_by_lines.update(witnessed)
        if implied_by_lines:
            arcs.setdefault(filename, set()).update(implied_by_lines)
    return (
        {name: found for name, found in lines.items() if found},
        {name: found for name, found in arcs.items() if found},
    )


def drain_probed(
    pending: list[tuple[str, int]],
    pending_arcs: list[tuple[str, int, int]],
    hits: list[tuple[str, int, int]],
    tables: dict[str, tuple[dict[Any, Any], dict[Any, Any]]],
) -> tuple[dict[str, set[int]], dict[str, set[tuple[int, int]]]]:
    """Branch mode with probes, either core: the new lines of probed code, the
    lines and arcs of code recorded the complete way (unprobed code), and the
    arcs the lines and probe `hits` imply, as (lines, arcs)."""
    lines = drain_lines(pending)
    arc_lines, arcs = drain_arcs(pending_arcs)
    for filename, found in arc_lines.items():
        lines.setdefault(filename, set()).update(found)
    return apply_witnesses(lines, arcs, hits, tables)


def make_core(
    name: str,
    wanted: Callable[[str], bool],
    notify: Callable[[], None],
    branch: bool = False,
    probes: object = None,
) -> object:
    """Create the named core; `branch` records arcs. The monitoring core
    measures branches through `probes` (an ``mpcov.rewrite.ProbeLoader``);
    the settrace core uses them when given, and records arcs itself otherwise;
    the probes core needs them (a loader of kind ``lines``, or
    ``branch+lines`` with `branch`)."""
    if name == "probes":
        from mpcov.cores.lineprobe import LineProbeCore

        if probes is None:
            raise ValueError("the probes core needs its probe loader")
        return LineProbeCore(wanted, notify, probes, branch)
    if name == "monitoring":
        from mpcov.cores.monitoring import MonitoringCore

        if branch and probes is None:
            raise ValueError("the monitoring core needs probes to measure branches")
        return MonitoringCore(wanted, notify, probes if branch else None)
    from mpcov.cores.settrace import SettraceCore

    return SettraceCore(wanted, notify, branch, probes if branch else None)
