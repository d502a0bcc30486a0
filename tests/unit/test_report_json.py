"""Tests of the JSON report (``mpcov json``).

The golden files under ``golden/`` are coverage.py 7.17's ``coverage json``
output for the same files, with only what mpcov does differently changed:
``meta`` (format 2, mpcov's version, ``"tool": "mpcov"``, a fixed timestamp)
and the per-function and per-class regions of format 3 removed.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeAnalysis

from mpcov.errors import NoDataError
from mpcov.report.jsonreport import FORMAT_VERSION, render_json
from mpcov.results import FileResult, Numbers

GOLDEN = Path(__file__).parent / "golden"
TIMESTAMP = "2025-01-02T03:04:05.678901"




def result(
    name: str,
    statements: Iterable[int],
    executed: Iterable[int] = (),
    excluded: Iterable[int] = (),
    *,
    path: str | None = None,
    branches: tuple[int, int, int] = (0, 0, 0),
    executed_arcs: Iterable[tuple[int, int]] = (),
    missing_arcs: Iterable[tuple[int, int]] = (),
    contexts: Mapping[int, tuple[str, ...]] | None = None,
) -> FileResult:
    """A file's result; `branches` is (branches, partial, missing branches)."""
    analysis = FakeAnalysis(path or "/proj/" + name, frozenset(statements), frozenset(excluded))
    missing = analysis.missing(executed)
    numbers = Numbers(1, len(analysis.statements), len(analysis.excluded), len(missing), *branches)
    return FileResult(
        analysis.path,
        name,
        analysis,  # type: ignore[arg-type]
        analysis.executed(executed),
        missing,
        numbers,
        contexts=dict(contexts or {}),
        executed_arcs=frozenset(executed_arcs),
        missing_arcs=frozenset(missing_arcs),
    )


def gold_results(branch: bool = False) -> list[FileResult]:
    """The sample project of the golden files (branch figures as coverage.py measured them)."""
    main_arcs: dict[str, Any] = {}
    mod_arcs: dict[str, Any] = {}
    if branch:
        main_arcs = dict(branches=(2, 1, 1), executed_arcs=[(5, -1)], missing_arcs=[(5, 6)])
        mod_arcs = dict(branches=(2, 1, 1), executed_arcs=[(2, 3)], missing_arcs=[(2, 5)])
    return [
        result("main.py", range(1, 8), range(1, 6), **main_arcs),
        result("pkg/__init__.py", ()),
        result("pkg/full.py", range(1, 5), range(1, 5)),
        result("pkg/my_mod.py", [1, 2, 3, 5, 8, 10, 15], [1, 2, 3, 8], [13, 14], **mod_arcs),
        result("pkg/zero_cov.py", [1, 2, 3]),
    ]


def render(results: Iterable[FileResult] | None = None, **options: Any) -> str:
    out = io.StringIO()
    kwargs: dict[str, Any] = dict(
        branch=False, show_contexts=False, pretty=False, version="0.1.0", timestamp=TIMESTAMP
    )
    kwargs.update(options)
    render_json(gold_results() if results is None else results, out, **kwargs)
    return out.getvalue()


# --- Goldens ----------------------------------------------------------------------------------


def test_compact_report_matches_coverage_py() -> None:
    assert render() == (GOLDEN / "json_lines.json").read_text()


def test_pretty_report_matches_coverage_py() -> None:
    assert render(pretty=True) == (GOLDEN / "json_lines_pretty.json").read_text()


def test_branch_report_matches_coverage_py() -> None:
    expected = (GOLDEN / "json_branch.json").read_text()
    assert render(gold_results(branch=True), branch=True) == expected


def test_no_newline_after_the_document() -> None:
    assert render().endswith("}}")
    assert render(pretty=True).endswith("\n}")


# --- Shape ------------------------------------------------------------------------------------


def test_meta() -> None:
    meta = json.loads(render(version="9.8.7", timestamp="now", show_contexts=True))["meta"]
    assert list(meta.items()) == [
        ("format", FORMAT_VERSION),
        ("version", "9.8.7"),
        ("timestamp", "now"),
        ("branch_coverage", False),
        ("show_contexts", True),
        ("tool", "mpcov"),
    ]
    assert FORMAT_VERSION == 2


def test_file_entry_keys_in_coverage_py_order() -> None:
    doc = json.loads(render(branch=True, show_contexts=True))
    entry = doc["files"]["main.py"]
    assert list(entry) == [
        "executed_lines",
        "summary",
        "missing_lines",
        "excluded_lines",
        "contexts",
        "executed_branches",
        "missing_branches",
    ]
    assert list(entry["summary"]) == [
        "covered_lines",
        "num_statements",
        "percent_covered",
        "percent_covered_display",
        "missing_lines",
        "excluded_lines",
        "percent_statements_covered",
        "percent_statements_covered_display",
        "num_branches",
        "num_partial_branches",
        "covered_branches",
        "missing_branches",
        "percent_branches_covered",
        "percent_branches_covered_display",
    ]
    assert list(doc["totals"]) == list(entry["summary"])
    assert list(doc) == ["meta", "files", "totals"]


def test_line_report_has_no_branch_keys() -> None:
    doc = json.loads(render())
    entry = doc["files"]["pkg/my_mod.py"]
    assert "executed_branches" not in entry
    assert "contexts" not in entry
    assert "num_branches" not in entry["summary"]
    assert "num_branches" not in doc["totals"]


def test_file_values() -> None:
    entry = json.loads(render())["files"]["pkg/my_mod.py"]
    assert entry["executed_lines"] == [1, 2, 3, 8]
    assert entry["missing_lines"] == [5, 10, 15]
    assert entry["excluded_lines"] == [13, 14]
    assert entry["summary"]["covered_lines"] == 4
    assert entry["summary"]["percent_covered"] == 57.142857142857146
    assert entry["summary"]["percent_covered_display"] == "57"


def test_branch_values_and_arcs_sorted() -> None:
    res = result(
        "a.py",
        range(1, 11),
        range(1, 11),
        branches=(6, 3, 3),
        executed_arcs=[(8, 9), (2, 3), (7, 8)],
        missing_arcs=[(8, 7), (2, 4), (7, -6)],
    )
    doc = json.loads(render([res], branch=True))
    entry = doc["files"]["a.py"]
    assert entry["executed_branches"] == [[2, 3], [7, 8], [8, 9]]
    assert entry["missing_branches"] == [[2, 4], [7, -6], [8, 7]]
    summary = entry["summary"]
    assert summary["percent_covered"] == 81.25
    assert summary["percent_statements_covered"] == 100.0
    assert summary["percent_branches_covered"] == 50.0
    assert summary["covered_branches"] == 3
    assert doc["meta"]["branch_coverage"] is True


def test_contexts_keyed_by_line_in_order() -> None:
    res = result(
        "a.py",
        [1, 2, 10],
        [1, 2, 10],
        contexts={10: ("test_b",), 2: ("pid 12", "test_a"), 1: ("pid 12",)},
    )
    out = render([res], show_contexts=True)
    assert '"contexts": {"1": ["pid 12"], "2": ["pid 12", "test_a"], "10": ["test_b"]}' in out


def test_contexts_empty_when_none_were_collected() -> None:
    entry = json.loads(render(show_contexts=True))["files"]["main.py"]
    assert entry["contexts"] == {}


def test_precision_applies_to_display_values() -> None:
    doc = json.loads(render(precision=2, branch=True))
    assert doc["totals"]["percent_covered_display"] == "61.90"
    assert doc["totals"]["percent_statements_covered_display"] == "61.90"
    assert doc["totals"]["percent_branches_covered_display"] == "100.00"
    assert doc["totals"]["percent_covered"] == 61.904761904761905


def test_files_in_order_of_their_absolute_paths() -> None:
    results = [
        result("b.py", [1], path="/proj/b.py"),
        result("/other/z.py", [1], path="/other/z.py"),
        result("a.py", [1], path="/proj/a.py"),
    ]
    assert list(json.loads(render(results))["files"]) == ["/other/z.py", "a.py", "b.py"]


def test_names_are_json_escaped() -> None:
    out = render([result('we"ird\n.py', [1])])
    assert '"we\\"ird\\n.py": {' in out
    assert json.loads(out)["files"]['we"ird\n.py']["summary"]["num_statements"] == 1


def test_returns_totals() -> None:
    out = io.StringIO()
    total = render_json(
        gold_results(),
        out,
        branch=False,
        show_contexts=False,
        pretty=False,
        version="0.1.0",
        timestamp=TIMESTAMP,
    )
    assert total == Numbers(5, 21, 2, 8)


def test_no_results_is_no_data() -> None:
    with pytest.raises(NoDataError, match=r"^No data to report\.$"):
        render([])
