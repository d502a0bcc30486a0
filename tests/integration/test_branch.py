"""Branch coverage end to end: ``mpcov run --branch`` against ``coverage run --branch``.

Each test runs the same program under both tools in the same directory and
compares their JSON reports file by file: executed and missing lines, executed
and missing branches, and the branch figures of each file's summary and of the
totals. They must be identical. The text report, with its Branch and BrPart
columns and ``12->15`` arcs in Missing, must be identical too.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from .helpers import Result, run, write

coverage = pytest.importorskip(
    "coverage", minversion="7.17", reason="coverage.py >= 7.17 is the yardstick"
)

FILE_KEYS = ("executed_lines", "missing_lines", "excluded_lines", "executed_branches",
             "missing_branches")
SUMMARY_KEYS = ("covered_lines", "num_statements", "missing_lines", "num_branches",
                "num_partial_branches", "covered_branches", "missing_branches",
                "percent_branches_covered", "percent_covered", "percent_covered_display")

PROGRAM = '''\
import asyncio
import contextlib

import helper


def classify(n):
    if n < 0:
        return "negative"
    elif n == 0:
        return "zero"
    if n > 1000:  # pragma: no branch
        return "huge"
    return "positive"


def search(items, wanted):
    for item in items:
        if item == wanted:
            break
    else:
        return None
    return item


def countdown(n):
    while n > 0:
        n -= 1
        if n == 100:
            continue
    return n


def guarded(x):
    try:
        if x:
            raise ValueError(x)
        result = 1
    except ValueError:
        result = 2
    finally:
        done = True
    return result, done


def evens(n):
    for i in range(n):
        if i % 2 == 0:
            yield i


def describe(value):
    match value:
        case 0:
            return "zero"
        case [a, b] if a > b:
            return "pair"
        case str():
            return "text"
        case _:
            return "other"


async def ticker(n):
    for i in range(n):
        await asyncio.sleep(0)
        if i:
            yield i


async def main():
    seen = [v async for v in ticker(3)]
    async with contextlib.AsyncExitStack():
        if seen:
            seen.append(0)
    return seen


def managed(flag):
    with contextlib.nullcontext(flag) as f:
        if f:
            return "early"
        value = "late"
    return value


def comprehensions(n):
    squares = [i * i for i in range(n) if i % 2]
    table = {i: i for i in range(n)}
    return squares, table, sum(x for x in range(n) if x)


for n in (-1, 5):
    classify(n)
search([1, 2, 3], 2)
search([], 2)
countdown(3)
guarded(0)
guarded(1)
list(evens(5))
for v in (0, [2, 1], 1.5):
    describe(v)
asyncio.run(main())
managed(True)
comprehensions(4)
helper.check(3)
print("done")
'''

HELPER = '''\
def check(n):
    total = 0
    while True:
        total += n
        if total > 10:
            break
    if total % 2:
        return "odd"
    return "even"


def unused(x):
    if x:
        return 1
    return 2
'''

PARENT = '''\
import multiprocessing
import subprocess
import sys

import work


if __name__ == "__main__":
    out = subprocess.run([sys.executable, "child.py", "x"], capture_output=True, text=True)
    print(out.stdout.strip())
    ctx = multiprocessing.get_context("spawn")
    pool = ctx.Pool(1)
    print(pool.map(work.square, [1, 2, -3]))
    pool.close()  # not terminate(): a SIGTERMed worker loses coverage.py's data
    pool.join()
'''

CHILD = '''\
import sys

if sys.argv[1:] == ["x"]:
    print("child got x")
else:
    print("child got nothing")
for arg in sys.argv[1:]:
    if arg == "y":
        break
'''

WORK = '''\
def square(n):
    if n < 0:
        n = -n
    elif n > 100:
        n = 100
    return n * n
'''

PROCESS_RC = """\
[run]
branch = True
patch = subprocess
concurrency = multiprocessing
"""


def clean_env() -> dict[str, str]:
    """This environment without any setting of either tool."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "MPCOV_"))}


def tool(module: str, *args: str, cwd: Path) -> Result:
    """``python -m <module> ARGS`` in `cwd`."""
    return run([sys.executable, "-m", module, *args], cwd, env=clean_env(), timeout=300)


def ok(result: Result) -> Result:
    assert result.returncode == 0, result.stderr
    return result


def coverage_report(root: Path, *run_args: str) -> tuple[Result, dict[str, Any]]:
    """``coverage run RUN_ARGS`` (combined if it wrote per-process files), as JSON."""
    ran = tool("coverage", "run", *run_args, cwd=root)
    if list(root.glob(".coverage.*")):
        ok(tool("coverage", "combine", "-q", cwd=root))
    out = root / "coverage-py.json"
    ok(tool("coverage", "json", "-o", str(out), cwd=root))
    return ran, json.loads(out.read_text())


def mpcov_report(root: Path, *run_args: str) -> tuple[Result, dict[str, Any]]:
    """``mpcov run RUN_ARGS``, as ``mpcov json``."""
    ran = tool("mpcov", "run", *run_args, cwd=root)
    out = root / "mpcov.json"
    ok(tool("mpcov", "json", "-o", str(out), cwd=root))
    return ran, json.loads(out.read_text())


def branch_view(report: dict[str, Any]) -> dict[str, Any]:
    """What must agree: per-file line and branch sets and figures, and the totals."""
    files = {
        name: {
            **{key: entry[key] for key in FILE_KEYS},
            **{f"summary.{key}": entry["summary"][key] for key in SUMMARY_KEYS},
        }
        for name, entry in report["files"].items()
    }
    totals = {key: report["totals"][key] for key in SUMMARY_KEYS}
    return {"branch_coverage": report["meta"]["branch_coverage"], "files": files,
            "totals": totals}


def compare(
    root: Path, cov_args: list[str], mp_args: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run both tools; assert the program behaved the same. Returns both
    reports' :func:`branch_view`: (coverage.py's, mpcov's)."""
    cov_run, cov = coverage_report(root, *cov_args)
    mp_run, mp = mpcov_report(root, *mp_args)
    assert (mp_run.returncode, mp_run.stdout) == (cov_run.returncode, cov_run.stdout)
    assert mp_run.stderr == ""
    return branch_view(cov), branch_view(mp)


def test_branch_results_agree_with_coveragepy(tmp_path: Path) -> None:
    write(tmp_path, {"prog.py": PROGRAM, "helper.py": HELPER})
    cov, mp = compare(tmp_path, ["--branch", "prog.py"], ["--branch", "prog.py"])
    assert mp == cov
    assert mp["branch_coverage"] is True
    prog = mp["files"]["prog.py"]
    assert prog["missing_branches"] and prog["summary.num_partial_branches"]
    # The text table: Branch and BrPart columns, arcs in Missing, as coverage.py.
    for options in (["-m"], ["-m", "--skip-covered"], ["--sort=-brpart"]):
        theirs = ok(tool("coverage", "report", *options, cwd=tmp_path)).stdout
        ours = ok(tool("mpcov", "report", *options, cwd=tmp_path)).stdout
        assert ours == theirs
    assert "Branch BrPart" in ours
    assert "->" in ok(tool("mpcov", "report", "-m", cwd=tmp_path)).stdout


@pytest.mark.slow
def test_branch_results_of_child_processes_agree(tmp_path: Path) -> None:
    """A subprocess child and a multiprocessing spawn worker, with [run] branch = True."""
    write(tmp_path, {"parent.py": PARENT, "child.py": CHILD, "work.py": WORK,
                     ".coveragerc": PROCESS_RC})
    cov, mp = compare(tmp_path, ["parent.py"], ["parent.py"])
    assert set(mp["files"]) == {"parent.py", "child.py", "work.py"}
    assert mp["files"]["work.py"]["missing_branches"] == [[4, 5]]
    # One difference: a spawned worker imports the main module again (as
    # __mp_main__), so `if __name__ == "__main__":` goes to the exit there.
    # coverage.py starts measuring a spawned worker only after that import;
    # mpcov measures the whole worker process, so that branch is taken.
    cov_parent, mp_parent = cov["files"].pop("parent.py"), mp["files"].pop("parent.py")
    assert (cov_parent["missing_branches"], mp_parent["missing_branches"]) == ([[8, -1]], [])
    assert mp_parent["executed_branches"] == [[8, -1], [8, 9]]
    for key in ("executed_lines", "missing_lines", "summary.num_branches"):
        assert mp_parent[key] == cov_parent[key]
    assert mp["files"] == cov["files"]  # child.py, work.py
    cov_totals, mp_totals = cov["totals"], mp["totals"]
    assert mp_totals["covered_branches"] == cov_totals["covered_branches"] + 1
    assert mp_totals["num_branches"] == cov_totals["num_branches"]
    assert mp_totals["covered_lines"] == cov_totals["covered_lines"]


def test_branch_and_line_data_do_not_mix(tmp_path: Path) -> None:
    write(tmp_path, {"prog.py": HELPER + "check(3)\n"})
    ok(tool("mpcov", "run", "prog.py", cwd=tmp_path))
    res = tool("mpcov", "run", "--append", "--branch", "prog.py", cwd=tmp_path)
    assert res.returncode != 0
    assert res.stderr.count("\n") == 1, res.stderr
    assert "Can't combine branch coverage data with line coverage data" in res.stderr
    assert "Traceback" not in res.stderr


def test_branch_core_is_the_line_core(tmp_path: Path) -> None:
    """Branch coverage runs on the same core as line coverage: sys.monitoring on
    3.12+, line probes on 3.11; `--core settrace` still gives the settrace core, with
    the same results."""
    write(tmp_path, {"prog.py": HELPER + "check(3)\n", ".coveragerc": "[run]\nbranch = True\n"})
    out = ok(tool("mpcov", "debug", "sys", cwd=tmp_path)).stdout
    expected = "monitoring" if sys.version_info >= (3, 12) else "probes"
    assert f"core: {expected}: " in out
    assert ok(tool("mpcov", "run", "prog.py", cwd=tmp_path)).stderr == ""
    default = ok(tool("mpcov", "json", "-o", "-", cwd=tmp_path)).stdout
    assert ok(tool("mpcov", "run", "--core", "settrace", "prog.py", cwd=tmp_path)).stderr == ""
    traced = ok(tool("mpcov", "json", "-o", "-", cwd=tmp_path)).stdout
    assert json.loads(default)["files"] == json.loads(traced)["files"]
