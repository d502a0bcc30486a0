"""One short subprocess of the process-heavy workload: a little work, then exit."""

from __future__ import annotations

import sys

import procs_tasks

if __name__ == "__main__":
    sys.exit(0 if procs_tasks.task(int(sys.argv[1])) >= 0 else 1)
