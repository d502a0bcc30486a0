"""Branch coverage with probes, through real processes.

`mpcov run --branch script.py` starts the script through mpcov's runner so
that it is compiled with branch probes: the program must not notice (output,
exit status, tracebacks, ``sys.argv``, ``sys.path[0]``, ``__main__``). Imported
modules are probed through the import system and cached between runs.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest

from .helpers import Result, run, write

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="branch probes are used from Python 3.11"
)

PROBE_BASE = 1 << 29

INTROSPECT = """\
import pickle
import sys

import helper


class Point:
    def __init__(self, x):
        self.x = x


def probed(function):
    if function is None:
        return False
    return any(line and line >= PROBE_BASE for _, _, line in function.__code__.co_lines())


PROBE_BASE = 1 << 29
print(sys.argv)
print(sys.path[0])
print(__name__, __file__, __cached__, __spec__, __package__, type(__loader__).__name__)
print(sorted(k for k in globals() if k.startswith("__")))
print(pickle.loads(pickle.dumps(Point(3))).x)
print(sys.stdin.read().upper())
if "--probed" in sys.argv:
    print(probed(probed), probed(helper.branchy))
helper.branchy(len(sys.argv))
"""

HELPER = """\
def branchy(n):
    if n > 2:
        return "many"
    return "few"
"""


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "MPCOV_"))}
    return {**env, **extra}


def python(*args: str, cwd: Path, stdin: str = "") -> Result:
    return run([sys.executable, *args], cwd, env=clean_env(), timeout=120, input=stdin)


def mpcov_run(*args: str, cwd: Path, stdin: str = "", **env: str) -> Result:
    return run([sys.executable, "-m", "mpcov", "run", "--branch", *args], cwd,
               env=clean_env(MPCOV_CACHE_DIR=str(cwd / "probe-cache"), **env), timeout=120,
               input=stdin)


def test_the_runner_is_invisible_to_the_program(tmp_path: Path) -> None:
    write(tmp_path, {"prog.py": INTROSPECT, "helper.py": HELPER})
    plain = python("prog.py", "a", "b", cwd=tmp_path, stdin="some input")
    measured = mpcov_run("prog.py", "a", "b", cwd=tmp_path, stdin="some input")
    assert (measured.returncode, measured.stdout, measured.stderr) == (
        plain.returncode, plain.stdout, plain.stderr)
    assert "['prog.py', 'a', 'b']" in measured.stdout


def test_the_script_and_its_imports_are_compiled_with_probes(tmp_path: Path) -> None:
    write(tmp_path, {"prog.py": INTROSPECT, "helper.py": HELPER})
    measured = mpcov_run("prog.py", "--probed", cwd=tmp_path)
    assert measured.returncode == 0, measured.stderr
    assert measured.stdout.splitlines()[-1] == "True True"
    # The probed code was cached; a second run reads it and measures the same.
    cached = sorted(p.name for p in (tmp_path / "probe-cache").iterdir())
    assert any(name.startswith("prog.") for name in cached)
    assert any(name.startswith("helper.") for name in cached)
    first = json_report(tmp_path)
    assert mpcov_run("prog.py", "--probed", cwd=tmp_path).returncode == 0
    assert json_report(tmp_path) == first
    assert first["helper.py"]["executed_branches"] == [[2, 4]]
    assert first["helper.py"]["missing_branches"] == [[2, 3]]


def json_report(cwd: Path) -> dict[str, dict[str, object]]:
    out = run([sys.executable, "-m", "mpcov", "json", "-o", "-"], cwd, env=clean_env())
    assert out.returncode == 0, out.stderr
    files: dict[str, dict[str, object]] = json.loads(out.stdout)["files"]
    return files


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("print('out')\n", 0),
        ("import sys\nprint('bye')\nsys.exit(3)\n", 3),
        ("def f():\n    raise ValueError('boom')\n\nf()\n", 1),
        ("raise SystemExit('a message')\n", 1),
        ("import os\nos._exit(7)\n", 7),
        ("raise KeyboardInterrupt\n", -signal.SIGINT),
    ],
    ids=["normal", "sys.exit", "exception", "exit-message", "os._exit", "ctrl-c"],
)
def test_exit_status_and_output_as_python(tmp_path: Path, body: str, status: int) -> None:
    write(tmp_path, {"prog.py": body})
    plain = python("prog.py", cwd=tmp_path)
    measured = mpcov_run("prog.py", cwd=tmp_path)
    assert plain.returncode == status
    assert (measured.returncode, measured.stdout, measured.stderr) == (
        plain.returncode, plain.stdout, plain.stderr)


CHILD_SCRIPT = """\
import sys


class Shape:
    def area(self, n):
        if n > 1:
            return n * n
        return 0

    @staticmethod
    def kind(n):
        if n:
            return "some"
        return "none"


def probed(function):
    if function is None:
        return False
    return any(line and line >= 1 << 29 for _, _, line in function.__code__.co_lines())


def main():
    total = 0
    for n in range(5):
        total += Shape().area(n)
    return total


print(main(), Shape.kind(0))
print(probed(main), probed(Shape.area), probed(Shape.kind))
"""

PARENT_SCRIPT = """\
import subprocess
import sys

out = subprocess.run([sys.executable, "child.py"], capture_output=True, text=True)
print(out.stdout, end="")
"""


def test_a_child_script_gets_probed_functions_after_their_first_call(tmp_path: Path) -> None:
    """`python child.py` compiles child.py itself: its functions get probed code
    after they first run, and the results are still coverage.py's."""
    write(tmp_path, {"parent.py": PARENT_SCRIPT, "child.py": CHILD_SCRIPT})
    measured = mpcov_run("parent.py", cwd=tmp_path)
    assert measured.returncode == 0, measured.stderr
    assert measured.stdout.splitlines() == ["29 none", "True True True"]
    child = json_report(tmp_path)["child.py"]
    lines = CHILD_SCRIPT.splitlines()

    def at(text: str) -> int:
        return next(n for n, line in enumerate(lines, 1) if line.strip() == text)

    area, kind, none, loop = at("if n > 1:"), at("if n:"), at("if function is None:"), at(
        "for n in range(5):")
    assert child["missing_branches"] == [[kind, kind + 1], [none, none + 1]]
    assert child["executed_branches"] == [
        [area, area + 1], [area, area + 2], [kind, kind + 2], [none, none + 2],
        [loop, loop + 1], [loop, loop + 2]]
