"""tools/fidelity.py: its comparison of two JSON reports, and one real run of both tools.

The comparison functions are pure and get hand-made reports; the last tests
measure a tiny generated project with coverage.py and mpcov as the script does
(both installed in the test environment, no network) and compare them.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from .helpers import write

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


fidelity = _load("fidelity", ROOT / "tools" / "fidelity.py")


def entry(executed: list[int], missing: list[int], *, excluded: list[int] | None = None,
          done: list[list[int]] | None = None, undone: list[list[int]] | None = None,
          partial: int = 0) -> dict[str, Any]:
    """One file of a coverage.py-format branch report; the summary follows from the arcs."""
    done, undone = done or [], undone or []
    return {
        "executed_lines": executed,
        "missing_lines": missing,
        "excluded_lines": excluded or [],
        "executed_branches": done,
        "missing_branches": undone,
        "summary": {"num_branches": len(done) + len(undone), "covered_branches": len(done),
                    "missing_branches": len(undone), "num_partial_branches": partial},
    }


def report(files: dict[str, dict[str, Any]], branch: bool = True) -> dict[str, Any]:
    return {"meta": {"branch_coverage": branch}, "files": files}


def test_identical_reports_have_no_differences() -> None:
    a = report({"m.py": entry([1, 2, 4], [3], done=[[2, 4]], undone=[[2, 3]], partial=1)})
    comparisons = fidelity.compare_reports(a, a)
    assert [c.identical for c in comparisons] == [True]
    t = fidelity.tally(comparisons, branch=True)
    assert t.files == 1 and all(t.share(aspect) == 1.0 for aspect in fidelity.ASPECTS)
    assert fidelity.meets_targets(t, branch=True)


def test_each_aspect_is_compared_separately() -> None:
    a = report({"m.py": entry([1, 2, 4], [3], done=[[2, 4]], undone=[[2, 3]], partial=1)})
    b = report({"m.py": entry([1, 2, 3, 4], [], done=[[2, 3], [2, 4]])})
    (c,) = fidelity.compare_reports(a, b)
    assert c.same("statements") and c.same("possible_arcs") and c.same("excluded_lines")
    assert c.diffs["executed_lines"] == ([], [3])
    assert c.diffs["executed_arcs"] == ([], [[2, 3]])
    assert c.diffs["branch_totals"] == (
        ["covered_branches=1", "missing_branches=1", "num_partial_branches=1"],
        ["covered_branches=2", "missing_branches=0", "num_partial_branches=0"],
    )
    text = fidelity.describe(c)
    assert "executed_lines  only mpcov: 3" in text
    assert "only mpcov: 2->3" in text


def test_statements_differ_when_a_line_is_missing_in_one_report_only() -> None:
    a = report({"m.py": entry([1], [2, 3])})
    b = report({"m.py": entry([1], [2])})
    (c,) = fidelity.compare_reports(a, b)
    assert c.diffs["statements"] == ([3], [])
    assert c.same("executed_lines")


def test_a_file_reported_by_one_tool_differs_in_every_aspect() -> None:
    a = report({"m.py": entry([1], []), "only_a.py": entry([1], [])})
    b = report({"m.py": entry([1], []), "only_b.py": entry([2], [])})
    comparisons = fidelity.compare_reports(a, b)
    assert [(c.name, c.only_in) for c in comparisons] == [
        ("m.py", None), ("only_a.py", "a"), ("only_b.py", "b")]
    t = fidelity.tally(comparisons, branch=True)
    assert (t.files, t.same["statements"], t.same["branch_totals"]) == (3, 1, 1)
    assert "only reported by mpcov" in fidelity.describe(comparisons[2])


def test_exit_arcs_are_shown_as_exit() -> None:
    a = report({"m.py": entry([1, 2], [], done=[[2, -1]])})
    b = report({"m.py": entry([1, 2], [], undone=[[2, -1]])})
    (c,) = fidelity.compare_reports(a, b)
    assert "only cov: 2->exit" in fidelity.describe(c)


def test_line_reports_compare_no_branch_aspects() -> None:
    a = report({"m.py": {"executed_lines": [1], "missing_lines": [2], "excluded_lines": []}},
               branch=False)
    b = report({"m.py": {"executed_lines": [1, 2], "missing_lines": [], "excluded_lines": []}},
               branch=False)
    (c,) = fidelity.compare_reports(a, b)
    assert set(c.diffs) == {"executed_lines"}
    t = fidelity.tally([c], branch=False)
    assert set(t.same) == {"statements", "executed_lines", "excluded_lines"}
    assert not fidelity.meets_targets(t, branch=False)


def test_unstable_files_and_targets() -> None:
    one = report({"a.py": entry([1], [2]), "b.py": entry([1], [])})
    two = report({"a.py": entry([1, 2], []), "b.py": entry([1], [])})
    assert fidelity.unstable_files((one, two), (one, one)) == {"a.py"}
    comparisons = fidelity.compare_reports(one, two)
    assert fidelity.tally(comparisons, True, skip={"a.py"}).files == 1
    # 99 identical files out of 100 meet the line targets; 98 do not.
    t = fidelity.Tally(100, {a: 99 for a in fidelity.ASPECTS})
    assert fidelity.meets_targets(t, branch=True)
    assert not fidelity.meets_targets(t + fidelity.Tally(1, {}), branch=True)
    t = fidelity.Tally(100, {**{a: 100 for a in fidelity.ASPECTS}, "branch_totals": 94})
    assert not fidelity.meets_targets(t, branch=True)
    assert fidelity.meets_targets(t, branch=False)


def test_relative_names(tmp_path: Path) -> None:
    inside, outside = str(tmp_path / "pkg" / "m.py"), "/elsewhere/x.py"
    doc = fidelity.relative_names({"files": {inside: 1, outside: 2, "rel.py": 3}}, str(tmp_path))
    assert doc["files"] == {"pkg/m.py": 1, outside: 2, "rel.py": 3}


def test_coverage_pin_is_the_benchmarks_pin() -> None:
    tree = ast.parse((ROOT / "benchmarks" / "run.py").read_text())
    pins = next(ast.literal_eval(node.value) for node in tree.body
                if isinstance(node, ast.Assign)
                and any(getattr(t, "id", None) == "PACKAGES" for t in node.targets))
    assert fidelity.PINS["coverage"] == pins["coverage"]


PROJECT = {
    "pkg/__init__.py": "",
    "pkg/shapes.py": """\
        def classify(n):
            if n < 0:
                return "negative"
            for d in range(2, n):
                if n % d == 0:
                    return "composite"
            else:
                return "prime or small"

        def gen(n):
            while n:
                yield n
                n -= 1

        def unused():  # pragma: no cover
            return 1
    """,
    "tests/test_shapes.py": """\
        from pkg.shapes import classify, gen

        def test_classify():
            assert classify(7) == "prime or small"
            assert classify(8) == "composite"

        def test_gen():
            assert list(gen(2)) == [2, 1]
    """,
}


def test_both_tools_on_a_tiny_project(tmp_path: Path) -> None:
    branch = True
    pytest.importorskip("coverage", reason="coverage.py is the yardstick")
    write(tmp_path, PROJECT)
    project = fidelity.Project(
        "tiny", (*fidelity.PYTEST, "tests"), ("--source=pkg",))
    runs = [fidelity.measure(tool, sys.executable, str(tmp_path), project, branch,
                             str(tmp_path / f"{tool}.json"))
            for tool in ("coverage", "mpcov")]
    assert [(m.returncode, m.tail.split(" in ")[0]) for m in runs] == [(0, "2 passed")] * 2
    cov, mp = (m.report for m in runs)
    assert cov and mp and sorted(mp["files"]) == ["pkg/__init__.py", "pkg/shapes.py"]
    comparisons = fidelity.compare_reports(cov, mp)
    assert [fidelity.describe(c) for c in comparisons if not c.identical] == []
    shapes = cov["files"]["pkg/shapes.py"]
    assert shapes["missing_lines"] == [3] and shapes["excluded_lines"] == [15, 16]
    if branch:
        assert [2, 3] in shapes["missing_branches"]


def test_pytest_config_detection(tmp_path: Path) -> None:
    assert not fidelity.has_pytest_config(str(tmp_path))
    (tmp_path / "pyproject.toml").write_text("[tool.coverage.run]\nbranch = true\n")
    assert not fidelity.has_pytest_config(str(tmp_path))
    (tmp_path / "setup.cfg").write_text("[tool:pytest]\nminversion = 2\n")
    assert fidelity.has_pytest_config(str(tmp_path))


def test_every_project_is_described_completely() -> None:
    for name, project in fidelity.PROJECTS.items():
        assert project.name == name
        assert bool(project.sdist) != bool(project.local), name
        assert project.argv, name
        pinned = r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*"
        assert all(re.fullmatch(pinned, dep) for dep in project.deps), name
    assert fidelity.project_deps() == sorted(
        {d for project in fidelity.PROJECTS.values() for d in project.deps})
