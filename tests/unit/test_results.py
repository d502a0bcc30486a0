"""Tests of mpcov.results: numbers, percentages, fail-under, and building file results."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import FrozenInstanceError

import pytest
from fakes import FakeAnalysis

from mpcov.errors import ConfigError, NoSourceError, NotPythonError
from mpcov.results import (
    CoverageData,
    FileResult,
    Numbers,
    build_results,
    display_name,
    fail_under_message,
    fail_under_met,
    format_pct,
)

# --- Fakes ------------------------------------------------------------------------------------


class FakeData:
    """Combined data: raw lines and their labels per file."""

    def __init__(
        self,
        lines: dict[str, set[int]],
        contexts: dict[str, dict[int, list[str]]] | None = None,
        arcs: dict[str, set[tuple[int, int]]] | None = None,
    ) -> None:
        self._lines = lines
        self._contexts = contexts or {}
        self._arcs = arcs
        self.context_queries: list[str] = []

    def measured_files(self) -> list[str]:
        return list(self._lines)

    def lines(self, path: str) -> set[int]:
        return self._lines[path]

    def has_arcs(self) -> bool:
        return self._arcs is not None

    def arcs(self, path: str) -> set[tuple[int, int]]:
        return (self._arcs or {}).get(path, set())

    def line_contexts(self, path: str) -> dict[int, list[str]]:
        self.context_queries.append(path)
        return self._contexts.get(path, {})


class Sources:
    """`analyze` for build_results: the given analyses by path, or the given errors."""

    def __init__(self, *analyses: FakeAnalysis, errors: dict[str, Exception] | None = None) -> None:
        self.analyses = {a.path: a for a in analyses}
        self.errors = errors or {}

    def __call__(self, path: str) -> FakeAnalysis:
        if path in self.errors:
            raise self.errors[path]
        return self.analyses[path]


def analysis(
    path: str,
    statements: Iterable[int],
    excluded: Iterable[int] = (),
    multiline: Mapping[int, int] | None = None,
) -> FakeAnalysis:
    return FakeAnalysis(path, frozenset(statements), frozenset(excluded), dict(multiline or {}))


def build(data: FakeData, analyze: object, **options: object) -> list[FileResult]:
    warnings = options.pop("warnings", [])
    assert isinstance(warnings, list)
    return build_results(
        data,
        analyze=analyze,  # type: ignore[arg-type]
        cwd="/proj",
        warn=warnings.append,
        **options,  # type: ignore[arg-type]
    )


# --- Numbers ----------------------------------------------------------------------------------


def test_numbers_add_up_field_by_field() -> None:
    a = Numbers(1, 10, 2, 3, 4, 1, 2)
    b = Numbers(2, 5, 0, 1, 6, 2, 3)
    assert a + b == Numbers(3, 15, 2, 4, 10, 3, 5)


def test_numbers_sum_with_and_without_a_start() -> None:
    many = [Numbers(1, 10, 0, 2), Numbers(1, 5, 1, 5), Numbers(1, 0, 0, 0)]
    assert sum(many, Numbers()) == Numbers(3, 15, 1, 7)
    assert sum(many) == Numbers(3, 15, 1, 7)
    assert sum([], Numbers()) == Numbers()


def test_numbers_refuse_to_add_anything_else() -> None:
    with pytest.raises(TypeError):
        Numbers() + 1  # type: ignore[operator]
    with pytest.raises(TypeError):
        1 + Numbers()


def test_numbers_are_frozen() -> None:
    with pytest.raises(FrozenInstanceError):
        Numbers().n_files = 2  # type: ignore[misc]


def test_numbers_derived_counts() -> None:
    nums = Numbers(n_files=1, n_statements=10, n_missing=3, n_branches=6, n_missing_branches=2)
    assert nums.n_executed == 7
    assert nums.n_executed_branches == 4
    assert nums.ratio_covered == (11, 16)
    assert nums.pc_covered == 68.75
    assert nums.pc_statements == 70.0
    assert nums.pc_branches == pytest.approx(66.666666)


def test_percentages_are_computed_as_coverage_py_does() -> None:
    # (100.0 * n) / d, not n / d * 100: the floats in JSON reports must be the same bits.
    assert Numbers(1, 7, 0, 3).pc_covered == 57.142857142857146
    assert Numbers(1, 21, 0, 8).pc_covered == 61.904761904761905
    assert Numbers(1, 7, 0, 3, 2, 1, 1).pc_covered == 55.55555555555556


def test_nothing_to_cover_is_fully_covered() -> None:
    assert Numbers().pc_covered == 100.0
    assert Numbers().pc_statements == 100.0
    assert Numbers().pc_branches == 100.0
    assert Numbers(n_statements=2, n_missing=2).pc_covered == 0.0


# --- Displaying percentages -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pc", "precision", "shown"),
    [
        (0.0, 0, "0"),
        (100.0, 0, "100"),
        (99.99, 0, "99"),
        (99.5, 0, "99"),
        (99.4, 0, "99"),
        (0.01, 0, "1"),
        (0.5, 0, "1"),
        (0.9, 0, "1"),
        (62.5, 0, "62"),  # round half to even, as round() does
        (63.5, 0, "64"),
        (61.904761904761905, 0, "62"),
        (61.904761904761905, 2, "61.90"),
        (99.999, 2, "99.99"),
        (99.991, 2, "99.99"),
        (0.001, 2, "0.01"),
        (100.0, 2, "100.00"),
        (50.0, 3, "50.000"),
    ],
)
def test_format_pct_never_rounds_to_0_or_100(pc: float, precision: int, shown: str) -> None:
    assert format_pct(pc, precision) == shown


def test_format_pct_rejects_negative_precision() -> None:
    with pytest.raises(ConfigError, match="precision=-1 is invalid"):
        format_pct(50.0, -1)


# --- fail-under -------------------------------------------------------------------------------


def total(pc_numerator: int, denominator: int = 100_000) -> Numbers:
    """Numbers covering pc_numerator/denominator."""
    return Numbers(1, denominator, 0, denominator - pc_numerator)


@pytest.mark.parametrize(
    ("covered", "fail_under", "precision", "met"),
    [
        (80_000, 80, 0, True),
        (79_600, 80, 0, True),  # 79.6 rounds to 80
        (79_400, 80, 0, False),
        (79_600, 80, 1, False),  # 79.6 < 80 at one decimal
        (80_240, 80.25, 0, False),  # the threshold's decimals count: 80.24 < 80.25
        (80_250, 80.25, 0, True),
        (80_245, 80.25, 0, True),  # 80.245 rounds (half to even, in binary) to 80.25
        (99_999, 100, 0, False),  # 100 is only met by 100
        (99_999, 100, 2, False),
        (100_000, 100, 0, True),
        (0, 0, 0, True),
        (50_000, 0, 0, True),
    ],
)
def test_fail_under_met(covered: int, fail_under: float, precision: int, met: bool) -> None:
    assert fail_under_met(total(covered), fail_under, precision) is met


def test_fail_under_met_with_nothing_to_cover() -> None:
    assert fail_under_met(Numbers(), 100, 0)


@pytest.mark.parametrize("fail_under", [-1, 100.01, 200])
def test_fail_under_out_of_range(fail_under: float) -> None:
    with pytest.raises(ConfigError, match="Must be between 0 and 100"):
        fail_under_met(total(1), fail_under, 0)


def test_fail_under_message() -> None:
    assert fail_under_message(total(79_400), 80, 0) == "total of 79 is less than fail-under=80"
    assert (
        fail_under_message(total(80_240), 80.25, 0)
        == "total of 80.24 is less than fail-under=80.25"
    )
    assert fail_under_message(total(99_999), 100, 0) == "total of 99 is less than fail-under=100"
    assert (
        fail_under_message(total(99_999), 100, 1) == "total of 99.9 is less than fail-under=100.0"
    )


# --- Names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "cwd", "name"),
    [
        ("/proj/a.py", "/proj", "a.py"),
        ("/proj/pkg/a.py", "/proj/", "pkg/a.py"),
        ("/project2/a.py", "/proj", "/project2/a.py"),
        ("/elsewhere/a.py", "/proj", "/elsewhere/a.py"),
        ("/a.py", "/", "a.py"),
    ],
)
def test_display_name(path: str, cwd: str, name: str) -> None:
    assert display_name(path, cwd) == name


# --- build_results ----------------------------------------------------------------------------


def test_fake_data_satisfies_the_protocol() -> None:
    assert isinstance(FakeData({}), CoverageData)


def test_one_result_per_file_sorted_by_name() -> None:
    data = FakeData(
        {
            "/proj/pkg/b.py": {1, 2},
            "/outside/z.py": {1},
            "/proj/a.py": {1, 3},
        }
    )
    analyze = Sources(
        analysis("/proj/pkg/b.py", [1, 2, 3], excluded=[5]),
        analysis("/proj/a.py", [1, 2, 3, 4]),
        analysis("/outside/z.py", [1]),
    )
    results = build(data, analyze)
    assert [r.name for r in results] == ["/outside/z.py", "a.py", "pkg/b.py"]
    a = results[1]
    assert a.path == "/proj/a.py"
    assert a.executed == {1, 3}
    assert a.missing == {2, 4}
    assert a.numbers == Numbers(n_files=1, n_statements=4, n_excluded=0, n_missing=2)
    assert a.statements == {1, 2, 3, 4}
    assert a.contexts == {}
    assert a.executed_arcs == frozenset()
    assert a.missing_arcs == frozenset()
    assert a.numbers.n_branches == 0
    assert results[2].numbers == Numbers(1, 3, 1, 1)
    assert results[2].excluded == {5}


def test_raw_lines_are_translated_by_the_analysis() -> None:
    data = FakeData({"/proj/m.py": {1, 4, 7}})
    analyze = Sources(analysis("/proj/m.py", [1, 3, 6], multiline={4: 3, 5: 3, 7: 6}))
    (result,) = build(data, analyze)
    assert result.executed == {1, 3, 6}
    assert result.missing == frozenset()


def test_include_file_filters_measured_and_unexecuted_files() -> None:
    data = FakeData({"/proj/a.py": {1}, "/proj/test_a.py": {1}})
    analyze = Sources(
        analysis("/proj/a.py", [1]),
        analysis("/proj/b.py", [1, 2]),
        analysis("/proj/test_a.py", [1]),
        analysis("/proj/test_b.py", [1]),
    )
    results = build(
        data,
        analyze,
        include_file=lambda path: "test_" not in path,
        unexecuted_files=["/proj/b.py", "/proj/test_b.py"],
    )
    assert [r.name for r in results] == ["a.py", "b.py"]


def test_unexecuted_files_are_all_missing_and_listed_once() -> None:
    data = FakeData({"/proj/a.py": {1}})
    analyze = Sources(
        analysis("/proj/a.py", [1, 2]),
        analysis("/proj/b.py", [1, 2, 3], excluded=[4]),
    )
    results = build(
        data,
        analyze,
        unexecuted_files=["/proj/b.py", "/proj/a.py", "/proj/b.py"],
        with_contexts=True,
    )
    assert [r.name for r in results] == ["a.py", "b.py"]
    assert results[0].missing == {2}  # measured data wins over "never run"
    b = results[1]
    assert b.executed == frozenset()
    assert b.missing == {1, 2, 3}
    assert b.numbers == Numbers(1, 3, 1, 3)
    assert b.contexts == {}
    assert data.context_queries == ["/proj/a.py"]


def test_files_without_statements_are_kept() -> None:
    data = FakeData({"/proj/__init__.py": set()})
    analyze = Sources(analysis("/proj/__init__.py", []))
    (result,) = build(data, analyze)
    assert result.numbers == Numbers(n_files=1)
    assert result.numbers.pc_covered == 100.0


@pytest.mark.parametrize(
    "error",
    [
        NoSourceError("No source for code: '/proj/gone.py'."),
        NotPythonError("Couldn't parse '/proj/gone.py' as Python"),
    ],
)
def test_analysis_errors_raise(error: Exception) -> None:
    data = FakeData({"/proj/gone.py": {1}, "/proj/a.py": {1}})
    analyze = Sources(analysis("/proj/a.py", [1]), errors={"/proj/gone.py": error})
    with pytest.raises(type(error)) as excinfo:
        build(data, analyze)
    assert excinfo.value is error


def test_analysis_errors_warn_and_skip_with_ignore_errors() -> None:
    data = FakeData({"/proj/gone.py": {1}, "/proj/bad.py": {1}, "/proj/a.py": {1}})
    analyze = Sources(
        analysis("/proj/a.py", [1]),
        errors={
            "/proj/gone.py": NoSourceError("No source for code: '/proj/gone.py'."),
            "/proj/bad.py": NotPythonError("Couldn't parse:\n  line 3\nbad syntax"),
        },
    )
    warnings: list[str] = []
    results = build(data, analyze, ignore_errors=True, warnings=warnings)
    assert [r.name for r in results] == ["a.py"]
    assert warnings == [
        "Couldn't report on '/proj/gone.py': No source for code: '/proj/gone.py'.",
        "Couldn't report on '/proj/bad.py': Couldn't parse: line 3 bad syntax",
    ]


@pytest.mark.parametrize("path", ["/proj/page.html", "/proj/template.j2"])
def test_files_not_named_like_python_that_do_not_parse_are_skipped_silently(path: str) -> None:
    data = FakeData({path: {1}})
    analyze = Sources(errors={path: NotPythonError(f"Couldn't parse '{path}' as Python")})
    warnings: list[str] = []
    assert build(data, analyze, warnings=warnings) == []
    assert warnings == []


@pytest.mark.parametrize("path", ["/proj/script", "/proj/mod.pyw"])
def test_files_named_like_python_that_do_not_parse_raise(path: str) -> None:
    data = FakeData({path: {1}})
    analyze = Sources(errors={path: NotPythonError("no")})
    with pytest.raises(NotPythonError):
        build(data, analyze)


def test_missing_source_of_a_non_python_name_still_raises() -> None:
    data = FakeData({"/proj/page.html": {1}})
    analyze = Sources(errors={"/proj/page.html": NoSourceError("gone")})
    with pytest.raises(NoSourceError):
        build(data, analyze)


def test_contexts_are_moved_to_statements_merged_and_sorted() -> None:
    data = FakeData(
        {"/proj/m.py": {1, 2, 4, 9}},
        contexts={
            "/proj/m.py": {
                1: ["test_b", "test_a"],
                2: ["pid 7"],
                4: ["test_c", "pid 7"],  # a continuation line of statement 2
                9: ["test_a"],  # not a statement: dropped
            }
        },
    )
    analyze = Sources(analysis("/proj/m.py", [1, 2, 6], multiline={3: 2, 4: 2}))
    (result,) = build(data, analyze, with_contexts=True)
    assert result.contexts == {1: ("test_a", "test_b"), 2: ("pid 7", "test_c")}
    assert list(result.contexts) == [1, 2]


def test_contexts_are_not_queried_unless_asked() -> None:
    data = FakeData({"/proj/m.py": {1}}, contexts={"/proj/m.py": {1: ["x"]}})
    (result,) = build(data, Sources(analysis("/proj/m.py", [1])))
    assert result.contexts == {}
    assert data.context_queries == []


BRANCHY = """\
def f(x):
    if x:
        return 1
    for i in range(x):
        pass
    return 2

f(0)
"""


def test_branch_data_fills_branch_arcs_and_numbers() -> None:
    """With `analyze_arcs`, raw arcs are judged as coverage.py judges them."""
    from mpcov.analysis import analyze_source
    from mpcov.arcs import analyze_arcs

    path = "/proj/b.py"
    raw_arcs = {(-1, 1), (1, 8), (8, -1), (-1, 2), (2, 4), (4, 6), (6, -1)}
    data = FakeData({path: {1, 2, 4, 6, 8}}, arcs={path: raw_arcs})
    never = "/proj/never.py"
    (result, unrun) = build(
        data,
        lambda p: analyze_source(BRANCHY, p),
        unexecuted_files=[never],
        analyze_arcs=lambda p: analyze_arcs(BRANCHY, p, exclude=(), partial=()),
    )
    assert result.executed_arcs == {(2, 4), (4, 6)}
    assert result.missing_arcs == {(2, 3), (4, 5)}
    assert result.numbers == Numbers(1, 7, 0, 2, n_branches=4, n_partial_branches=2,
                                     n_missing_branches=2)
    assert unrun.executed_arcs == frozenset()
    assert unrun.numbers.n_missing_branches == 4
    assert unrun.numbers.n_partial_branches == 0
