"""What coverage data and source analysis add up to: per-file results and totals.

:func:`build_results` joins the combined data (executed lines, from every
process) with the static analysis of each source file into one
:class:`FileResult` per file. Reporters only read those results: they never
touch the data file or the source.

:class:`Numbers` holds the counts of one file or of many. Numbers add up, so a
report's total is ``sum(numbers, Numbers())``. Percentages are computed and
displayed as coverage.py does, so the same data gives the same figures and the
same ``--fail-under`` verdict in both tools.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol, TypeAlias, runtime_checkable

from mpcov.errors import ConfigError, NoSourceError, NotPythonError

if TYPE_CHECKING:
    from mpcov.analysis import Analysis
    from mpcov.arcs import ArcAnalysis

LineNo: TypeAlias = int
"""A 1-based line number in a source file."""

Arc: TypeAlias = tuple[int, int]
"""A jump between two lines; a negative destination means leaving the code object."""


@runtime_checkable
class CoverageData(Protocol):
    """The combined coverage data, as reporting needs it (the store provides it)."""

    def measured_files(self) -> list[str]:
        """The absolute paths of every file some process executed."""
        ...

    def lines(self, path: str) -> set[int]:
        """Raw executed line numbers of `path`, the union over all processes."""
        ...

    def has_arcs(self) -> bool:
        """Whether the data was measured with branch coverage."""
        ...

    def line_contexts(self, path: str) -> dict[int, list[str]]:
        """Raw line of `path` -> labels of the processes or tests that ran it."""
        ...

    def arcs(self, path: str) -> set[tuple[int, int]]:
        """Raw executed arcs of `path` (branch data only), the union over all processes."""
        ...


@dataclass(frozen=True)
class Numbers:
    """The counts of one file or, added up, of many.

    All counts default to zero, so ``Numbers()`` is the neutral total and
    ``sum(many)`` works too (``0 + numbers`` is the numbers).
    """

    n_files: int = 0
    n_statements: int = 0
    n_excluded: int = 0
    n_missing: int = 0
    n_branches: int = 0
    n_partial_branches: int = 0
    n_missing_branches: int = 0

    def __add__(self, other: Numbers) -> Numbers:
        if not isinstance(other, Numbers):
            return NotImplemented
        return Numbers(
            n_files=self.n_files + other.n_files,
            n_statements=self.n_statements + other.n_statements,
            n_excluded=self.n_excluded + other.n_excluded,
            n_missing=self.n_missing + other.n_missing,
            n_branches=self.n_branches + other.n_branches,
            n_partial_branches=self.n_partial_branches + other.n_partial_branches,
            n_missing_branches=self.n_missing_branches + other.n_missing_branches,
        )

    def __radd__(self, other: int) -> Numbers:
        # Only the 0 that sum() starts from can come first.
        if other == 0:
            return self
        return NotImplemented

    @property
    def n_executed(self) -> int:
        """Statements that ran."""
        return self.n_statements - self.n_missing

    @property
    def n_executed_branches(self) -> int:
        """Branch destinations that were taken."""
        return self.n_branches - self.n_missing_branches

    @property
    def ratio_covered(self) -> tuple[int, int]:
        """(covered, coverable): statements and branch destinations together."""
        return (
            self.n_executed + self.n_executed_branches,
            self.n_statements + self.n_branches,
        )

    @property
    def pc_covered(self) -> float:
        """The coverage percentage, 100.0 when there is nothing to cover."""
        return _percent(*self.ratio_covered)

    @property
    def pc_statements(self) -> float:
        """The percentage of statements that ran, 100.0 when there are none."""
        return _percent(self.n_executed, self.n_statements)

    @property
    def pc_branches(self) -> float:
        """The percentage of branch destinations taken, 100.0 when there are none."""
        return _percent(self.n_executed_branches, self.n_branches)


def _percent(numerator: int, denominator: int) -> float:
    # Computed in this order so that the floats are bit for bit coverage.py's.
    if denominator > 0:
        return (100.0 * numerator) / denominator
    return 100.0


def format_pct(pc: float, precision: int) -> str:
    """Show percentage `pc` with `precision` decimals, without a percent sign.

    Rounding never shows 100 for less than complete coverage, nor 0 for more
    than none: at precision 0, 99.99 shows as "99" and 0.01 as "1".
    """
    if precision < 0:
        raise ConfigError(f"precision={precision} is invalid. Must not be negative.")
    step = 1.0 / 10**precision
    if 0 < pc < step:
        pc = step
    elif 100.0 - step < pc < 100.0:
        pc = 100.0 - step
    else:
        pc = round(pc, precision)
    return f"{pc:.{precision}f}"


def _threshold_precision(fail_under: float, precision: int) -> int:
    """Decimals to compare at: `precision`, or more if the threshold has more."""
    if fail_under == int(fail_under):
        return precision
    exponent = Decimal(str(fail_under)).as_tuple().exponent
    assert isinstance(exponent, int)  # only NaN and infinities have a str exponent
    return max(precision, -exponent)


def fail_under_met(total: Numbers, fail_under: float, precision: int) -> bool:
    """Whether the total coverage reaches the `fail_under` threshold.

    The total is rounded to `precision` decimals, or to as many as the
    threshold has (80.25 is compared at two), before comparing. A threshold of
    100 is only met by complete coverage, never by rounding up.
    """
    if not 0 <= fail_under <= 100.0:
        raise ConfigError(f"fail_under={fail_under} is invalid. Must be between 0 and 100.")
    pc = total.pc_covered
    if fail_under == 100.0:
        return pc == 100.0
    return round(pc, _threshold_precision(fail_under, precision)) >= fail_under


def fail_under_message(total: Numbers, fail_under: float, precision: int) -> str:
    """Say why :func:`fail_under_met` failed, with figures shown as it compared them."""
    places = _threshold_precision(fail_under, precision)
    pc = total.pc_covered
    # Near 100, rounding would show "100" for a total that failed: clamp as displays do.
    shown = format_pct(pc, places) if fail_under == 100.0 else f"{round(pc, places):.{places}f}"
    return f"total of {shown} is less than fail-under={fail_under:.{places}f}"


@dataclass(frozen=True)
class FileResult:
    """The coverage of one source file, ready to report.

    `path` is absolute; `name` is what reports show: relative to the report's
    working directory when the file is under it, else absolute. `executed`
    and `missing` are statement lines (excluded lines are neither).
    `contexts` maps executed statements to the sorted labels of the
    processes or tests that ran them, and is empty unless asked for.

    For branch data, `executed_arcs` and `missing_arcs` hold the (from, to)
    arcs of branch lines taken and not taken, and `numbers` counts branches;
    for line data they are empty.
    """

    path: str
    name: str
    analysis: Analysis
    executed: frozenset[LineNo]
    missing: frozenset[LineNo]
    numbers: Numbers
    contexts: Mapping[LineNo, tuple[str, ...]] = field(default_factory=dict)
    executed_arcs: frozenset[Arc] = frozenset()
    missing_arcs: frozenset[Arc] = frozenset()

    @property
    def statements(self) -> frozenset[LineNo]:
        """The statement lines of the file, excluded ones left out."""
        return self.analysis.statements

    @property
    def excluded(self) -> frozenset[LineNo]:
        """The lines excluded from measurement."""
        return self.analysis.excluded


def display_name(path: str, cwd: str) -> str:
    """The name reports show for `path`: relative to `cwd` if under it, else as is."""
    prefix = os.path.join(os.path.abspath(cwd), "")
    if path.startswith(prefix):
        return path[len(prefix) :]
    return path


def _include_all(path: str) -> bool:
    return True


def build_results(
    data: CoverageData,
    *,
    analyze: Callable[[str], Analysis],
    cwd: str,
    include_file: Callable[[str], bool] = _include_all,
    unexecuted_files: Iterable[str] = (),
    ignore_errors: bool = False,
    warn: Callable[[str], None],
    with_contexts: bool = False,
    analyze_arcs: Callable[[str], ArcAnalysis] | None = None,
) -> list[FileResult]:
    """Make the result of every file to report on, sorted by display name.

    The files are those measured in `data` plus `unexecuted_files` (source
    files no process ran: all their statements are missing), less those that
    `include_file` rejects. `analyze` gives the analysis of a path. A file
    whose source is gone (:class:`NoSourceError`) or is not Python
    (:class:`NotPythonError`) raises, or with `ignore_errors` is skipped with
    a one-line `warn`. A file that does not look like Python by its name (an
    extension other than ``.py*``, as templates have) is skipped silently if it
    does not parse, as coverage.py does. `with_contexts` fills
    :attr:`FileResult.contexts`. `analyze_arcs`, given for branch data, gives
    the arc analysis of a path: the results then count branches.
    """
    measured = [path for path in data.measured_files() if include_file(path)]
    never_run = _new_paths(unexecuted_files, set(measured), include_file)
    results: list[FileResult] = []
    to_report = [(path, True) for path in measured] + [(path, False) for path in never_run]
    for path, ran in to_report:
        try:
            analysis = analyze(path)
        except (NoSourceError, NotPythonError) as exc:
            _skip_or_raise(path, exc, ignore_errors, warn)
            continue
        raw = data.lines(path) if ran else set()
        contexts = _contexts(data, path, analysis) if with_contexts and ran else {}
        result = _file_result(path, display_name(path, cwd), analysis, raw, contexts)
        if analyze_arcs is not None:
            raw_arcs = data.arcs(path) if ran else set()
            result = _with_branches(result, analyze_arcs(path), raw_arcs)
        results.append(result)
    results.sort(key=lambda result: result.name)
    return results


def _new_paths(
    paths: Iterable[str], known: set[str], include_file: Callable[[str], bool]
) -> list[str]:
    """`paths` that are not `known` and are included, each once, in order."""
    new: list[str] = []
    for path in paths:
        if path not in known and include_file(path):
            known.add(path)
            new.append(path)
    return new


def _skip_or_raise(
    path: str,
    exc: NoSourceError | NotPythonError,
    ignore_errors: bool,
    warn: Callable[[str], None],
) -> None:
    """Re-raise the analysis error of `path` unless it is to be skipped."""
    if isinstance(exc, NotPythonError) and not _should_be_python(path):
        return
    if not ignore_errors:
        raise exc
    reason = " ".join(str(exc).split())
    warn(f"Couldn't report on '{path}': {reason}")


def _should_be_python(path: str) -> bool:
    """Whether a file named `path` should be Python: ``*.py*`` or no extension."""
    ext = os.path.splitext(path)[1]
    return not ext or ext.startswith(".py")


def _file_result(
    path: str,
    name: str,
    analysis: Analysis,
    raw_lines: Iterable[int],
    contexts: Mapping[LineNo, tuple[str, ...]],
) -> FileResult:
    """Join the analysis of one file with the raw lines its processes ran."""
    raw = frozenset(raw_lines)
    executed = analysis.executed(raw)
    missing = analysis.missing(raw)
    numbers = Numbers(
        n_files=1,
        n_statements=len(analysis.statements),
        n_excluded=len(analysis.excluded),
        n_missing=len(missing),
    )
    return FileResult(path, name, analysis, executed, missing, numbers, contexts)


def _with_branches(
    result: FileResult, arc_analysis: ArcAnalysis, raw_arcs: Iterable[Arc]
) -> FileResult:
    """`result` with its branch arcs and counts, judged as coverage.py judges them."""
    from mpcov.arcs import normalize_executed

    executed = normalize_executed(raw_arcs, arc_analysis)
    totals = arc_analysis.totals(executed, result.missing)
    numbers = replace(
        result.numbers,
        n_branches=totals.n_branches,
        n_partial_branches=totals.n_partial_branches,
        n_missing_branches=totals.n_missing_branches,
    )
    return replace(
        result,
        numbers=numbers,
        executed_arcs=frozenset(arc_analysis.executed_branch_arcs(executed)),
        missing_arcs=frozenset(arc_analysis.missing_arcs(executed)),
    )


def _contexts(data: CoverageData, path: str, analysis: Analysis) -> dict[LineNo, tuple[str, ...]]:
    """Labels per executed statement: the raw lines' labels, moved to their statements."""
    labels: dict[LineNo, set[str]] = {}
    for raw, raw_labels in data.line_contexts(path).items():
        for line in analysis.executed((raw,)):
            labels.setdefault(line, set()).update(raw_labels)
    return {line: tuple(sorted(labels[line])) for line in sorted(labels)}
