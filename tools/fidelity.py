#!/usr/bin/env python3
"""Compare mpcov with coverage.py on real test suites, file by file.

    python3 tools/fidelity.py [--python 3.12 ...] [--project NAME ...]
                              [--branch | --no-branch] [--no-recheck] [--json-out FILE]

Runs with any python3 (stdlib only). For each CPython found under
``$(pyenv root)/versions/3.1x.*`` it keeps a virtualenv in ``tools/.fidelity``
with coverage.py (the version the benchmarks pin), pytest and mpcov installed
from this checkout (reinstalled on every run), downloads the pinned sdists of
the projects below from PyPI, and runs each project's test suite once under
``coverage run`` and once under ``mpcov run``, same directory, same arguments.
Both JSON reports are then compared per file: statements, executed lines,
excluded lines, possible arcs, executed arcs and the branch totals.

When the tools disagree, both are run once more (``--no-recheck`` skips it): a
file whose report changes between two runs of the *same* tool is marked
unstable (the test suite is nondeterministic there) and left out of the
targets, but still listed.

Exit status: 0 when, on every Python, at least 99 % of the stable files have
identical statements and executed lines and at least 95 % identical branch
totals (issue 4's targets, over all projects together); 1 otherwise; 2 when
setting up failed. See docs/fidelity.md for the results and every difference.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "tools", ".fidelity")
VERSIONS = ("3.11", "3.12", "3.13")

#: Installed into every venv. coverage.py's version is the benchmarks' pin
#: (benchmarks/run.py, PACKAGES); the test checks that the two stay equal.
PINS = {
    "coverage": "7.17.4",
    "pytest": "9.2.0",
    "filelock": "4.2.12",
    "psutil": "7.2.2",
}

#: Targets of issue 4: share of files with identical sets or totals.
TARGETS = {"statements": 0.99, "executed_lines": 0.99, "branch_totals": 0.95}

#: The aspects compared per file, in report order.
ASPECTS = (
    "statements",
    "executed_lines",
    "excluded_lines",
    "possible_arcs",
    "executed_arcs",
    "branch_totals",
)
BRANCH_ASPECTS = ("possible_arcs", "executed_arcs", "branch_totals")
SUMMARY_BRANCH_KEYS = ("num_branches", "covered_branches", "missing_branches",
                       "num_partial_branches")

#: Variables that would change what a measured interpreter does.
_SCRUBBED_PREFIXES = ("PYTHON", "MPCOV_", "COVERAGE_", "PYTEST_", "PIP_")
_SCRUBBED = {"VIRTUAL_ENV", "PYENV_VERSION"}

JsonDict = dict[str, Any]


class SetupError(Exception):
    """An interpreter, venv, download or install is missing or failed: the message says which."""


# --- The projects ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Project:
    """A program to measure with both tools.

    `sdist` is ``(name, version)`` of a PyPI sdist whose unpacked tree is the
    working directory; otherwise the tree is made of parts of this checkout:
    `local` maps a path in the tree (``.`` for the tree itself) to a path of
    the checkout, copied there. `default` projects run without ``--project``.
    `flaky` names files that one tool measures differently from run to run, with
    the reason: when they differ, they count as unstable even if two runs agreed.
    `argv` is what follows ``coverage run`` / ``mpcov run``
    (after the shared options `options`, e.g. ``--source``). `files` are
    written into the tree first (a configuration both tools read). `deps` are
    the pinned (``name==version``) test requirements the suite needs beyond
    pytest; every project's are installed into every venv.
    """

    name: str
    argv: tuple[str, ...]
    options: tuple[str, ...] = ()
    sdist: tuple[str, str] | None = None
    local: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    default: bool = True
    flaky: Mapping[str, str] = field(default_factory=dict)
    deps: tuple[str, ...] = ()


PYTEST = ("-m", "pytest", "-q", "-p", "no:cacheprovider")

#: more-itertools tests left out: the benchmarks' slow prime searches, and tests of many
#: threads contending for a lock (minutes under a per-line tracer; timing-dependent).
MORE_ITERTOOLS_DESELECT = (
    "tests/test_recipes.py::PrimeFunctionTests::test_primes",
    "tests/test_recipes.py::PrimeFunctionTests::test_nth_prime_approximate",
    "tests/test_recipes.py::PrimeFunctionTests::test_nth_prime_tightened_bound",
    "tests/test_more.py::TestConcurrentTee::test_concurrent_consumers",
    "tests/test_more.py::TestSerialize::test_concurrent_calls",
    "tests/test_more.py::TestSynchronized::test_concurrent_calls",
)

WORDFREQ_RC = """\
# Written by tools/fidelity.py: both tools read it. coverage.py needs the last
# three to measure the spawn pool workers (which `with Pool()` ends by SIGTERM)
# and the reporting subprocess, and `branch` and `source` here, not on its
# command line, which its child processes do not see. mpcov accepts and
# ignores those three (it always measures every process, and saves on SIGTERM).
[run]
branch = {branch}
source = wordfreq
concurrency = multiprocessing
patch = subprocess
sigterm = true
"""

#: A pytest plugin for measuring mpcov's own tests. Under `mpcov run`, the process has
#: imported the installed mpcov (the tracer) before the tests start, and mpcov never
#: measures its own directory; the plugin makes the tests import the copy in ./src
#: instead, which both tools then measure. The tracer's modules keep running: they hold
#: their own references.
SELF_PLUGIN = """\
\"\"\"pytest plugin written by tools/fidelity.py: the tests import mpcov from ./src.\"\"\"
import os
import sys

for _name in [n for n in sys.modules if n == "mpcov" or n.startswith("mpcov.")]:
    del sys.modules[_name]
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))
"""

#: mpcov's unit tests left out of "mpcov-unit": they start tracers of their own
#: (mpcov's cores, coverage.py's tracer), which replaces the measuring tool's, or skip
#: themselves under a settrace tracer only, so each tool would run different tests.
MPCOV_UNIT_DESELECT = ("test_cores.py", "test_arcs_vs_coveragepy.py",
                       "test_monitoring_branch.py")

#: click's tests read click's version from its installed metadata; the tree is not installed.
CLICK_METADATA = """\
Metadata-Version: 2.4
Name: click
Version: 8.5.1
"""

PROJECTS = {
    "six": Project("six", (*PYTEST, "test_six.py"), ("--source=.",), sdist=("six", "1.17.0")),
    "toolz": Project("toolz", PYTEST, ("--source=toolz,tlz",), sdist=("toolz", "1.2.0")),
    # Its own [tool.coverage] configuration: source_pkgs, parallel, omit, paths, exclude_lines.
    "sqlparse": Project("sqlparse", PYTEST, (), sdist=("sqlparse", "0.6.1")),
    "more-itertools": Project(
        "more-itertools",
        (*PYTEST, *(f"--deselect={t}" for t in MORE_ITERTOOLS_DESELECT)),
        ("--source=more_itertools",), sdist=("more-itertools", "11.2.1"),
    ),
    # Its own [tool.coverage] configuration (branch, source = click and tests, [paths]) and
    # pytest configuration (testpaths, filterwarnings = error, -m 'not stress'); src layout.
    # The tests import it from src/ (PYTHONPATH); test_deprecations.py reads its version from
    # the installed metadata, which CLICK_METADATA stands in for.
    "click": Project("click", PYTEST, (), sdist=("click", "8.5.1"), env={"PYTHONPATH": "src"},
                     files={"src/click-8.5.1.dist-info/METADATA": CLICK_METADATA}),
    # Run with unittest, as its tox.ini does: under pytest, test_legacy.py's import-time
    # warnings.simplefilter('error') turns a later collection warning into an error.
    # test_apis.py needs PyYAML (its "testing" extra).
    "markdown": Project("markdown", ("-m", "unittest", "discover", "tests"),
                        ("--source=markdown",), sdist=("markdown", "3.11.3"),
                        deps=("PyYAML==6.0.4",)),
    # Its tests and the doctests of its modules, as its tox.ini runs them.
    "boltons": Project("boltons", (*PYTEST, "--doctest-modules", "boltons", "tests"),
                       ("--source=boltons",), sdist=("boltons", "26.2.0")),
    # examples/wordfreq: spawn pool workers and a subprocess.
    "wordfreq": Project("wordfreq", ("-m", "wordfreq", "texts"),
                        local={".": "examples/wordfreq"}, files={".coveragerc": WORDFREQ_RC},
                        flaky={"wordfreq/counting.py": "coverage.py now and then loses the data "
                               "of a pool worker ended by SIGTERM (about 1 run in 6)"}),
    # mpcov's unit tests measuring a copy of src/mpcov (see SELF_PLUGIN); minutes per tool.
    "mpcov-unit": Project(
        "mpcov-unit",
        (*PYTEST, "-p", "fidelity_self", "tests/unit",
         *(f"--deselect=tests/unit/{t}" for t in MPCOV_UNIT_DESELECT)),
        ("--source=src/mpcov",),
        local={"src": "src", "tests": "tests", "pyproject.toml": "pyproject.toml"},
        files={"fidelity_self.py": SELF_PLUGIN}, default=False,
    ),
}


# --- Comparing two JSON reports (pure) ------------------------------------------------------


@dataclass(frozen=True)
class FileComparison:
    """How one file's entries in two JSON reports differ.

    `only_in` names the tool ("a" or "b") that reported a file the other did
    not; then every aspect counts as different. Otherwise `diffs` maps each
    differing aspect to ``(only in a, only in b)``: sorted line numbers or
    ``[from, to]`` arcs, or for ``branch_totals`` the ``"key=value"`` items.
    """

    name: str
    only_in: str | None = None
    diffs: Mapping[str, tuple[list[Any], list[Any]]] = field(default_factory=dict)

    def same(self, aspect: str) -> bool:
        """Is `aspect` identical in both reports?"""
        return self.only_in is None and aspect not in self.diffs

    @property
    def identical(self) -> bool:
        """Is every aspect identical?"""
        return self.only_in is None and not self.diffs


def file_sets(entry: Mapping[str, Any], branch: bool) -> dict[str, set[Any]]:
    """The comparable sets of one file entry of a coverage.py-format JSON report."""
    executed = set(entry.get("executed_lines", ()))
    sets: dict[str, set[Any]] = {
        "statements": executed | set(entry.get("missing_lines", ())),
        "executed_lines": executed,
        "excluded_lines": set(entry.get("excluded_lines", ())),
    }
    if branch:
        done = {tuple(arc) for arc in entry.get("executed_branches", ())}
        sets["possible_arcs"] = done | {tuple(arc) for arc in entry.get("missing_branches", ())}
        sets["executed_arcs"] = done
        summary = entry.get("summary", {})
        sets["branch_totals"] = {f"{key}={summary.get(key)}" for key in SUMMARY_BRANCH_KEYS}
    return sets


def _listed(items: Iterable[Any]) -> list[Any]:
    return [list(x) if isinstance(x, tuple) else x for x in sorted(items)]


def compare_file(name: str, a: Mapping[str, Any], b: Mapping[str, Any],
                 branch: bool) -> FileComparison:
    """Compare the entries `a` and `b` of file `name` (see :class:`FileComparison`)."""
    sets_a, sets_b = file_sets(a, branch), file_sets(b, branch)
    diffs = {
        aspect: (_listed(sets_a[aspect] - sets_b[aspect]), _listed(sets_b[aspect] - sets_a[aspect]))
        for aspect in ASPECTS
        if aspect in sets_a and sets_a[aspect] != sets_b[aspect]
    }
    return FileComparison(name, None, diffs)


def compare_reports(a: Mapping[str, Any], b: Mapping[str, Any],
                    branch: bool | None = None) -> list[FileComparison]:
    """Compare two coverage.py-format JSON documents file by file, sorted by name.

    `branch` defaults to whether both reports have branch data
    (``meta.branch_coverage``).
    """
    if branch is None:
        branch = all(doc.get("meta", {}).get("branch_coverage", False) for doc in (a, b))
    files_a, files_b = a.get("files", {}), b.get("files", {})
    out = []
    for name in sorted(set(files_a) | set(files_b)):
        if name not in files_b:
            out.append(FileComparison(name, "a"))
        elif name not in files_a:
            out.append(FileComparison(name, "b"))
        else:
            out.append(compare_file(name, files_a[name], files_b[name], branch))
    return out


def unstable_files(*pairs: tuple[Mapping[str, Any], Mapping[str, Any]]) -> set[str]:
    """Files on which two runs of the same tool disagree, for each pair of runs."""
    return {c.name for a, b in pairs for c in compare_reports(a, b) if not c.identical}


@dataclass(frozen=True)
class Tally:
    """How many files compared, and how many are identical in each aspect."""

    files: int
    same: Mapping[str, int]

    def share(self, aspect: str) -> float:
        """The share (0..1) of files identical in `aspect`; 1.0 with no files."""
        return self.same.get(aspect, 0) / self.files if self.files else 1.0

    def __add__(self, other: Tally) -> Tally:
        keys = set(self.same) | set(other.same)
        return Tally(self.files + other.files,
                     {k: self.same.get(k, 0) + other.same.get(k, 0) for k in keys})


def tally(comparisons: Iterable[FileComparison], branch: bool,
          skip: Iterable[str] = ()) -> Tally:
    """Count identical files per aspect, leaving out the files named in `skip`."""
    skipped = set(skip)
    kept = [c for c in comparisons if c.name not in skipped]
    aspects = ASPECTS if branch else tuple(a for a in ASPECTS if a not in BRANCH_ASPECTS)
    return Tally(len(kept), {a: sum(c.same(a) for c in kept) for a in aspects})


def meets_targets(t: Tally, branch: bool) -> bool:
    """Does `t` reach issue 4's targets (branch totals only with branch data)?"""
    return all(t.share(aspect) >= goal for aspect, goal in TARGETS.items()
               if branch or aspect not in BRANCH_ASPECTS)


def describe(c: FileComparison, limit: int = 6, names: tuple[str, str] = ("cov", "mpcov")) -> str:
    """One line per differing aspect of `c`, at most `limit` items each way."""
    if c.only_in:
        return f"  {c.name}: only reported by {names[0] if c.only_in == 'a' else names[1]}"
    lines = [f"  {c.name}:"]
    for aspect, (only_a, only_b) in c.diffs.items():
        parts = []
        for who, items in zip(names, (only_a, only_b), strict=True):
            if items:
                more = f" (+{len(items) - limit})" if len(items) > limit else ""
                shown = ", ".join(_show(x) for x in items[:limit])
                parts.append(f"only {who}: {shown}{more}")
        lines.append(f"    {aspect:<15} " + "; ".join(parts))
    return "\n".join(lines)


def _show(item: Any) -> str:
    if isinstance(item, list):
        return f"{item[0]}->{item[1] if item[1] > 0 else 'exit'}"
    return str(item)


# --- Setting up -----------------------------------------------------------------------------


def clean_environ() -> dict[str, str]:
    """This environment without anything that steers Python, pytest or a coverage tool."""
    return {k: v for k, v in os.environ.items()
            if k not in _SCRUBBED and not k.startswith(_SCRUBBED_PREFIXES)}


def find_python(version: str) -> str | None:
    """The newest ``$(pyenv root)/versions/<version>.*`` interpreter, else ``python3.1x``."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    try:
        out = subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=20)
        if out.returncode == 0 and out.stdout.strip():
            root = out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    found = []
    for path in glob.glob(os.path.join(root, "versions", f"{version}.*", "bin",
                                       f"python{version}")):
        m = re.search(r"/versions/(\d+)\.(\d+)\.(\d+)/bin/", path)
        if m and os.access(path, os.X_OK):
            found.append((tuple(int(x) for x in m.groups()), path))
    return max(found)[1] if found else shutil.which(f"python{version}")


def _setup_run(cmd: Sequence[str], what: str) -> None:
    env = dict(clean_environ(), PIP_DISABLE_PIP_VERSION_CHECK="1")
    out = subprocess.run(list(cmd), capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SetupError(f"{what} failed:\n$ {' '.join(cmd)}\n{(out.stdout + out.stderr)[-3000:]}")


def project_deps() -> list[str]:
    """Every project's extra test requirements, sorted (one venv serves them all)."""
    return sorted({dep for project in PROJECTS.values() for dep in project.deps})


def make_venv(base_python: str, version: str) -> str:
    """The venv of `version` with the pins installed and mpcov (re)installed from the checkout.

    The venv is rebuilt when the pins, the projects' test requirements or the
    interpreter change; returns its ``bin/python``.
    """
    path = os.path.join(WORK, "venvs", f"py{version}")
    python = os.path.join(path, "bin", "python")
    stamp_path = os.path.join(path, "fidelity-stamp.json")
    wanted = json.dumps({"python": base_python, **PINS, "deps": project_deps()}, sort_keys=True)
    try:
        with open(stamp_path) as f:
            fresh = f.read() != wanted or not os.path.exists(python)
    except FileNotFoundError:
        fresh = True
    if fresh:
        shutil.rmtree(path, ignore_errors=True)
        _setup_run([base_python, "-m", "venv", path], f"creating {path}")
        pins = [f"{name}=={v}" for name, v in PINS.items()] + project_deps()
        _setup_run([python, "-m", "pip", "install", "-q", *pins], f"installing {pins}")
        with open(stamp_path, "w") as f:
            f.write(wanted)
    _setup_run([python, "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", ROOT],
               f"installing mpcov from {ROOT}")
    return python


def fetch_sdist(python: str, name: str, version: str) -> str:
    """Download (once) and unpack the sdist of ``name==version``; returns the pristine tree."""
    downloads = os.path.join(WORK, "sdist")
    pattern = f"{re.sub(r'[-_.]', '?', name)}-{version}"
    archives = glob.glob(os.path.join(downloads, pattern + ".tar.gz"))
    if not archives:
        _setup_run([python, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps",
                    "-d", downloads, f"{name}=={version}"], f"downloading {name}=={version}")
        archives = glob.glob(os.path.join(downloads, pattern + ".tar.gz"))
    if not archives:
        raise SetupError(f"no sdist of {name}=={version} in {downloads}")
    trees = os.path.join(WORK, "pristine")
    found = [p for p in glob.glob(os.path.join(trees, pattern)) if os.path.isdir(p)]
    if not found:
        os.makedirs(trees, exist_ok=True)
        with tarfile.open(archives[0]) as tar:
            kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(trees, **kwargs)  # type: ignore[arg-type]
        found = [p for p in glob.glob(os.path.join(trees, pattern)) if os.path.isdir(p)]
    if not found:
        raise SetupError(f"unpacking {archives[0]} made no {pattern} directory")
    return found[0]


def project_tree(project: Project, python: str, version: str, branch: bool) -> str:
    """A fresh copy of `project`'s tree for one Python, with its extra files written."""
    parts = dict(project.local)
    name = project.name
    if project.sdist:
        parts = {".": fetch_sdist(python, *project.sdist)}
        # Named like the sdist: a tree named like its package meets mpcov's [paths] bug
        # (docs/fidelity.md), which is reported there rather than stopping every run.
        name = os.path.basename(parts["."])
    tree = os.path.join(WORK, "runs", f"py{version}", name)
    shutil.rmtree(tree, ignore_errors=True)
    os.makedirs(tree)
    ignore = shutil.ignore_patterns("__pycache__", ".mpcov*", ".coverage", ".coverage.*",
                                    "build", ".fidelity")
    for dest, source in parts.items():
        source = os.path.join(ROOT, source)
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(tree, dest), ignore=ignore, dirs_exist_ok=True)
        else:
            shutil.copy(source, os.path.join(tree, dest))
    for name, text in project.files.items():
        os.makedirs(os.path.dirname(os.path.join(tree, name)), exist_ok=True)
        with open(os.path.join(tree, name), "w") as f:
            f.write(text.replace("{branch}", "true" if branch else "false"))
    if not has_pytest_config(tree):
        with open(os.path.join(tree, "pytest.ini"), "w") as f:
            f.write(PYTEST_INI)
    return tree


PYTEST_INI = """\
# Written by tools/fidelity.py: without a configuration here, pytest would take
# the one of the mpcov checkout this tree is in (rootdir, testpaths, warnings).
[pytest]
"""


def has_pytest_config(tree: str) -> bool:
    """Does `tree` hold a pytest configuration that makes it pytest's rootdir?"""
    sections = {"pytest.ini": "", ".pytest.ini": "", "pyproject.toml": "[tool.pytest",
                "tox.ini": "[pytest]", "setup.cfg": "[tool:pytest]"}
    for name, marker in sections.items():
        try:
            with open(os.path.join(tree, name)) as f:
                if marker in f.read():
                    return True
        except FileNotFoundError:
            continue
    return False


# --- Running --------------------------------------------------------------------------------


@dataclass
class Measurement:
    """One tool's run of a project: how the program ended and the JSON report (None: failed)."""

    tool: str
    returncode: int
    seconds: float
    tail: str
    report: JsonDict | None
    cores: list[str] = field(default_factory=list)


def _tool(python: str, tree: str, env: Mapping[str, str], *args: str,
          timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, "-m", *args], cwd=tree, env=dict(env), capture_output=True,
                          text=True, timeout=timeout)


def _erase(tree: str) -> None:
    for path in glob.glob(os.path.join(tree, ".coverage*")) + glob.glob(
            os.path.join(tree, ".mpcov*")):
        if os.path.basename(path) == ".coveragerc":
            continue
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def measure(tool: str, python: str, tree: str, project: Project, branch: bool,
            out: str) -> Measurement:
    """Run `project` under `tool` ("coverage" or "mpcov") and read its JSON report."""
    env = dict(clean_environ(), PYTHONHASHSEED="0", **project.env)
    env["PATH"] = os.path.dirname(python) + os.pathsep + env.get("PATH", "")
    _erase(tree)
    options = [*(["--branch"] if branch else []), *project.options]
    started = time.monotonic()
    ran = _tool(python, tree, env, tool, "run", *options, *project.argv)
    seconds = time.monotonic() - started
    with open(os.path.splitext(out)[0] + ".log", "w") as log:
        log.write(f"$ {tool} run {' '.join(options + list(project.argv))}\n"
                  f"{ran.stdout}\n--- stderr ---\n{ran.stderr}")
    text = (ran.stdout.strip() or ran.stderr.strip()).splitlines()
    tail = text[-1] if text else ""
    if tool == "coverage" and glob.glob(os.path.join(tree, ".coverage.*")):
        _tool(python, tree, env, "coverage", "combine", "-q")
    made = _tool(python, tree, env, tool, "json", "-o", out)
    report = None
    if made.returncode == 0 and os.path.exists(out):
        with open(out) as f:
            report = relative_names(json.load(f), tree)
    else:
        tail += f" | {tool} json failed: {(made.stdout + made.stderr).strip()[-300:]}"
    cores = mpcov_cores(os.path.join(tree, ".mpcov")) if tool == "mpcov" else []
    return Measurement(tool, ran.returncode, seconds, tail, report, cores)


def mpcov_cores(data_file: str) -> list[str]:
    """The tracer cores mpcov's measured processes used, from its data file (best effort)."""
    import sqlite3

    if not os.path.exists(data_file):
        return []
    try:
        with contextlib.closing(sqlite3.connect(data_file)) as db:
            rows = db.execute("SELECT DISTINCT core FROM process ORDER BY core").fetchall()
    except sqlite3.Error:
        return []
    return [str(core) for (core,) in rows]


def relative_names(report: JsonDict, root: str) -> JsonDict:
    """`report` with its file names made relative to `root` where they are under it."""
    real = os.path.realpath(root)
    files = {}
    for name, entry in report.get("files", {}).items():
        if os.path.isabs(name):
            path = os.path.realpath(name)
            if path.startswith(real + os.sep):
                name = os.path.relpath(path, real)
        files[name] = entry
    return {**report, "files": files}


@dataclass
class ProjectResult:
    """Both tools' runs of one project on one Python, compared."""

    project: str
    python: str
    runs: list[Measurement]
    comparisons: list[FileComparison]
    unstable: set[str]
    branch: bool

    @property
    def stable_tally(self) -> Tally:
        """The tally of files that no tool reported differently between its own runs."""
        return tally(self.comparisons, self.branch, self.unstable)

    @property
    def failed(self) -> bool:
        """Did a tool produce no report?"""
        return any(m.report is None for m in self.runs)


def run_project(project: Project, python: str, version: str, branch: bool,
                recheck: bool) -> ProjectResult:
    """Measure `project` with both tools (twice each when they disagree and `recheck`)."""
    tree = project_tree(project, python, version, branch)
    outdir = os.path.join(WORK, "reports", f"py{version}", project.name)
    os.makedirs(outdir, exist_ok=True)

    def one(tool: str, n: int) -> Measurement:
        print(f"  {project.name}: {tool} run {n}", end="", flush=True)
        m = measure(tool, python, tree, project, branch, os.path.join(outdir, f"{tool}-{n}.json"))
        cores = f", core {'+'.join(m.cores)}" if m.cores else ""
        print(f" ({m.seconds:.0f} s{cores}, exit {m.returncode}: {m.tail[:90]})", flush=True)
        return m

    runs = [one("coverage", 1), one("mpcov", 1)]
    cov, mp = runs[0].report, runs[1].report
    comparisons = compare_reports(cov or {}, mp or {}, branch)
    unstable: set[str] = set()
    if recheck and cov and mp and any(not c.identical for c in comparisons):
        runs += [one("coverage", 2), one("mpcov", 2)]
        cov2, mp2 = runs[2].report, runs[3].report
        unstable = unstable_files((cov, cov2 or {}), (mp, mp2 or {}))
    unstable |= {c.name for c in comparisons if not c.identical and c.name in project.flaky}
    return ProjectResult(project.name, version, runs, comparisons, unstable, branch)


# --- Reporting ------------------------------------------------------------------------------


def _pct(t: Tally, aspect: str) -> str:
    return f"{100 * t.share(aspect):.1f}" if aspect in t.same else "-"


def print_table(results: Sequence[ProjectResult], branch: bool) -> None:
    """The per-project table and the differing files."""
    aspects = [a for a in ASPECTS if branch or a not in BRANCH_ASPECTS]
    heads = {"statements": "stmts", "executed_lines": "lines", "excluded_lines": "excl",
             "possible_arcs": "arcs", "executed_arcs": "exec arcs", "branch_totals": "br tot"}
    print(f"\n{'python':<7}{'project':<16}{'files':>6}{'unstable':>9}"
          + "".join(f"{heads[a]:>10}" for a in aspects) + "   (% of stable files identical)")
    for r in results:
        t = r.stable_tally
        print(f"{r.python:<7}{r.project:<16}{t.files:>6}{len(r.unstable):>9}"
              + "".join(f"{_pct(t, a):>10}" for a in aspects)
              + ("   TOOL FAILED" if r.failed else ""))
    for version in sorted({r.python for r in results}):
        t = sum((r.stable_tally for r in results if r.python == version), Tally(0, {}))
        print(f"{version:<7}{'ALL':<16}{t.files:>6}"
              f"{sum(len(r.unstable) for r in results if r.python == version):>9}"
              + "".join(f"{_pct(t, a):>10}" for a in aspects)
              + ("   targets met" if meets_targets(t, branch) else "   TARGETS MISSED"))
    for r in results:
        differing = [c for c in r.comparisons if not c.identical]
        if differing:
            print(f"\n{r.python} {r.project}: {len(differing)} differing file(s)"
                  " (cov = coverage.py run 1, mpcov = mpcov run 1)")
            flaky = PROJECTS[r.project].flaky if r.project in PROJECTS else {}
            for c in differing:
                why = f": {flaky[c.name]}" if c.name in flaky else ""
                print(describe(c) + (f"  [unstable{why}]" if c.name in r.unstable else ""))


def to_json(results: Sequence[ProjectResult], branch: bool, commit: str) -> JsonDict:
    """Everything measured, for ``--json-out``."""
    return {
        "mpcov_commit": commit,
        "coverage_version": PINS["coverage"],
        "branch": branch,
        "targets": TARGETS,
        "results": [
            {
                "python": r.python,
                "project": r.project,
                "runs": [{"tool": m.tool, "returncode": m.returncode, "cores": m.cores,
                          "seconds": round(m.seconds, 2), "tail": m.tail} for m in r.runs],
                "files": r.stable_tally.files,
                "identical": dict(r.stable_tally.same),
                "unstable": sorted(r.unstable),
                "differences": [
                    {"file": c.name,
                     "only_in": {"a": "coverage", "b": "mpcov"}.get(c.only_in or ""),
                     "diffs": {k: {"only_coverage": v[0], "only_mpcov": v[1]}
                               for k, v in c.diffs.items()}}
                    for c in r.comparisons if not c.identical
                ],
            }
            for r in results
        ],
    }


def _commit() -> str:
    """HEAD's short hash, with ``+dirty`` when the installed tree (src/) has changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout

    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--", "src").strip() else "")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, set up, measure, compare, report; the exit status."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--python", action="append", choices=VERSIONS, help="only these versions")
    ap.add_argument("--project", action="append", choices=sorted(PROJECTS),
                    help="only these projects (default: all but mpcov-unit)")
    ap.add_argument("--branch", action=argparse.BooleanOptionalAction, default=True,
                    help="measure branch coverage (default) or lines only")
    ap.add_argument("--no-recheck", dest="recheck", action="store_false",
                    help="do not run both tools again when they disagree")
    ap.add_argument("--json-out", metavar="FILE", help="write every result to FILE")
    opts = ap.parse_args(argv)
    versions = opts.python or list(VERSIONS)
    projects = ([PROJECTS[name] for name in opts.project] if opts.project
                else [p for p in PROJECTS.values() if p.default])
    results: list[ProjectResult] = []
    first_commit = _commit()  # HEAD may move while the run goes on (others commit)
    try:
        for version in versions:
            base = find_python(version)
            if base is None:
                print(f"fidelity: no Python {version} found: SKIPPED", flush=True)
                continue
            print(f"Python {version} ({base}): setting up", flush=True)
            python = make_venv(base, version)
            for project in projects:
                results.append(run_project(project, python, version, opts.branch, opts.recheck))
    except SetupError as exc:
        print(f"fidelity: setup failed: {exc}", file=sys.stderr)
        return 2
    if not results:
        print("fidelity: no supported Python found", file=sys.stderr)
        return 2
    print_table(results, opts.branch)
    commit = first_commit
    if _commit() != first_commit:
        commit = f"{first_commit} (HEAD moved to {_commit()} during the run)"
    print(f"\nmpcov {commit}, coverage.py {PINS['coverage']}, "
          f"{'branch' if opts.branch else 'line'} coverage")
    if opts.json_out:
        with open(opts.json_out, "w") as f:
            json.dump(to_json(results, opts.branch, commit), f, indent=1)
    ok = not any(r.failed for r in results)
    for version in {r.python for r in results}:
        t = sum((r.stable_tally for r in results if r.python == version), Tally(0, {}))
        ok = ok and meets_targets(t, opts.branch)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
