"""The process tree report: parents found from the data, endings shown plainly."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from mpcov.report.processes import render_processes
from mpcov.store import Store


def _proc(pid: int, ppid: int, argv: list[str], start: float, **extra: Any) -> dict[str, Any]:
    base = {
        "id": pid, "fragment": f"h.{pid}.x.frag", "host": "h", "pid": pid, "ppid": ppid,
        "parent_fragment": None, "argv": argv, "start": start, "end": start + 5,
        "end_how": "exit", "exit_status": None,
    }
    return {**base, **extra}


def test_tree_links_children_by_pid_and_forks_by_fragment() -> None:
    """A subprocess finds its parent by ppid; a forked child by the parent's fragment,
    even when the pid was reused by an earlier, unrelated process."""
    procs = [
        _proc(10, 1, ["python", "main.py"], 100.0, exit_status=3),
        _proc(11, 10, ["python", "child.py"], 101.0, end_how="signal", exit_status=-15),
        _proc(12, 10, ["python", "main.py"], 102.0, parent_fragment="h.10.x.frag",
              end_how="_exit", exit_status=0),
        _proc(13, 11, ["python", "grandchild.py"], 101.5, end_how="unknown"),
    ]
    out = io.StringIO()
    render_processes(procs, {10: 7, 11: 3, 12: 2}, out, width=80)
    lines = [line.rstrip() for line in out.getvalue().splitlines()]
    assert lines[2].startswith("pid 10: python main.py")
    assert lines[2].endswith("7  exit(3)")
    assert lines[3].startswith("├─ pid 11: python child.py")
    assert lines[3].endswith("3  signal 15")
    assert lines[4].startswith("│  └─ pid 13: python grandchild.py")
    assert lines[4].endswith("0  killed?")
    assert lines[5].startswith("└─ pid 12: python main.py")
    assert lines[5].endswith("2  _exit(0)")
    assert lines[-1] == "4 processes"


def test_long_command_lines_are_shortened() -> None:
    procs = [_proc(1, 0, ["python", "-c", "x" * 300], 1.0)]
    out = io.StringIO()
    render_processes(procs, {}, out, width=80)
    row = out.getvalue().splitlines()[2]
    assert "..." in row
    assert len(row) <= 80


def test_store_records_the_exit_status_of_the_last_image(tmp_path: Path) -> None:
    """`mpcov run` fills in its program's status on the process that ended normally."""
    with Store(str(tmp_path / "d"), create=True) as store, store.transaction():
        store.add_process("a.frag", {"host": "h", "pid": 5, "start": 1.0, "end_how": "exec"})
        store.add_process("b.frag", {"host": "h", "pid": 5, "start": 2.0, "end_how": "exit"})
        store.add_process("c.frag", {"host": "h", "pid": 6, "start": 3.0, "end_how": "exit"})
        store.set_exit_status("h", 5, 4)
        status = {p["fragment"]: p["exit_status"] for p in store.processes()}
    assert status == {"a.frag": None, "b.frag": 4, "c.frag": None}
