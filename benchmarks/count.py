#!/usr/bin/env python3
"""Count the instructions mpcov, coverage.py and SlipCover cost, with callgrind.

    python3 benchmarks/count.py [--python 3.12 ...] [--workload cpu|startup ...]
                                [--mode line|branch|both] [--scale N] [--bench NAME ...]
                                [--tool NAME ...] [--slow-limit R] [--mpcov-rev REV]
                                [--json-out FILE]

A deterministic complement to ``run.py``, whose timings on a shared, throttled
machine move by +-25 % between repetitions. The same tools run the same
``cpu`` and ``startup`` workloads, with the same command lines (built by
``harness/workloads.py``), but each run executes under
``valgrind --tool=callgrind --trace-children=yes`` and the result is the
number of instructions executed (``Ir``), summed over every process of the
run. Counts repeat within ~0.2 % (string hashing is still randomized, as in
``run.py``), so one run per case is enough.

The cpu workload runs ``run.py``'s ``CPU_LOOPS`` divided by ``--scale``
(default 10: callgrind is ~50x slower than the CPU) and again with twice
that many loops. The first size's ratio includes the fixed costs (start-up,
saving, the ``mpcov run`` parent), which weigh ``--scale`` times more than in
``run.py``; the marginal ratio ``(I2 - I1)_tool / (I2 - I1)_python`` removes
them: the steady-state cost of tracing. Every case runs once natively first
(uncounted), as ``run.py`` warms up: ``.pyc`` files exist and mpcov's branch
probe cache is warm, the steady state a user sees from the second run on.

Its virtualenvs are its own (``benchmarks/.work/count-3.1x``), with
``run.py``'s pins. Needs only a ``python3`` and ``valgrind``. See README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import run  # noqa: E402  (run.py's pins and helpers; its main() does not run on import)
from harness import envs, workloads  # noqa: E402
from harness.measure import Step, geomean  # noqa: E402

WORK = run.WORK  # benchmarks/.work, shared with run.py: everything of ours is count-*
WORKLOADS = ("startup", "cpu", "suite")
VALGRIND = "valgrind"
TIMEOUT = 3600  # seconds for one counted run (coverage.py's C tracer under callgrind is slow)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--python", action="append", choices=run.VERSIONS,
                   help="a Python version (repeatable; default: every one found)")
    p.add_argument("--workload", action="append", choices=WORKLOADS,
                   help="a workload (repeatable; default: startup and cpu; suite takes "
                   "10-15 min per tool under callgrind)")
    p.add_argument("--mode", choices=workloads.MODES, default="line",
                   help="line (default), branch or both: which tools the cpu and suite "
                   "workloads run")
    p.add_argument("--scale", type=int, default=10,
                   help="divide run.py's CPU_LOOPS by this (default 10)")
    p.add_argument("--bench", action="append", choices=tuple(run.CPU_LOOPS),
                   help="a cpu benchmark (repeatable; default: all of run.py's)")
    p.add_argument("--tool", action="append", choices=tuple(workloads.TOOLS),
                   help="count only this cpu or suite tool (repeatable; default: every tool "
                   "of the mode, as run.py; plain Python always runs)")
    p.add_argument("--suite-path", action="append", metavar="PATH",
                   help="the suite's test paths (repeatable; default: run.py's, all of "
                   "tests/), e.g. tests/test_recipes.py for a 5x shorter count")
    p.add_argument("--slow-limit", type=float, default=2.0, metavar="R",
                   help="a tool costing more than R x plain Python at the first size is not "
                   "counted at the second (its marginal ratio is left out; default 2.0, "
                   "0 = count every tool at both sizes)")
    p.add_argument("--mpcov-rev", metavar="REV", help="count mpcov as committed at this git "
                   "revision (e.g. HEAD) instead of the working tree")
    p.add_argument("--json-out", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--from-json", metavar="FILE", help="count nothing: print the tables of "
                   "a --json-out file again (with this version's columns)")
    return p.parse_args(argv)


say = run.say


# --- Counting ---------------------------------------------------------------------------------


@dataclass
class Count:
    """The instructions of one run: per process, and which process was the top one."""

    per_process: dict[int, int] = field(default_factory=dict)
    top: int = 0
    seconds: float = 0.0
    error: str | None = None

    @property
    def total(self) -> int:
        """Every process of the run."""
        return sum(self.per_process.values())

    @property
    def parent(self) -> int:
        """The process started first (for ``mpcov run``: the ``mpcov run`` parent)."""
        return self.per_process.get(self.top, 0)

    @property
    def children(self) -> int:
        """Every other process (for ``mpcov run``: the measured program)."""
        return self.total - self.parent


def callgrind_total(path: str) -> int:
    """The ``totals:`` (else ``summary:``) instruction count of one callgrind output file."""
    summary = None
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("totals:"):
                return int(line.split()[1])
            if line.startswith("summary:"):
                summary = int(line.split()[1])
    if summary is None:
        raise ValueError(f"no totals: or summary: line in {path}")
    return summary


def count_step(step: Step, out_dir: str, log_path: str) -> Count:
    """Run `step` under callgrind (children traced); the instructions of every process."""
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(out_dir)
    argv = [VALGRIND, "--tool=callgrind", "--trace-children=yes", "-q",
            f"--callgrind-out-file={out_dir}/cg.%p", *step.argv]
    start = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, cwd=step.cwd, env=step.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        try:
            code = proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            code = None
    result = Count(top=proc.pid, seconds=time.monotonic() - start)
    if code != 0:
        with open(log_path, errors="replace") as f:
            tail = "".join(f.readlines()[-15:])
        what = "timed out" if code is None else f"exit status {code}"
        result.error = f"{what}: {shlex.join(step.argv)}\n{tail}"
        return result
    for name in os.listdir(out_dir):
        pid = int(name.rsplit(".", 1)[1])
        result.per_process[pid] = callgrind_total(os.path.join(out_dir, name))
    if result.top not in result.per_process:
        result.error = f"no callgrind output for the top process {result.top} in {out_dir}"
    return result


def count_steps(steps: Sequence[Step], out_dir: str, log_path: str) -> Count:
    """Several steps one after another (coverage + combine): their counts added up."""
    total = Count()
    for n, step in enumerate(steps):
        c = count_step(step, out_dir, log_path)
        if n == 0:
            total.top = c.top
        for pid, ir in c.per_process.items():
            total.per_process[pid if n == 0 else -pid] = ir
        total.seconds += c.seconds
        if c.error:
            total.error = c.error
            break
    return total


def warm_up(steps: Sequence[Step], log_path: str) -> str | None:
    """Run `steps` natively, uncounted; the error, if any."""
    for step in steps:
        with open(log_path, "wb") as log:
            try:
                code = subprocess.call(list(step.argv), cwd=step.cwd, env=step.env,
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=log, timeout=step.timeout)
            except subprocess.TimeoutExpired:
                code = -1
        if code != 0:
            with open(log_path, errors="replace") as f:
                return f"exit status {code}: {shlex.join(step.argv)}\n{f.read()[-2000:]}"
    return None


# --- Set-up -----------------------------------------------------------------------------------


def prepare_venvs(base: str, version: str, wheel: str, constraints: str,
                  names: set[str]) -> dict[str, envs.Venv]:
    """As run.py's prepare_venvs, under .work/count-3.1x: main, and bare + mpcov-only + anchor."""
    stamp = {"packages": run.PACKAGES}
    reqs = [f"{k}=={v}" for k, v in run.PACKAGES.items()]
    top = os.path.join(WORK, f"count-{version}")
    out = {"main": envs.make_venv(base, os.path.join(top, "venv"), reqs, constraints, stamp)}
    envs.install_wheel(out["main"], wheel, constraints)
    if "startup" in names:
        out["bare"] = envs.make_venv(base, os.path.join(top, "venv-bare"), [], None, {},
                                     with_pip=False)
        out["mpcov"] = envs.make_venv(base, os.path.join(top, "venv-mpcov"), [], None, stamp)
        envs.install_wheel(out["mpcov"], wheel, constraints)
        out["anchor"] = envs.make_venv(base, os.path.join(top, "venv-anchor"), [], None, {},
                                       with_pip=False)
        workloads.install_bare_bootstrap(out["anchor"])
    return out


@dataclass
class Result:
    """One (workload, item, tool): its counts at one or two sizes."""

    workload: str
    item: str
    tool: str
    loops: list[int]
    counts: list[Count]

    @property
    def ok(self) -> bool:
        """Every size counted without error."""
        return bool(self.counts) and all(c.error is None for c in self.counts)


def count_cases(label: str, cases_by_size: list[list[workloads.Case]], version: str,
                log: str, slow_limit: float = 0.0) -> list[Result]:
    """Warm up each case natively once, then count it at every size, item-major.

    A case whose first count exceeds `slow_limit` times plain Python's (if set)
    is not counted at the other sizes.
    """
    out_dir = os.path.join(WORK, f"count-{version}", "callgrind")
    results = []
    baseline: dict[str, int] = {}
    start = time.monotonic()
    for n, case in enumerate(cases_by_size[0]):
        res = Result(case.workload, case.item, case.tool, [], [])
        results.append(res)
        if case.prepare:
            case.prepare()
        error = warm_up(case.warmup or case.steps, log)
        if error:
            say(f"[{label}] {case.workload}/{case.item}/{case.tool}: warm-up FAILED, "
                f"skipped\n{error}")
            continue
        for size in cases_by_size:
            c = size[n]
            assert (c.item, c.tool) == (case.item, case.tool)
            if c.prepare:
                c.prepare()
            count = count_steps(c.steps, out_dir, log)
            res.counts.append(count)
            res.loops.append(c.size)
            if count.error:
                say(f"[{label}] {case.workload}/{case.item}/{case.tool}: FAILED\n{count.error}")
                break
            slow = False
            if size is cases_by_size[0]:
                first = baseline.setdefault(case.item, count.total) \
                    if case.tool == "python" else baseline.get(case.item)
                slow = bool(slow_limit and first and count.total > slow_limit * first)
            say(f"[{label}] {case.workload}/{case.item}/{case.tool}"
                f"{f' ({c.size} loops)' if c.size else ''}: {count.total:,} Ir in "
                f"{len(count.per_process)} process(es), {count.seconds:.0f} s "
                f"(total {time.monotonic() - start:.0f} s)"
                + (f"; over {slow_limit:g}x plain Python: not counted at the second size"
                   if slow and len(cases_by_size) > 1 else ""))
            if slow:
                break
    return results


def cpu_cases(v: dict[str, envs.Venv], version: str, vinfo: tuple[int, int], mode: str,
              scale: int, benches: Sequence[str],
              only: Sequence[str] | None) -> list[list[workloads.Case]]:
    """run.py's cpu cases (harness.workloads.cpu_workload) at loops/scale and 2*loops/scale."""
    main = v["main"]
    work = os.path.join(WORK, f"count-{version}", "cpu")
    tools = [t for t in workloads.tools_for(vinfo, with_env=True, mode=mode)
             if t == "python" or not only or t in only]
    base = {b: max(1, run.CPU_LOOPS[b] // scale) for b in benches}
    sizes = []
    for factor in (1, 2):
        loops = {b: n * factor for b, n in base.items()}
        w = workloads.cpu_workload(main, run.pyperformance_dir(main), work, loops, tools, 1)
        for case in w.cases:
            case.size = loops[case.item]
        sizes.append(w.cases)
    return sizes


def suite_cases(v: dict[str, envs.Venv], vinfo: tuple[int, int], mode: str,
                only: Sequence[str] | None,
                paths: Sequence[str] | None) -> list[list[workloads.Case]]:
    """run.py's suite cases (harness.workloads.suite_workload), once each."""
    main = v["main"]
    tools = [t for t in workloads.tools_for(vinfo, with_env=False, mode=mode)
             if t == "python" or not only or t in only]
    tree = envs.fetch_sdist(main.python, *run.SUITE_SDIST, WORK)
    args = [*(paths or run.FULL.suite_paths), *(f"--deselect={t}" for t in run.SUITE_DESELECT)]
    return [workloads.suite_workload(main, tree, args, tools, 1).cases]


def startup_cases(v: dict[str, envs.Venv], version: str) -> list[list[workloads.Case]]:
    """run.py's start-up cases (harness.workloads.startup_workload), once each."""
    work = os.path.join(WORK, f"count-{version}", "startup")
    w = workloads.startup_workload(v["bare"], v["mpcov"], v["main"], work, 1,
                                   anchor=v.get("anchor"))
    return [w.cases]


# --- Tables -----------------------------------------------------------------------------------


def _m(ir: float) -> str:
    return "-" if math.isnan(ir) else f"{ir / 1e6:,.1f}M"


def _x(ratio: float, digits: int = 3) -> str:
    return "-" if math.isnan(ratio) else f"{ratio:.{digits}f}x"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], left: int) -> str:
    lines = [tuple(head), *(tuple(r) for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for n, line in enumerate(lines):
        cells = [c.ljust(w) if i < left else c.rjust(w)
                 for i, (c, w) in enumerate(zip(line, widths, strict=True))]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _at(r: Result, loops: int) -> float:
    """The instructions of `r` at `loops` loops, on the line through its two sizes."""
    (n1, n2), (c1, c2) = r.loops[:2], r.counts[:2]
    return c1.total + (loops - n1) * (c2.total - c1.total) / (n2 - n1)


def cpu_summary(results: Sequence[Result]) -> tuple[str, dict[str, object]]:
    """The cpu table (both sizes, marginal ratio, mpcov's split) and its numbers."""
    base = {r.item: r for r in results if r.tool == "python" and r.ok}
    rows, data = [], []
    ratios: dict[str, dict[str, list[float]]] = {}
    for r in results:
        b = base.get(r.item)
        nan = math.nan
        i1 = r.counts[0].total if r.ok else nan
        i2 = r.counts[1].total if r.ok and len(r.counts) > 1 else nan
        b1 = b.counts[0].total if b else nan
        b2 = b.counts[1].total if b and len(b.counts) > 1 else nan
        ratio1, ratio2 = i1 / b1, i2 / b2
        marginal = (i2 - i1) / (b2 - b1) if b2 > b1 else nan
        # Straight line through both sizes, at run.py's own loop count.
        full = run.CPU_LOOPS.get(r.item, 0)
        at_full = (_at(r, full) / _at(b, full)) if b and r.ok and len(r.loops) > 1 else nan
        split = r.tool.removesuffix(workloads.BRANCH) == "mpcov" and r.ok
        measured = r.counts[0].children if split else nan
        parent = r.counts[0].parent if split else nan
        loops = "/".join(str(n) for n in r.loops) or "-"
        rows.append((r.item, r.tool, loops, _m(i1), _x(ratio1), _m(i2), _x(ratio2),
                     _x(marginal), _x(at_full), _m(measured), _m(parent),
                     str(len(r.counts[0].per_process)) if r.ok else "FAILED"))
        for key, val in (("1x", ratio1), ("2x", ratio2), ("marginal", marginal),
                         ("run.py loops", at_full)):
            if r.item in run.GEOMEAN_SET:
                ratios.setdefault(r.tool, {}).setdefault(key, []).append(val)
        data.append({"item": r.item, "tool": r.tool, "loops": r.loops,
                     "instructions": [c.total for c in r.counts],
                     "per_process": [c.per_process for c in r.counts],
                     "mpcov_run_parent": [c.parent for c in r.counts] if split else None,
                     "ratio": [ratio1, ratio2], "marginal_ratio": marginal,
                     "ratio_at_run_py_loops": at_full,
                     "errors": [c.error for c in r.counts if c.error],
                     "seconds": [round(c.seconds, 1) for c in r.counts]})
    means = {}
    for tool, by in ratios.items():
        g = {k: geomean(v) if len(v) == len(run.GEOMEAN_SET) else math.nan
             for k, v in by.items()}
        means[tool] = g
        rows.append((f"geomean({','.join(run.GEOMEAN_SET)})", tool, "", "", _x(g["1x"]), "",
                     _x(g["2x"]), _x(g["marginal"]), _x(g["run.py loops"]), "", "", ""))
    head = ("item", "tool", "loops", "Ir (loops)", "ratio", "Ir (2x loops)", "ratio",
            "marginal", "@run.py loops", "measured proc", "mpcov parent", "procs")
    return _table(head, rows, 3), {"rows": data, "geomean": means}


def startup_summary(results: Sequence[Result],
                    baseline: str = "baseline") -> tuple[str, dict[str, object]]:
    """The start-up (or suite) table: instructions, ratio and difference to the baseline."""
    base = next((r.counts[0].total for r in results if r.tool == baseline and r.ok),
                math.nan)
    rows, data = [], []
    for r in results:
        ir = r.counts[0].total if r.ok else math.nan
        rows.append((r.item, r.tool, _m(ir), _x(ir / base), _m(ir - base),
                     str(len(r.counts[0].per_process)) if r.ok else "FAILED"))
        data.append({"item": r.item, "tool": r.tool, "instructions": ir if r.ok else None,
                     "ratio": ir / base, "overhead": ir - base,
                     "errors": [c.error for c in r.counts if c.error]})
    head = ("item", "variant", "Ir", "ratio", f"Ir - {baseline}", "procs")
    return _table(head, rows, 2), {"rows": data}


def _clean(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def reprint(path: str) -> None:
    """The tables of a ``--json-out`` file, made again from its counts."""
    with open(path) as f:
        report = json.load(f)
    say(f"{report['command']}\nmpcov: {report['mpcov']}; {report['seconds']} s")
    for res in report["results"].values():
        texts = []
        if "startup" in res:
            results = [Result("startup", "python -c pass", row["tool"], [],
                              [Count({0: row["instructions"] or 0}, 0,
                                     error=None if row["instructions"] else "failed")])
                       for row in res["startup"]["rows"]]
            texts.append(startup_summary(results)[0])
        if "suite" in res:
            results = [Result("suite", row.get("item", "suite"), row["tool"], [],
                              [Count({0: row["instructions"] or 0}, 0,
                                     error=None if row["instructions"] else "failed")])
                       for row in res["suite"]["rows"]]
            texts.append(startup_summary(results, baseline="python")[0])
        if "cpu" in res:
            results = []
            for row in res["cpu"]["rows"]:
                counts = []
                for n, procs in enumerate(row["per_process"]):
                    per = {int(k): v for k, v in procs.items()}
                    parent = (row["mpcov_run_parent"] or [None] * 2)[n]
                    top = next((k for k, v in per.items() if v == parent), next(iter(per), 0))
                    counts.append(Count(per, top))
                if row["errors"] and counts:
                    counts[-1].error = row["errors"][0]
                results.append(Result("cpu", row["item"], row["tool"], row["loops"], counts))
            texts.append(cpu_summary(results)[0])
        say(f"\n=== CPython {res['python']}\n\n" + "\n\n".join(texts))


# --- Main -------------------------------------------------------------------------------------


def count_python(version: str, base: str, wheel: str, constraints: str, names: list[str],
                 args: argparse.Namespace) -> dict[str, object]:
    """Every requested workload on one Python: prints its tables, returns its numbers."""
    full = envs.full_version(base)
    vinfo = (int(version.split(".")[0]), int(version.split(".")[1]))
    say(f"[{version}] CPython {full} ({base}): preparing venvs under "
        f".work/count-{version}")
    v = prepare_venvs(base, version, wheel, constraints, set(names))
    log_dir = os.path.join(WORK, f"count-{version}", "logs")
    os.makedirs(log_dir, exist_ok=True)
    out: dict[str, object] = {"python": full, "executable": base}
    texts = []
    for name in names:
        say(f"[{version}] {name}: setting up")
        log = os.path.join(log_dir, f"{name}.log")
        if name == "cpu":
            benches = args.bench or list(run.CPU_LOOPS)
            cases = cpu_cases(v, version, vinfo, args.mode, args.scale, benches, args.tool)
            results = count_cases(version, cases, version, log, args.slow_limit)
            text, data = cpu_summary(results)
            texts.append(
                f"cpu: run.py's CPU_LOOPS / {args.scale} ('loops') and twice that ('2x "
                f"loops'); ratio = Ir / plain Python's Ir at the same size, fixed costs "
                f"(start-up, saving, the `mpcov run` parent) included, which weigh "
                f"{args.scale}x more than in run.py; marginal = (Ir(2x) - Ir(1x)) / "
                f"plain Python's: the steady-state cost without them; '@run.py loops' = the "
                f"ratio at run.py's own loop counts, on the straight line through both "
                f"sizes; 'measured proc' and "
                f"'mpcov parent' split mpcov run's first size"
                + (f"; a tool over {args.slow_limit:g}x plain Python at the first size is "
                   "counted at that size only (no marginal)" if args.slow_limit else "")
                + "\n\n" + text)
        elif name == "suite":
            cases = suite_cases(v, vinfo, args.mode, args.tool, args.suite_path)
            results = count_cases(version, cases, version, log)
            text, data = startup_summary(results, baseline="python")
            texts.append("suite: run.py's suite workload (pytest on more-itertools' tests), "
                         "one run each, the `mpcov run` parent and its combine included\n\n"
                         + text)
        else:
            results = count_cases(version, startup_cases(v, version), version, log)
            text, data = startup_summary(results)
            # The determinism check: the baseline once more.
            again = count_steps(startup_cases(v, version)[0][0].steps,
                                os.path.join(WORK, f"count-{version}", "callgrind"), log)
            first = next((r.counts[0].total for r in results if r.tool == "baseline" and r.ok),
                         0)
            if first and not again.error:
                drift = abs(again.total - first) / first
                data["repeat_baseline"] = again.total
                text += (f"\n(repeat check: baseline counted again: {again.total:,} vs "
                         f"{first:,} Ir, {drift:.3%} apart)")
            texts.append("startup: `python -c pass` as run.py's startup workload defines "
                         "it, one run each\n\n" + text)
        out[name] = data
    say(f"\n=== CPython {full}: instructions (callgrind Ir, summed over every process of a "
        "run; one run per case, deterministic within ~0.2 %; every case first ran once "
        "natively, uncounted, so .pyc files and mpcov's branch probe cache are warm: the "
        "steady state from a user's second run on)\n")
    say("\n\n".join(texts) + "\n")
    return out


def main(argv: list[str]) -> int:
    """Count; 0 when every case ran."""
    args = parse_args(argv)
    if args.from_json:
        reprint(args.from_json)
        return 0
    if args.scale < 1:
        say("--scale must be at least 1")
        return 2
    names = [w for w in WORKLOADS if w in (args.workload or WORKLOADS)]
    command = "python3 benchmarks/count.py " + shlex.join(argv)
    vg = subprocess.run([VALGRIND, "--version"], capture_output=True, text=True)
    if vg.returncode != 0:
        say("count.py: valgrind not found")
        return 1
    facts = run.machine()
    say(f"{command}\nmachine: {facts['nproc']} CPUs, {facts['cpu']}, {facts['system']}; "
        f"{vg.stdout.strip()}")
    found = run.find_pythons(args.python or run.VERSIONS)
    if not found:
        return 1
    constraints = run.write_constraints("count-constraints.txt")
    build = os.path.join(WORK, f"count-wheel-{os.getpid()}")
    started = time.monotonic()
    try:
        source = envs.export_rev(ROOT, args.mpcov_rev, build) if args.mpcov_rev else ROOT
        wheel = envs.build_wheel(next(iter(found.values())), source, os.path.join(build, "dist"))
        mpcov = envs.describe_source(ROOT, args.mpcov_rev)
        say(f"mpcov: {mpcov}")
        per_python = {version: count_python(version, path, wheel, constraints, names, args)
                      for version, path in found.items()}
    except envs.SetupError as exc:
        print(f"count.py: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(build, ignore_errors=True)
    seconds = round(time.monotonic() - started)
    say(f"total {seconds} s")
    if args.json_out:
        report = {"command": command, "machine": facts, "valgrind": vg.stdout.strip(),
                  "mode": args.mode, "scale": args.scale, "mpcov": mpcov, "seconds": seconds,
                  "results": per_python,
                  "pins": {"packages": run.PACKAGES, "cpu_loops": run.CPU_LOOPS}}
        with open(args.json_out, "w") as f:
            json.dump(_clean(report), f, indent=1)
    failed = any(e for res in per_python.values() for w in WORKLOADS if w in res
                 for row in res[w]["rows"] for e in row["errors"])  # type: ignore[index]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
