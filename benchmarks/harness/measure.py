"""Running one command and measuring its whole process tree.

CPU time and peak RSS come from ``os.wait4``: on Linux the resource usage of
a reaped child includes that of every descendant it reaped in turn, so one
number covers the program, its subprocesses and its pool workers. Peak RSS is
the largest single process of the tree, not a sum. Each command runs through
``spawn.py``, which explains why.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

_SPAWN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "spawn.py")


@dataclass(frozen=True)
class Step:
    """One command to run: its argv, working directory and complete environment.

    After `timeout` seconds its process group is killed and the run fails.
    """

    argv: Sequence[str]
    cwd: str
    env: dict[str, str]
    timeout: int = 900


@dataclass(frozen=True)
class Sample:
    """What one run cost: CPU seconds (user + sys), wall seconds, peak RSS in MB.

    `error` is None for a run whose every step exited 0, else what went wrong.
    """

    cpu: float
    wall: float
    rss_mb: float
    error: str | None = None

    def __add__(self, other: Sample) -> Sample:
        """Steps run one after another: times add up, peak RSS is the larger one."""
        return Sample(
            self.cpu + other.cpu,
            self.wall + other.wall,
            max(self.rss_mb, other.rss_mb),
            self.error or other.error,
        )


ZERO = Sample(0.0, 0.0, 0.0)


def run_step(step: Step, log_path: str) -> Sample:
    """Run `step` with stdout discarded and stderr in `log_path`; measure it."""
    result = log_path + ".result"
    with open(log_path, "wb") as log:
        launcher = [sys.executable, "-I", "-S", _SPAWN, result, str(step.timeout), "--",
                    *step.argv]
        status = subprocess.call(launcher, cwd=step.cwd, env=step.env,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
    if status != 0:
        return Sample(0.0, 0.0, 0.0, f"launcher failed ({status}): {_tail(log_path)}")
    with open(result) as f:
        utime, stime, maxrss, wall, code, timed_out = f.read().split()
    error = None
    if int(timed_out):
        error = f"timed out after {step.timeout} s, killed: {' '.join(step.argv)}"
    elif int(code) != 0:
        error = f"exit status {code}: {' '.join(step.argv)}\n{_tail(log_path)}"
    rss_mb = int(maxrss) / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return Sample(float(utime) + float(stime), float(wall), rss_mb, error)


def run_steps(steps: Sequence[Step], log_path: str) -> Sample:
    """Run `steps` in order, stopping at the first failure; the sum of their costs."""
    total = ZERO
    for step in steps:
        total = total + run_step(step, log_path)
        if total.error:
            break
    return total


def _tail(path: str, lines: int = 15) -> str:
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-lines:])


def median(values: Sequence[float]) -> float:
    """The median, or NaN for no values."""
    return statistics.median(values) if values else math.nan


def geomean(values: Sequence[float]) -> float:
    """The geometric mean, or NaN if any value is missing or not positive."""
    if not values or any(not v > 0 for v in values):
        return math.nan
    return math.exp(sum(math.log(v) for v in values) / len(values))
