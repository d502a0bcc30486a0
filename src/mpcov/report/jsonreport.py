"""``mpcov json``: the results in coverage.py's JSON report format.

The document has coverage.py's keys, in coverage.py's order, with its number
formatting, so tools written for ``coverage json`` read ours unchanged. It
carries ``"tool": "mpcov"`` in ``meta`` and mpcov's version in
``meta.version``.

Format history (``meta.format``, coverage.py's numbering):

- 1: no format number.
- 2: ``meta.format`` added. This is what mpcov writes.
- 3: per-function and per-class regions in each file (``functions``,
  ``classes``). Not written yet: it needs the code regions of each file, which
  the analysis does not provide.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import IO, Any

from mpcov.errors import NoDataError
from mpcov.results import Arc, FileResult, Numbers, format_pct

FORMAT_VERSION = 2
"""The coverage.py JSON format number this reporter writes."""

JsonObj = dict[str, Any]


def render_json(
    results: Iterable[FileResult],
    out: IO[str],
    *,
    branch: bool,
    show_contexts: bool,
    pretty: bool,
    version: str,
    timestamp: str,
    precision: int = 0,
) -> Numbers:
    """Write the JSON report of `results` to `out`; return the totals.

    `branch` adds the branch figures and arcs; `show_contexts` adds each
    file's ``contexts`` (executed line -> labels of the processes or tests
    that ran it). `pretty` indents by four spaces. `version` is mpcov's
    version and `timestamp` the report's time (ISO 8601), both for ``meta``.
    `precision` is the number of decimals of the ``*_display`` percentages.
    As coverage.py, writes no newline after the document.
    Raises :class:`NoDataError` when there is no file at all.
    """
    results = list(results)
    if not results:
        raise NoDataError("No data to report.")
    total = sum((result.numbers for result in results), Numbers())
    files = {
        result.name: _file_entry(result, branch, show_contexts, precision)
        # coverage.py orders the files by their absolute path.
        for result in sorted(results, key=lambda result: result.path)
    }
    document = {
        "meta": _meta(branch, show_contexts, version, timestamp),
        "files": files,
        "totals": summary(total, precision, branch=branch),
    }
    json.dump(document, out, indent=4 if pretty else None)
    return total


def _meta(branch: bool, show_contexts: bool, version: str, timestamp: str) -> JsonObj:
    """The ``meta`` object: what wrote the document, when, and how."""
    return {
        "format": FORMAT_VERSION,
        "version": version,
        "timestamp": timestamp,
        "branch_coverage": branch,
        "show_contexts": show_contexts,
        "tool": "mpcov",
    }


def summary(nums: Numbers, precision: int, *, branch: bool) -> JsonObj:
    """The ``summary`` object of a file, or the ``totals`` of the report."""
    obj: JsonObj = {
        "covered_lines": nums.n_executed,
        "num_statements": nums.n_statements,
        "percent_covered": nums.pc_covered,
        "percent_covered_display": format_pct(nums.pc_covered, precision),
        "missing_lines": nums.n_missing,
        "excluded_lines": nums.n_excluded,
        "percent_statements_covered": nums.pc_statements,
        "percent_statements_covered_display": format_pct(nums.pc_statements, precision),
    }
    if branch:
        obj.update(
            num_branches=nums.n_branches,
            num_partial_branches=nums.n_partial_branches,
            covered_branches=nums.n_executed_branches,
            missing_branches=nums.n_missing_branches,
            percent_branches_covered=nums.pc_branches,
            percent_branches_covered_display=format_pct(nums.pc_branches, precision),
        )
    return obj


def _file_entry(result: FileResult, branch: bool, show_contexts: bool, precision: int) -> JsonObj:
    """The object of one file under ``files``."""
    entry: JsonObj = {
        "executed_lines": sorted(result.executed),
        "summary": summary(result.numbers, precision, branch=branch),
        "missing_lines": sorted(result.missing),
        "excluded_lines": sorted(result.excluded),
    }
    if show_contexts:
        entry["contexts"] = {line: list(result.contexts[line]) for line in sorted(result.contexts)}
    if branch:
        entry["executed_branches"] = _arc_list(result.executed_arcs)
        entry["missing_branches"] = _arc_list(result.missing_arcs)
    return entry


def _arc_list(arcs: Iterable[Arc]) -> list[list[int]]:
    """Arcs as sorted two-element lists, as coverage.py writes them."""
    return [list(arc) for arc in sorted(arcs)]
