"""Running mpcov and measured programs as real processes, as users do.

Every integration test goes through :func:`mpcov` (``sys.executable -m mpcov``:
the interpreter running the tests has mpcov installed, ``.pth`` file and all)
and reads results through :func:`json_report`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Result:
    """A finished command: status and output."""

    returncode: int
    stdout: str
    stderr: str


def run(
    argv: list[str],
    cwd: Path,
    *,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 120,
) -> Result:
    """Run a command to completion and capture its output."""
    proc = subprocess.run(
        argv,
        cwd=cwd,
        env=env if env is not None else dict(os.environ),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def mpcov(*args: str, cwd: Path, **kwargs: object) -> Result:
    """``python -m mpcov ARGS`` in `cwd`."""
    return run([sys.executable, "-m", "mpcov", *args], cwd, **kwargs)  # type: ignore[arg-type]


def write(root: Path, files: dict[str, str]) -> None:
    """Create files (dedented) under `root`."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def json_report(cwd: Path, *extra: str) -> dict[str, dict[str, object]]:
    """Run ``mpcov json`` and return the ``files`` mapping keyed by relative name."""
    out = cwd / "mpcov-test-report.json"
    res = mpcov("json", "-o", str(out), *extra, cwd=cwd)
    assert res.returncode == 0, res.stderr
    data = json.loads(out.read_text())
    files = {}
    for name, entry in data["files"].items():
        path = Path(name)
        if path.is_absolute():
            try:
                name = str(path.resolve().relative_to(cwd.resolve()))
            except ValueError:
                pass
        files[name] = entry
    return files


def executed(cwd: Path, name: str) -> set[int]:
    """Executed lines of file `name` in the JSON report (empty if absent)."""
    entry = json_report(cwd).get(name)
    return set(entry["executed_lines"]) if entry else set()  # type: ignore[call-overload]


def marked_lines(path: Path, marker: str) -> set[int]:
    """Line numbers of `path` whose text ends with the comment `# <marker>`."""
    lines = path.read_text().splitlines()
    return {i for i, text in enumerate(lines, 1) if text.rstrip().endswith(f"# {marker}")}
