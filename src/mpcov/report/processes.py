"""The process tree: which processes ran, who started them, how they ended.

Parents are found from the data itself: a forked child names its parent's
fragment; any other child names its parent's pid, matched to the process
with that pid on the same host that was running when the child started.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import IO, Any

Process = Mapping[str, Any]


def _parent_index(procs: Sequence[Process]) -> dict[int, int | None]:
    """For each process index, the index of its parent (None for roots)."""
    by_fragment = {p["fragment"]: i for i, p in enumerate(procs)}
    by_pid: dict[tuple[str, int], list[int]] = {}
    for i, p in enumerate(procs):
        by_pid.setdefault((p.get("host") or "", p.get("pid") or 0), []).append(i)
    parents: dict[int, int | None] = {}
    for i, p in enumerate(procs):
        parent = by_fragment.get(p.get("parent_fragment") or "")
        if parent is None:
            parent = _running_at(procs, by_pid.get((p.get("host") or "", p.get("ppid") or 0), []),
                                 p.get("start") or 0.0)
        parents[i] = parent if parent != i else None
    return parents


def _running_at(procs: Sequence[Process], candidates: list[int], when: float) -> int | None:
    best = None
    for i in candidates:
        start = procs[i].get("start") or 0.0
        end = procs[i].get("end")
        running = start <= when and (end is None or end >= when - 1.0)
        if running and (best is None or start > (procs[best].get("start") or 0.0)):
            best = i
    return best


def _command(argv: Sequence[str], width: int) -> str:
    text = " ".join(argv)
    return text if len(text) <= width else text[: width - 3] + "..."


def _ending(p: Process) -> str:
    how = p.get("end_how") or "unknown"
    status = p.get("exit_status")
    if how == "signal" and isinstance(status, int):
        return f"signal {-status}"
    if how == "_exit":
        return f"_exit({status})"
    if how == "exit" and status is not None:
        return f"exit({status})"
    if how == "unknown":
        return "killed?"  # no end record: SIGKILL, OOM, or a crash of the interpreter
    return how


def render_processes(
    procs: Sequence[Process], line_counts: Mapping[int, int], out: IO[str], *, width: int = 100
) -> None:
    """Write the process tree with per-process counts of executed lines."""
    parents = _parent_index(procs)
    children: dict[int | None, list[int]] = {}
    for i in range(len(procs)):
        children.setdefault(parents[i], []).append(i)
    out.write(f"{'Process':<{width - 26}} {'Lines':>7}  Ended\n")
    out.write("-" * (width - 4) + "\n")

    def walk(index: int, prefix: str, last: bool, depth: int) -> None:
        p = procs[index]
        branch = "" if depth == 0 else ("└─ " if last else "├─ ")
        label = f"{prefix}{branch}pid {p.get('pid')}: "
        label += _command(p.get("argv") or [], max(20, width - 28 - len(label)))
        out.write(f"{label:<{width - 26}} {line_counts.get(p['id'], 0):>7}  {_ending(p)}\n")
        kids = children.get(index, [])
        inner = prefix if depth == 0 else prefix + ("   " if last else "│  ")
        for n, kid in enumerate(kids):
            walk(kid, inner, n == len(kids) - 1, depth + 1)

    for n, root in enumerate(children.get(None, [])):
        walk(root, "", n == len(children[None]) - 1, 0)
    out.write("-" * (width - 4) + "\n")
    out.write(f"{len(procs)} process{'es' if len(procs) != 1 else ''}\n")
