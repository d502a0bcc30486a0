"""The process-heavy workload: many short Python subprocesses, then a process pool.

    python procs_main.py N_SUBPROCESSES N_TASKS

Starts ``N_SUBPROCESSES`` short Python subprocesses one after another (each
runs ``procs_child.py``), then maps ``N_TASKS`` small tasks over a
``multiprocessing.Pool`` of two workers (the platform's default start
method). Every process imports ``procs_tasks``, so a tool that measures child
processes has something to record in each.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys

import procs_tasks

HERE = os.path.dirname(os.path.abspath(__file__))


def main() -> int:
    """Run the subprocesses and the pool; exit non-zero if any result is wrong."""
    n_sub, n_tasks = int(sys.argv[1]), int(sys.argv[2])
    child = os.path.join(HERE, "procs_child.py")
    for i in range(n_sub):
        subprocess.run([sys.executable, child, str(i)], check=True)
    with multiprocessing.Pool(2) as pool:
        results = pool.map(procs_tasks.task, range(n_tasks))
    return 0 if results == [procs_tasks.task(i) for i in range(n_tasks)] else 1


if __name__ == "__main__":
    sys.exit(main())
