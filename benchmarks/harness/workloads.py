"""The workloads and the tools that run them, as lists of measurable cases.

A `Workload` is a list of `Case` objects, item-major and tool-minor
(``richards/python, richards/coverage, …, nbody/python, …``); the runner
goes through the whole list once per repetition, so the tools are
interleaved and a slow patch on the machine hits them all alike.
"""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from harness.envs import SetupError, Venv, clean_environ
from harness.measure import Step

PROGRAMS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "programs")

#: Tool names, in the order they run and are printed, and what each one is. A name
#: ending in ``-branch`` is the same tool measuring branch coverage.
TOOLS = {
    "python": "plain Python",
    "coverage": "coverage.py, default core",
    "coverage-sysmon": "coverage.py, COVERAGE_CORE=sysmon",
    "slipcover": "SlipCover",
    "mpcov": "mpcov run",
    "mpcov-env": "mpcov via shell-env (no `mpcov run` process, no combine)",
    "coverage-branch": "coverage.py --branch, default core",
    "coverage-sysmon-branch": "coverage.py --branch, COVERAGE_CORE=sysmon (on 3.12/3.13 "
                              "coverage.py warns no-sysmon and uses its C tracer)",
    "slipcover-branch": "SlipCover --branch",
    "mpcov-branch": "mpcov run --branch",
    "mpcov-env-branch": "mpcov via shell-env --branch",
}
MODES = ("line", "branch", "both")
BRANCH = "-branch"


@dataclass
class Case:
    """One thing to time: `item` run by `tool`, after `prepare()` (untimed)."""

    workload: str
    item: str
    tool: str
    steps: list[Step]
    warmup: list[Step] | None = None
    prepare: Callable[[], None] | None = None
    size: int = 0


@dataclass
class Workload:
    """Cases timed `reps` times each; ratios are to the `baseline` tool's median."""

    name: str
    cases: list[Case]
    reps: int
    baseline: str | None = "python"
    unit: str = "s"
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Target:
    """A program to run: ``python ARGS…`` in `cwd`.

    `coverage_rc` is a coverage.py configuration for programs with child
    processes: it is passed with ``--rcfile``, and ``coverage combine`` runs
    after the program, as ``mpcov run`` combines after it. A run still going
    after `timeout` seconds is killed and counted as failed.
    """

    args: tuple[str, ...]
    cwd: str
    coverage_rc: str | None = None
    timeout: int = 900


def tools_for(version: tuple[int, int], with_env: bool, mode: str = "line") -> list[str]:
    """The tools that apply to this Python version (sysmon exists from 3.12).

    `mode` is ``line``, ``branch`` (plain Python and the branch variants) or
    ``both`` (the line tools, then the branch variants).
    """
    line = ["coverage"]
    if version >= (3, 12):
        line.append("coverage-sysmon")
    line += ["slipcover", "mpcov"]
    if with_env:
        line.append("mpcov-env")
    names = ["python"]
    if mode in ("line", "both"):
        names += line
    if mode in ("branch", "both"):
        names += [tool + BRANCH for tool in line]
    return names


def shell_env(venv: Venv, data_file: str, branch: bool = False) -> dict[str, str]:
    """The variables ``mpcov shell-env`` exports (measurement on, data in `data_file`)."""
    cmd = [venv.python, "-m", "mpcov", "shell-env", "--data-file", data_file]
    out = subprocess.run(cmd + (["--branch"] if branch else []),
                         capture_output=True, text=True, env=clean_environ(),
                         cwd=os.path.dirname(data_file))
    if out.returncode != 0:
        raise SetupError(f"mpcov shell-env failed: {out.stderr.strip()}")
    found = {}
    for line in out.stdout.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            key, _, value = words[1].partition("=")
            found[key] = value
    if "MPCOV_RUN" not in found:
        raise SetupError(f"mpcov shell-env printed no MPCOV_RUN:\n{out.stdout}")
    return found


def clean_data(cwd: str) -> None:
    """Delete what any tool left in `cwd` from an earlier run."""
    names = (".mpcov", ".mpcov.lock", "slipcover.json")
    leftovers = glob.glob(os.path.join(cwd, ".coverage*"))
    for path in [*leftovers, *(os.path.join(cwd, n) for n in names)]:
        if os.path.isfile(path):
            os.remove(path)
    shutil.rmtree(os.path.join(cwd, ".mpcov.d"), ignore_errors=True)
    for path in glob.glob(os.path.join(cwd, ".mpcov-env*.d", "*.frag")):
        os.remove(path)
    for path in glob.glob(os.path.join(cwd, ".bare", "bare.*.marshal")):
        os.remove(path)


def tool_steps(tool: str, venv: Venv, target: Target, env: dict[str, str]) -> list[Step]:
    """The commands that run `target` under `tool` (a ``-branch`` tool measures branches)."""
    py, cwd, args, limit = venv.python, target.cwd, list(target.args), target.timeout
    rc = [f"--rcfile={target.coverage_rc}"] if target.coverage_rc else []
    branch = tool.endswith(BRANCH)
    base = tool.removesuffix(BRANCH)
    flag = ["--branch"] if branch else []
    if tool == "python":
        return [Step([py, *args], cwd, env, limit)]
    if base in ("coverage", "coverage-sysmon"):
        if base == "coverage-sysmon":
            env = dict(env, COVERAGE_CORE="sysmon")
        steps = [Step([py, "-m", "coverage", "run", *flag, *rc, *args], cwd, env, limit)]
        if rc:
            steps.append(Step([py, "-m", "coverage", "combine", "-q", *rc], cwd, env, limit))
        return steps
    if base == "slipcover":
        out = os.path.join(cwd, "slipcover.json")
        return [Step([py, "-m", "slipcover", *flag, "--json", "--out", out, *args],
                     cwd, env, limit)]
    if base == "mpcov":
        return [Step([py, "-m", "mpcov", "run", *flag, *args], cwd, env, limit)]
    if base == "mpcov-env":
        data_file = os.path.join(cwd, ".mpcov-env" + (BRANCH if branch else ""))
        variables = shell_env(venv, data_file, branch=branch)
        return [Step([py, *args], cwd, dict(env, **variables), limit)]
    raise ValueError(f"unknown tool {tool!r}")


def program_cases(workload: str, item: str, venv: Venv, tools: Sequence[str],
                  target: Target, warmup: Target | None = None) -> list[Case]:
    """One case per tool for a program workload (cpu, suite, procs)."""
    env = clean_environ()
    cases = []
    for tool in tools:
        cases.append(Case(
            workload, item, tool, tool_steps(tool, venv, target, env),
            warmup=tool_steps(tool, venv, warmup, env) if warmup else None,
            prepare=lambda cwd=target.cwd: clean_data(cwd),  # type: ignore[misc]
        ))
    return cases


def cpu_workload(venv: Venv, pyperformance_dir: str, workdir: str, loops: dict[str, int],
                 tools: Sequence[str], reps: int) -> Workload:
    """pyperformance's benchmark bodies, each run for a fixed number of loops."""
    os.makedirs(workdir, exist_ok=True)
    shutil.copy(os.path.join(PROGRAMS, "pyperf.py"), workdir)
    cases = []
    for name, n in loops.items():
        source = os.path.join(pyperformance_dir, f"bm_{name}", "run_benchmark.py")
        shutil.copy(source, os.path.join(workdir, f"bm_{name}.py"))
        target = Target((f"bm_{name}.py", "--loops", str(n)), workdir)
        warmup = Target((f"bm_{name}.py", "--loops", "1"), workdir)
        cases += program_cases("cpu", name, venv, tools, target, warmup)
    return Workload("cpu", cases, reps)


def suite_workload(venv: Venv, tree: str, pytest_args: Sequence[str],
                   tools: Sequence[str], reps: int) -> Workload:
    """A library's own test suite (from its sdist) under pytest."""
    with open(os.path.join(tree, "pytest.ini"), "w") as f:
        f.write("[pytest]\n")  # the rootdir: no configuration found above the tree applies
    common = ("-m", "pytest", "-q", "-p", "no:cacheprovider")
    target = Target((*common, *pytest_args), tree)
    warmup = Target((*common, "--collect-only", *pytest_args), tree)
    name = os.path.basename(tree)
    return Workload("suite", program_cases("suite", name, venv, tools, target, warmup), reps)


def procs_workload(venv: Venv, workdir: str, n_sub: int, n_tasks: int,
                   tools: Sequence[str], reps: int) -> Workload:
    """Many short subprocesses and a process pool (``programs/procs_main.py``)."""
    os.makedirs(workdir, exist_ok=True)
    for name in ("procs_main.py", "procs_child.py", "procs_tasks.py"):
        shutil.copy(os.path.join(PROGRAMS, name), workdir)
    rc = os.path.join(workdir, "coveragerc-procs")
    with open(rc, "w") as f:
        f.write("[run]\nparallel = true\nconcurrency = multiprocessing\npatch = subprocess\n")
    target = Target(("procs_main.py", str(n_sub), str(n_tasks)), workdir, rc, timeout=300)
    warmup = Target(("procs_main.py", "2", "10"), workdir, rc, timeout=120)
    item = f"{n_sub} subprocesses + Pool({n_tasks} tasks)"
    notes = ["slipcover does not measure subprocesses: its procs time is not comparable",
             "coverage.py runs with patch=subprocess, concurrency=multiprocessing, "
             "parallel=true, then `coverage combine`"]
    return Workload("procs", program_cases("procs", item, venv, tools, target, warmup),
                    reps, notes=notes)


def install_bare_bootstrap(venv: Venv) -> None:
    """Put ``programs/bare_bootstrap.py`` and a ``.pth`` that starts it into `venv`."""
    code = "import sysconfig; print(sysconfig.get_path('purelib'))"
    out = subprocess.run([venv.python, "-c", code], capture_output=True, text=True, check=True,
                         env=clean_environ())
    site = out.stdout.strip()
    shutil.copy(os.path.join(PROGRAMS, "bare_bootstrap.py"), site)
    with open(os.path.join(site, "bare_bootstrap.pth"), "w") as f:
        f.write('import os; os.environ.get("BARE_COVERAGE_OUT") and '
                '__import__("bare_bootstrap").start()\n')


def startup_workload(bare: Venv, mpcov_only: Venv, main: Venv, workdir: str,
                     runs: int, anchor: Venv | None = None) -> Workload:
    """``python -c pass``: without mpcov, with its .pth inactive and active, coverage.py's,
    and (3.12+, with `anchor`) the bare sys.monitoring bootstrap of
    ``programs/bare_bootstrap.py``."""
    os.makedirs(workdir, exist_ok=True)
    env = clean_environ()
    rc = os.path.join(workdir, "coveragerc-startup")
    with open(rc, "w") as f:
        f.write(f"[run]\nparallel = true\ndata_file = {workdir}/.coverage\n")
    active = dict(env, **shell_env(mpcov_only, os.path.join(workdir, ".mpcov-env")))
    variants = [
        ("baseline", bare, env),
        ("mpcov-inactive", mpcov_only, env),
        ("mpcov-active", mpcov_only, active),
        ("coverage-active", main, dict(env, COVERAGE_PROCESS_START=rc)),
    ]
    if anchor is not None and _has_monitoring(anchor):
        bare_out = os.path.join(workdir, ".bare")
        os.makedirs(bare_out, exist_ok=True)
        variants.append(("bare-active", anchor, dict(env, BARE_COVERAGE_OUT=bare_out)))
    cases = [
        Case("startup", "python -c pass", name, [Step([venv.python, "-c", "pass"], workdir, e)],
             warmup=[Step([venv.python, "-c", "pass"], workdir, e)],
             prepare=lambda: clean_data(workdir))
        for name, venv, e in variants
    ]
    notes = ["baseline: a venv without mpcov; mpcov-*: a venv with only mpcov (and its "
             "dependencies); coverage-active: COVERAGE_PROCESS_START in a venv with "
             "coverage.py's a1_coverage.pth; bare-active: the smallest sys.monitoring line "
             "recorder a .pth can start (programs/bare_bootstrap.py), the design's floor"]
    return Workload("startup", cases, runs, baseline="baseline", unit="ms", notes=notes)


def _has_monitoring(venv: Venv) -> bool:
    out = subprocess.run([venv.python, "-c", "import sys; print(hasattr(sys, 'monitoring'))"],
                         capture_output=True, text=True, env=clean_environ())
    return out.stdout.strip() == "True"


def make_data(venv: Venv, *args: str) -> None:
    """Run ``programs/make_data.py`` with `venv`'s interpreter (it imports mpcov)."""
    out = subprocess.run([venv.python, os.path.join(PROGRAMS, "make_data.py"), *args],
                         capture_output=True, text=True, env=clean_environ())
    if out.returncode != 0:
        raise SetupError(f"make_data.py {' '.join(args)} failed:\n{out.stderr[-3000:]}")


def _restore_fragments(project: str, pristine: str) -> None:
    clean_data(project)
    shutil.copytree(pristine, os.path.join(project, ".mpcov.d"))


def combine_workload(venv: Venv, workdir: str, n_files: int, counts: Sequence[int],
                     reps: int) -> Workload:
    """``mpcov combine`` of N fragments of a generated `n_files`-file project."""
    project = os.path.join(workdir, "project")
    shutil.rmtree(workdir, ignore_errors=True)
    make_data(venv, "project", project, str(n_files))
    cases = []
    for count in counts:
        pristine = os.path.join(workdir, f"fragments-{count}")
        make_data(venv, "fragments", project, pristine, str(count))
        step = Step([venv.python, "-m", "mpcov", "combine", "-q"], project, clean_environ())
        cases.append(Case(
            "combine", f"{count:,} fragments, {n_files}-file project", "mpcov", [step],
            prepare=lambda p=pristine: _restore_fragments(project, p),  # type: ignore[misc]
            size=count,
        ))
    return Workload("combine", cases, reps, baseline=None)


def report_workload(venv: Venv, workdir: str, n_files: int, n_fragments: int,
                    reps: int) -> Workload:
    """``mpcov report`` on a data file covering a generated `n_files`-file project."""
    project = os.path.join(workdir, "project")
    shutil.rmtree(workdir, ignore_errors=True)
    make_data(venv, "project", project, str(n_files))
    make_data(venv, "fragments", project, os.path.join(project, ".mpcov.d"), str(n_fragments))
    env = clean_environ()
    out = subprocess.run([venv.python, "-m", "mpcov", "combine", "-q"], cwd=project, env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SetupError(f"mpcov combine (report data) failed:\n{out.stderr[-3000:]}")
    step = Step([venv.python, "-m", "mpcov", "report"], project, env)
    item = f"{n_files}-file project ({n_fragments} processes)"
    return Workload("report", [Case("report", item, "mpcov", [step])], reps, baseline=None)
