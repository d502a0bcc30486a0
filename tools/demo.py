#!/usr/bin/env python3
"""Set up mpcov and run the demo: measure a multi-process app, then report.

    python3 tools/demo.py

Creates ``.venvs/demo`` (CPython 3.11+), installs mpcov from this checkout,
and runs ``mpcov run -m wordfreq texts`` in ``examples/wordfreq``: the main
process, two ``spawn`` pool workers and a reporting subprocess are all
measured. Ends with the report on screen and reports written to
``examples/wordfreq/build/``.
"""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "examples", "wordfreq")
VENV = os.path.join(ROOT, ".venvs", "demo")


def step(title: str, cmd: list[str], cwd: str = ROOT) -> None:
    shown = " ".join(os.path.relpath(c, cwd) if os.path.isabs(c) else c for c in cmd)
    print(f"\n\033[1m== {title}\033[0m\n$ {shown}", flush=True)
    rc = subprocess.call(cmd, cwd=cwd, env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1"))
    if rc != 0:
        sys.exit(f"demo: step failed with exit status {rc}: {' '.join(cmd)}")


def main() -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - any python3 may run this script
        sys.exit("demo: mpcov needs Python 3.11 or newer; run this script with one")
    python = os.path.join(VENV, "bin", "python")
    mpcov = os.path.join(VENV, "bin", "mpcov")
    if not os.path.exists(python):
        step("Create a virtualenv", [sys.executable, "-m", "venv", VENV])
    step("Install mpcov from this checkout", [python, "-m", "pip", "install", "-q", ROOT])
    step("Start afresh", [mpcov, "erase"], APP)
    step("Run the app under mpcov: main process, pool workers, subprocess",
         [mpcov, "run", "-m", "wordfreq", "texts"], APP)
    step("Report", [mpcov, "report", "--show-missing"], APP)
    step("Write a JSON report", [mpcov, "json", "-o", "build/coverage.json"], APP)
    with open(os.path.join(APP, "build", "coverage.md"), "w") as out:
        subprocess.check_call([mpcov, "report", "--format", "markdown"], cwd=APP, stdout=out)
    print(f"\nReports written to {os.path.relpath(os.path.join(APP, 'build'))}/: "
          "coverage.json, coverage.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
