#!/usr/bin/env python3
"""Set up and run mpcov's whole test suite on every supported Python found.

    python3 tools/run_tests.py [--python 3.12 ...] [--fresh] [-- PYTEST ARGS]

For each of CPython 3.11, 3.12 and 3.13 it finds an interpreter (pyenv's
``$(pyenv root)/versions/3.1x.*``, else ``python3.1x`` on PATH), makes a
virtualenv in ``.venvs/py3.1x``, installs mpcov there from a wheel built from
this checkout (so the tests exercise what users install, ``.pth`` file
included) with the test dependencies, and runs pytest. A missing interpreter
is reported as SKIPPED, loudly; a failing one fails the whole run.

The last line is ``N passed, N failed`` over every interpreter (plus
``, N skipped`` when tests were skipped). Exit status 0 only when every
interpreter found ran its tests and none failed.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VERSIONS = ("3.11", "3.12", "3.13")


def find_python(version: str) -> str | None:
    """The newest CPython `version` interpreter found, or None."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    try:
        out = subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=20)
        if out.returncode == 0 and out.stdout.strip():
            root = out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    found = []
    pattern = os.path.join(root, "versions", f"{version}.*", "bin", f"python{version}")
    for path in glob.glob(pattern):
        m = re.search(r"/versions/(\d+)\.(\d+)\.(\d+)/bin/", path)
        if m and os.access(path, os.X_OK):
            found.append((tuple(int(x) for x in m.groups()), path))
    if found:
        return max(found)[1]
    return shutil.which(f"python{version}")


def run(cmd: list[str], **kwargs: object) -> int:
    print("+ " + " ".join(cmd), flush=True)
    return subprocess.call(cmd, **kwargs)  # type: ignore[arg-type]


def build_wheel(python: str, outdir: str) -> str:
    """Build mpcov's wheel once (with the first interpreter found)."""
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    rc = run([python, "-m", "pip", "wheel", "--no-deps", "-q", "-w", outdir, ROOT], env=env)
    wheels = glob.glob(os.path.join(outdir, "mpcov-*.whl"))
    if rc != 0 or not wheels:
        sys.exit("run_tests: building the mpcov wheel failed")
    return wheels[0]


def make_venv(python: str, version: str, wheel: str, fresh: bool) -> str:
    venv = os.path.join(ROOT, ".venvs", f"py{version}")
    if fresh and os.path.isdir(venv):
        shutil.rmtree(venv)
    vpy = os.path.join(venv, "bin", "python")
    if not os.path.exists(vpy) and run([python, "-m", "venv", venv]) != 0:
        raise RuntimeError(f"could not create a virtualenv with {python}")
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    pip = [vpy, "-m", "pip", "install", "-q"]
    if run([*pip, "--force-reinstall", "--no-deps", wheel], env=env) != 0:
        raise RuntimeError("installing the mpcov wheel failed")
    if run([*pip, f"{wheel}[test]"], env=env) != 0:
        raise RuntimeError("installing the test dependencies failed")
    return vpy


def count(junit: str) -> tuple[int, int, int]:
    """(passed, failed, skipped) from a junit XML file."""
    try:
        tree = ET.parse(junit)
    except (OSError, ET.ParseError):
        return 0, 0, 0
    passed = failed = skipped = 0
    for suite in tree.iter("testsuite"):
        tests = int(suite.get("tests", 0))
        fails = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skips = int(suite.get("skipped", 0))
        passed += tests - fails - skips
        failed += fails
        skipped += skips
    return passed, failed, skipped


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--python", action="append", choices=VERSIONS, help="only these versions")
    ap.add_argument("--fresh", action="store_true", help="recreate the virtualenvs")
    ap.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    opts = ap.parse_args()
    # Two pytest-xdist workers: the machines this runs on have two cores.
    pytest_args = opts.pytest_args or ["-n", "2"]
    versions = opts.python or list(VERSIONS)
    pythons = {v: find_python(v) for v in versions}
    present = [v for v in versions if pythons[v]]
    if not present:
        print("run_tests: no supported Python (3.11, 3.12, 3.13) found", file=sys.stderr)
        return 1
    totals = [0, 0, 0]
    outcome: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="mpcov-wheel-") as tmp:
        wheel = build_wheel(pythons[present[0]] or sys.executable, tmp)
        for version in versions:
            python = pythons[version]
            if not python:
                outcome[version] = "SKIPPED: interpreter not found (looked in pyenv and PATH)"
                print(f"\n=== Python {version}: {outcome[version]}", flush=True)
                continue
            print(f"\n=== Python {version}: {python}", flush=True)
            t0 = time.monotonic()
            try:
                vpy = make_venv(python, version, wheel, opts.fresh)
            except RuntimeError as exc:
                outcome[version] = f"FAILED to set up: {exc}"
                totals[1] += 1
                continue
            junit = os.path.join(tmp, f"junit-{version}.xml")
            rc = run(
                [vpy, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={junit}",
                 *pytest_args],
                cwd=ROOT,
            )
            passed, failed, skipped = count(junit)
            if rc != 0 and failed == 0:
                failed = 1  # pytest failed without a test failing (collection, usage...)
            for i, n in enumerate((passed, failed, skipped)):
                totals[i] += n
            status = "ok" if rc == 0 else f"FAILED (pytest exit {rc})"
            outcome[version] = (f"{status}: {passed} passed, {failed} failed, {skipped} skipped "
                                f"in {time.monotonic() - t0:.0f} s")
    print("\n=== Summary")
    for version in versions:
        print(f"Python {version}: {outcome.get(version)}")
    line = f"{totals[0]} passed, {totals[1]} failed"
    if totals[2]:
        line += f", {totals[2]} skipped"
    print(line)
    ran_all = all(not outcome[v].startswith("FAILED") for v in versions)
    return 0 if ran_all and totals[1] == 0 and totals[0] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
