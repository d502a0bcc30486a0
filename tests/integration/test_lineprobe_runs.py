"""The probes core (CPython 3.11) in real runs: `mpcov run`, pytest, children.

Line coverage through line probes must be coverage.py's, in the processes
where the probes reach everything (the runner, `-m`, pytest's test modules)
and in those where the core falls back to tracing (a `python script.py`
child, whose script the interpreter compiles).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from .helpers import Result, run, write
from .test_branch_monitoring import clean_env, json_report

pytestmark = pytest.mark.skipif(
    sys.version_info[:2] != (3, 11) or sys.implementation.name != "cpython",
    reason="the probes core is for CPython 3.11 (3.12+ measures with sys.monitoring)",
)

# Inside a measured process: is `function` compiled with line probes, and
# did the core fall back to tracing?
INTROSPECT = """\
def probed(function):
    return any(getattr(c, "__module__", "") == "mpcov.cores.lineprobe"
               for c in function.__code__.co_consts)


def fell_back():
    from mpcov import bootstrap
    recorder = bootstrap.recorder  # (None when coverage.py measures)
    return recorder is not None and recorder.core._fallback is not None
"""

TESTS = INTROSPECT + """\

def describe(count):
    return "none" if not count else "some"


def test_describes():
    words = [describe(n) for n in (0, 4)]
    assert words == ["none", "some"]
    print("probed:", probed(test_describes), probed(describe), "fell back:", fell_back())


def test_raises():
    try:
        int("x")
    except KeyError:
        pass
    except ValueError:
        pass
"""

PARENT = INTROSPECT + """\
import subprocess
import sys

import work

print("parent probed:", probed(work.double), "fell back:", fell_back())
out = subprocess.run([sys.executable, "child.py"], capture_output=True, text=True)
print(out.stdout, end="")
"""

CHILD = INTROSPECT + """\
import work


def main():
    print("child fell back:", fell_back(), "main probed:", probed(main))
    return work.double(2)


if __name__ == "__main__":
    main()
    main()
"""

WORK = """\
def double(n):
    if n > 100:
        return 0
    return 2 * n
"""


def mpcov_run(root: Path, *args: str) -> Result:
    env = clean_env(MPCOV_CACHE_DIR=str(root / "probe-cache"))
    return run([sys.executable, "-m", "mpcov", "run", *args], root, env=env, timeout=120)


def coverage_files(root: Path, *args: str) -> dict[str, dict[str, object]]:
    pytest.importorskip("coverage", reason="coverage.py is the yardstick")
    env = clean_env()
    rc = root / ".coveragerc"
    rc.write_text("[run]\nparallel = true\npatch = subprocess\n")
    ran = run([sys.executable, "-m", "coverage", "run", *args], root, env=env, timeout=120)
    assert "Traceback" not in ran.stderr, ran.stderr
    assert run([sys.executable, "-m", "coverage", "combine", "-q"], root, env=env).returncode == 0
    out = run([sys.executable, "-m", "coverage", "json", "-q", "-o", "-"], root, env=env)
    assert out.returncode == 0, out.stderr
    rc.unlink()
    files: dict[str, dict[str, object]] = json.loads(out.stdout)["files"]
    return files


def same_lines(ours: dict[str, dict[str, object]], theirs: dict[str, dict[str, object]],
               names: tuple[str, ...]) -> None:
    for name in names:
        for key in ("executed_lines", "missing_lines"):
            assert ours[name][key] == theirs[name][key], (name, key)


def test_pytest_test_modules_get_line_probes(tmp_path: Path) -> None:
    write(tmp_path, {"test_a.py": TESTS})
    ran = mpcov_run(tmp_path, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "probed: True True fell back: False" in ran.stdout
    assert ran.stderr == ""
    ours = json_report(tmp_path)
    theirs = coverage_files(tmp_path, "-m", "pytest", "-q", "-p", "no:cacheprovider")
    same_lines(ours, theirs, ("test_a.py",))
    # `except KeyError:` was tested (the ValueError did not match it).
    except_line = TESTS.splitlines().index("    except KeyError:") + 1
    assert except_line in ours["test_a.py"]["executed_lines"]


def test_a_script_child_falls_back_and_measures_as_coverage_py(tmp_path: Path) -> None:
    write(tmp_path, {"parent.py": PARENT, "child.py": CHILD, "work.py": WORK})
    ran = mpcov_run(tmp_path, "parent.py")
    assert ran.returncode == 0, ran.stderr
    # The parent runs through mpcov's runner: probed, no tracing. The child's
    # script was compiled by its interpreter: traced, and its functions are
    # given probed code at their first call, for the calls after it.
    assert "parent probed: True fell back: False" in ran.stdout
    assert ran.stdout.count("child fell back: True main probed: True") == 2
    ours = json_report(tmp_path)
    theirs = coverage_files(tmp_path, "parent.py")
    same_lines(ours, theirs, ("parent.py", "child.py", "work.py"))


SPAWNING = INTROSPECT + """\
import multiprocessing
import runpy


def work(n):
    return n * 2, fell_back(), probed(work)


if __name__ == "__main__":
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        print("worker:", pool.apply(work, (3,)))
    print("runpy:", runpy.__spec__.origin)
"""


def test_a_spawn_worker_runs_its_main_module_probed(tmp_path: Path) -> None:
    """The worker re-runs the main module through runpy.run_path: probed there
    too (no fallback), and runpy is still the interpreter's frozen one."""
    write(tmp_path, {"spawner.py": SPAWNING})
    ran = mpcov_run(tmp_path, "spawner.py")
    assert ran.returncode == 0, ran.stderr
    assert "worker: (6, False, True)" in ran.stdout
    assert "runpy: frozen" in ran.stdout
    line = SPAWNING.splitlines().index("    return n * 2, fell_back(), probed(work)") + 1
    assert line in json_report(tmp_path)["spawner.py"]["executed_lines"]
