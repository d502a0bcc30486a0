#!/usr/bin/env python3
"""Benchmark mpcov against plain Python, coverage.py and SlipCover, in one interleaved run.

    python3 benchmarks/run.py [--python 3.12 ...] [--workload cpu ...] [--reps N]
                              [--mode line|branch|both] [--branch] [--mpcov-rev REV]
                              [--quick] [--json-out FILE]

Runs with any python3 (stdlib only). For each CPython found under
``$(pyenv root)/versions/3.1x.*`` it keeps virtualenvs in ``benchmarks/.work``
with the pinned tools below and mpcov built from this checkout, then times
every workload under every tool, interleaved (A B C A B C …), and prints the
medians (CPU time of the whole process tree, wall time, peak RSS), the ratios
to plain Python and the budgets of the benchmark issue. See README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# --- Pins: every version and size the numbers depend on -----------------------------------

VERSIONS = ("3.11", "3.12", "3.13")
PACKAGES = {  # installed into each benchmark venv (and used as pip constraints)
    "coverage": "7.17.4",
    "slipcover": "1.1.0",
    "pytest": "9.2.0",
    "pyperformance": "1.14.0",  # only for its bm_*/run_benchmark.py files
    "pyperf": "2.10.0",
    "filelock": "4.2.12",
    "psutil": "7.2.2",
}
SUITE_SDIST = ("more-itertools", "11.2.1")
#: Tests left out of the suite: two brute-force prime searches that take 60 % of its time
#: in one loop, and three tests of 10-100 threads contending for a lock, whose CPU time and
#: memory double or halve with the scheduling (bimodal: ~5 s/95 MB or ~10 s/190 MB a run).
SUITE_DESELECT = (
    "tests/test_recipes.py::PrimeFunctionTests::test_primes",
    "tests/test_recipes.py::PrimeFunctionTests::test_nth_prime_approximate",
    "tests/test_more.py::TestConcurrentTee::test_concurrent_consumers",
    "tests/test_more.py::TestSerialize::test_concurrent_calls",
    "tests/test_more.py::TestSynchronized::test_concurrent_calls",
)
#: pyperformance benchmark -> loops, for about 1 s of plain CPython 3.12 on the reference machine.
CPU_LOOPS = {"richards": 32, "nbody": 16, "deltablue": 450, "raytrace": 4, "go": 10}
GEOMEAN_SET = ("richards", "nbody", "deltablue", "raytrace")
BUDGETS = {
    "cpu_geomean": 1.05,  # x plain Python, line coverage, 3.12/3.13
    "cpu_geomean_branch": 1.10,  # x plain Python, branch coverage, 3.12/3.13
    "cpu_geomean_311": 1.30,  # x plain Python, 3.11's stretch (self-removing bytecode probes)
    "startup_inactive_ms": 1.0,  # < this
    "startup_active_ms": 5.0,  # <= this
    "combine_1000_s": 2.0,
    "combine_10000_s": 20.0,
    "rss_mb": 20.0,  # peak RSS overhead per measured process
}


@dataclass(frozen=True)
class Sizes:
    """How much work a run does: the full benchmark or a --quick smoke check."""

    reps: int
    cpu_divisor: int
    suite_paths: tuple[str, ...]
    procs: tuple[int, int]  # subprocesses, pool tasks
    startup_runs: int
    combine_files: int
    combine_counts: tuple[int, ...]
    report_files: int
    report_fragments: int


FULL = Sizes(5, 1, ("tests",), (200, 1000), 50, 500, (1000, 10000), 1000, 50)
QUICK = Sizes(2, 5, ("tests/test_recipes.py",), (20, 100), 10, 500, (100, 1000), 200, 20)
WORKLOADS = ("startup", "cpu", "suite", "procs", "combine", "report")

# -------------------------------------------------------------------------------------------

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORK = os.path.join(HERE, ".work")
sys.path.insert(0, HERE)

from harness import envs, results, workloads  # noqa: E402
from harness.measure import Sample, run_steps  # noqa: E402


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--python", action="append", choices=VERSIONS, help="a Python version "
                   "to benchmark (repeatable; default: every one found)")
    p.add_argument("--workload", action="append", choices=WORKLOADS,
                   help="a workload to run (repeatable; default: all)")
    p.add_argument("--reps", type=int, help="repetitions per case (default 5; 2 with --quick)")
    p.add_argument("--mode", choices=workloads.MODES, default="line",
                   help="line coverage (default), branch coverage, or both side by side: "
                   "the cpu and suite workloads run every tool in that mode (the others "
                   "always measure lines)")
    p.add_argument("--branch", dest="mode", action="store_const", const="branch",
                   help="the same as --mode branch")
    p.add_argument("--mpcov-rev", metavar="REV", help="benchmark mpcov as committed at this "
                   "git revision (e.g. HEAD) instead of the working tree, which may hold "
                   "others' unfinished edits")
    p.add_argument("--quick", action="store_true", help="fewer repetitions and smaller sizes: "
                   "a smoke check, not numbers to quote")
    p.add_argument("--json-out", metavar="FILE", help="also write the results as JSON")
    return p.parse_args(argv)


def machine() -> dict[str, object]:
    """Facts about this machine that the numbers depend on."""
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                         "?")
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "system": platform.platform(),
            "loadavg_at_start": os.getloadavg()}


def say(message: str) -> None:
    """A progress line."""
    print(message, flush=True)


def find_pythons(versions: Sequence[str]) -> dict[str, str]:
    """Version -> interpreter, for each of `versions` found under
    ``$(pyenv root)/versions``; a missing one is reported, not an error."""
    found = {}
    for version in versions:
        path = envs.find_python(version)
        if path:
            found[version] = path
        else:
            say(f"SKIPPED Python {version}: not found under $(pyenv root)/versions")
    return found


def write_constraints(name: str) -> str:
    """The pins as a pip constraints file `name` in WORK; its path."""
    os.makedirs(WORK, exist_ok=True)
    path = os.path.join(WORK, name)
    with open(path, "w") as f:
        f.write("".join(f"{k}=={v}\n" for k, v in PACKAGES.items()))
    return path


def run_workload(
    label: str, w: workloads.Workload, log: str
) -> dict[tuple[str, str], list[Sample]]:
    """Warm up every case once, then time them `w.reps` times, interleaved."""
    samples: dict[tuple[str, str], list[Sample]] = {}
    broken: set[int] = set()
    for n, case in enumerate(w.cases):
        if case.warmup is None:
            continue
        if case.prepare:
            case.prepare()
        warm = run_steps(case.warmup, log)
        if warm.error:
            broken.add(n)
            say(f"[{label}] {w.name}/{case.item}/{case.tool}: warm-up FAILED, skipped\n"
                f"{warm.error}")
    start = last = time.monotonic()
    for rep in range(w.reps):
        for n, case in enumerate(w.cases):
            if n in broken:
                continue
            if case.prepare:
                case.prepare()
            sample = run_steps(case.steps, log)
            runs = samples.setdefault((case.item, case.tool), [])
            if sample.error and not any(s.error for s in runs):
                say(f"[{label}] {w.name}/{case.item}/{case.tool}: FAILED\n{sample.error}")
            runs.append(sample)
        now = time.monotonic()
        if now - last > 15 or rep + 1 == w.reps:
            last = now
            say(f"[{label}] {w.name}: repetition {rep + 1}/{w.reps} done, {now - start:.0f} s")
    return samples


def prepare_venvs(base: str, version: str, wheel: str, constraints: str,
                  names: set[str]) -> dict[str, envs.Venv]:
    """The venvs this version needs: main (every tool), bare and mpcov-only (start-up)."""
    stamp = {"packages": PACKAGES}
    reqs = [f"{k}=={v}" for k, v in PACKAGES.items()]
    out = {"main": envs.make_venv(base, os.path.join(WORK, f"venv-{version}"), reqs,
                                  constraints, stamp)}
    envs.install_wheel(out["main"], wheel, constraints)
    if "startup" in names:
        out["bare"] = envs.make_venv(base, os.path.join(WORK, f"venv-{version}-bare"), [],
                                     None, {}, with_pip=False)
        out["mpcov"] = envs.make_venv(base, os.path.join(WORK, f"venv-{version}-mpcov"), [],
                                      None, stamp)
        envs.install_wheel(out["mpcov"], wheel, constraints)
        out["anchor"] = envs.make_venv(base, os.path.join(WORK, f"venv-{version}-anchor"), [],
                                       None, {}, with_pip=False)
        workloads.install_bare_bootstrap(out["anchor"])
    return out


def pyperformance_dir(venv: envs.Venv) -> str:
    """Where the installed pyperformance keeps its ``bm_*`` benchmark directories."""
    code = ("import os, pyperformance; print(os.path.join(os.path.dirname("
            "pyperformance.__file__), 'data-files', 'benchmarks'))")
    out = subprocess.run([venv.python, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def build_workload(name: str, version: str, vinfo: tuple[int, int], v: dict[str, envs.Venv],
                   sizes: Sizes, reps: int, mode: str) -> workloads.Workload:
    """Set up the files of workload `name` for this Python and return its cases."""
    main, work = v["main"], os.path.join(WORK, f"{name}-{version}")
    tools = workloads.tools_for(vinfo, with_env=(name == "cpu"),
                                mode=mode if name in ("cpu", "suite") else "line")
    if name == "cpu":
        loops = {b: max(1, n // sizes.cpu_divisor) for b, n in CPU_LOOPS.items()}
        return workloads.cpu_workload(main, pyperformance_dir(main), work, loops, tools, reps)
    if name == "suite":
        tree = envs.fetch_sdist(main.python, *SUITE_SDIST, WORK)
        args = [*sizes.suite_paths, *(f"--deselect={t}" for t in SUITE_DESELECT)]
        return workloads.suite_workload(main, tree, args, tools, reps)
    if name == "procs":
        return workloads.procs_workload(main, work, *sizes.procs, tools, reps)
    if name == "startup":
        return workloads.startup_workload(v["bare"], v["mpcov"], main, work, sizes.startup_runs,
                                          anchor=v.get("anchor"))
    if name == "combine":
        return workloads.combine_workload(main, work, sizes.combine_files,
                                          sizes.combine_counts, reps)
    if name == "report":
        return workloads.report_workload(main, work, sizes.report_files,
                                         sizes.report_fragments, reps)
    raise ValueError(name)


def bench_python(version: str, base: str, wheel: str, constraints: str, names: list[str],
                 sizes: Sizes, reps: int, mode: str) -> dict[str, Any]:
    """Every requested workload on one Python: prints its table, returns its results."""
    label = version
    full = envs.full_version(base)
    vinfo = (int(version.split(".")[0]), int(version.split(".")[1]))
    say(f"[{label}] CPython {full} ({base}): preparing venvs")
    v = prepare_venvs(base, version, wheel, constraints, set(names))
    rows: list[results.Row] = []
    all_samples = {}
    log_dir = os.path.join(WORK, "logs")
    os.makedirs(log_dir, exist_ok=True)
    for name in names:
        say(f"[{label}] {name}: setting up")
        w = build_workload(name, version, vinfo, v, sizes, reps, mode)
        samples = run_workload(label, w, os.path.join(log_dir, f"{version}-{name}.log"))
        all_samples[name] = samples
        rows += results.summarize(w, samples)
        for note in w.notes:
            say(f"[{label}] note ({name}): {note}")
    means = results.geomeans(rows, GEOMEAN_SET)
    verdicts = results.budgets(rows, means, vinfo, BUDGETS)
    say(f"\n=== CPython {full}: medians of {reps} repetitions "
        f"(startup: {sizes.startup_runs} runs); CPU = user+sys of the whole process tree\n")
    say(results.table(rows, means, GEOMEAN_SET))
    say("\nBudgets:\n" + results.budget_text(verdicts) + "\n")
    return {"python": full, "executable": base,
            **results.as_json(rows, means, verdicts, all_samples)}


def main(argv: list[str]) -> int:
    """Run the benchmarks; 0 when every case ran (budgets are reported, not enforced)."""
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    reps = args.reps or sizes.reps
    names = [w for w in WORKLOADS if w in (args.workload or WORKLOADS)]
    command = "python3 benchmarks/run.py " + shlex.join(argv)
    facts = machine()
    say(f"{command}\nmachine: {facts['nproc']} CPUs, {facts['cpu']}, {facts['system']}, "
        f"load average {facts['loadavg_at_start']}")
    found = find_pythons(args.python or VERSIONS)
    if not found:
        return 1
    constraints = write_constraints("constraints.txt")
    try:
        # One wheel directory per run: two runs at once must not empty each other's.
        build = os.path.join(WORK, f"wheel-{os.getpid()}")
        source = envs.export_rev(ROOT, args.mpcov_rev, build) if args.mpcov_rev else ROOT
        wheel = envs.build_wheel(next(iter(found.values())), source, os.path.join(build, "dist"))
        say(f"mpcov: {envs.describe_source(ROOT, args.mpcov_rev)}")
        started = time.monotonic()
        per_python = {
            version: bench_python(version, path, wheel, constraints, names, sizes, reps,
                                  args.mode)
            for version, path in found.items()
        }
    except envs.SetupError as exc:
        print(f"run.py: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(os.path.join(WORK, f"wheel-{os.getpid()}"), ignore_errors=True)
    facts["loadavg_at_end"] = os.getloadavg()
    seconds = round(time.monotonic() - started)
    say(f"total {seconds} s; load average at end {facts['loadavg_at_end']}")
    if args.json_out:
        report = {"command": command, "machine": facts, "quick": args.quick, "reps": reps,
                  "mode": args.mode, "mpcov": envs.describe_source(ROOT, args.mpcov_rev),
                  "seconds": seconds, "results": per_python,
                  "pins": {"packages": PACKAGES, "suite": SUITE_SDIST, "cpu_loops": CPU_LOOPS,
                           "budgets": BUDGETS, "sizes": sizes.__dict__}}
        with open(args.json_out, "w") as f:
            json.dump(report, f, indent=1)
    failed = any(row["failed"] for res in per_python.values() for row in res["rows"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
