"""Tests of the summary table (``mpcov report``) and its shared helpers.

The expected tables are coverage.py 7.17's ``coverage report`` output for the
same files and numbers, copied verbatim: the layout must match it byte for byte.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from textwrap import dedent
from typing import Any

import pytest
from fakes import FakeAnalysis

from mpcov.errors import ConfigError, NoDataError
from mpcov.report import format_lines, line_ranges, safe_name
from mpcov.report.text import escape_markdown, parse_sort, render_table
from mpcov.results import FileResult, Numbers


def result(
    name: str,
    statements: Iterable[int],
    executed: Iterable[int] = (),
    excluded: Iterable[int] = (),
    *,
    branches: tuple[int, int, int] = (0, 0, 0),
    missing_arcs: Iterable[tuple[int, int]] = (),
) -> FileResult:
    """A file's result; `branches` is (branches, partial, missing branches)."""
    analysis = FakeAnalysis("/proj/" + name, frozenset(statements), frozenset(excluded))
    ran = analysis.executed(executed)
    missing = analysis.missing(executed)
    numbers = Numbers(1, len(analysis.statements), len(analysis.excluded), len(missing), *branches)
    return FileResult(
        analysis.path,
        name,
        analysis,  # type: ignore[arg-type]
        ran,
        missing,
        numbers,
        missing_arcs=frozenset(missing_arcs),
    )


def gold_results() -> list[FileResult]:
    """The files of the sample project the expected tables come from."""
    return [
        result("main.py", range(1, 8), range(1, 6)),
        result("pkg/__init__.py", ()),
        result("pkg/full.py", range(1, 5), range(1, 5)),
        result("pkg/my_mod.py", [1, 2, 3, 5, 8, 10, 15], [1, 2, 3, 8], [13, 14]),
        result("pkg/zero_cov.py", [1, 2, 3]),
    ]


def gold_branch_results() -> list[FileResult]:
    """The same project measured with branch coverage."""
    return [
        result("main.py", range(1, 8), range(1, 6), branches=(2, 1, 1)),
        result("pkg/__init__.py", ()),
        result("pkg/full.py", range(1, 5), range(1, 5)),
        result(
            "pkg/my_mod.py",
            [1, 2, 3, 5, 8, 10, 15],
            [1, 2, 3, 8],
            [13, 14],
            branches=(2, 1, 1),
            missing_arcs=[(2, 5)],
        ),
        result("pkg/zero_cov.py", [1, 2, 3]),
    ]


def arcs_result() -> FileResult:
    """A fully run file with three branch arcs never taken."""
    return result(
        "arcs.py",
        [1, 2, 3, 4, 6, 7, 8, 9, 11, 12],
        [1, 2, 3, 4, 6, 7, 8, 9, 11, 12],
        branches=(6, 3, 3),
        missing_arcs=[(2, 4), (7, -6), (8, 7)],
    )


def table(results: Iterable[FileResult] | None = None, **options: Any) -> str:
    out = io.StringIO()
    render_table(gold_results() if results is None else results, out, **options)
    return out.getvalue()


def text(s: str) -> str:
    return dedent(s).lstrip("\n")


# --- Goldens: coverage.py's own output for the same numbers ---------------------------------


def test_default_table() -> None:
    assert table() == text("""
        Name              Stmts   Miss  Cover
        -------------------------------------
        main.py               7      2    71%
        pkg/__init__.py       0      0   100%
        pkg/full.py           4      0   100%
        pkg/my_mod.py         7      3    57%
        pkg/zero_cov.py       3      3     0%
        -------------------------------------
        TOTAL                21      8    62%
        """)


def test_show_missing_joins_ranges_across_non_statements() -> None:
    assert table(show_missing=True) == text("""
        Name              Stmts   Miss  Cover   Missing
        -----------------------------------------------
        main.py               7      2    71%   6-7
        pkg/__init__.py       0      0   100%
        pkg/full.py           4      0   100%
        pkg/my_mod.py         7      3    57%   5, 10-15
        pkg/zero_cov.py       3      3     0%   1-3
        -----------------------------------------------
        TOTAL                21      8    62%
        """)


def test_markdown_escapes_names_and_bolds_total() -> None:
    assert table(show_missing=True, fmt="markdown") == text(r"""
        | Name                |    Stmts |     Miss |   Cover |   Missing |
        |-------------------- | -------: | -------: | ------: | --------: |
        | main.py             |        7 |        2 |     71% |       6-7 |
        | pkg/\_\_init\_\_.py |        0 |        0 |    100% |           |
        | pkg/full.py         |        4 |        0 |    100% |           |
        | pkg/my\_mod.py      |        7 |        3 |     57% |  5, 10-15 |
        | pkg/zero\_cov.py    |        3 |        3 |      0% |       1-3 |
        | **TOTAL**           |   **21** |    **8** | **62%** |           |
        """)


def test_total_format_prints_only_the_percentage() -> None:
    assert table(fmt="total") == "62\n"
    assert table(fmt="total", precision=1) == "61.9\n"


def test_skip_covered_counts_empty_files_as_covered() -> None:
    # An empty file is 100% covered: skip_covered takes it before skip_empty can.
    assert table(skip_covered=True, skip_empty=True, show_missing=True) == text("""
        Name              Stmts   Miss  Cover   Missing
        -----------------------------------------------
        main.py               7      2    71%   6-7
        pkg/my_mod.py         7      3    57%   5, 10-15
        pkg/zero_cov.py       3      3     0%   1-3
        -----------------------------------------------
        TOTAL                21      8    62%

        2 files skipped due to complete coverage.
        """)


def test_skip_empty() -> None:
    assert table(skip_empty=True) == text("""
        Name              Stmts   Miss  Cover
        -------------------------------------
        main.py               7      2    71%
        pkg/full.py           4      0   100%
        pkg/my_mod.py         7      3    57%
        pkg/zero_cov.py       3      3     0%
        -------------------------------------
        TOTAL                21      8    62%

        1 empty file skipped.
        """)


def test_skip_lines_in_markdown() -> None:
    assert table(skip_covered=True, fmt="markdown") == text(r"""
        | Name             |    Stmts |     Miss |   Cover |
        |----------------- | -------: | -------: | ------: |
        | main.py          |        7 |        2 |     71% |
        | pkg/my\_mod.py   |        7 |        3 |     57% |
        | pkg/zero\_cov.py |        3 |        3 |      0% |
        | **TOTAL**        |   **21** |    **8** | **62%** |

        2 files skipped due to complete coverage.
        """)


def test_sort_descending_cover_breaks_ties_by_name_descending() -> None:
    assert table(sort="-cover") == text("""
        Name              Stmts   Miss  Cover
        -------------------------------------
        pkg/full.py           4      0   100%
        pkg/__init__.py       0      0   100%
        main.py               7      2    71%
        pkg/my_mod.py         7      3    57%
        pkg/zero_cov.py       3      3     0%
        -------------------------------------
        TOTAL                21      8    62%
        """)


def test_precision_widens_cover_column() -> None:
    assert table(precision=2, sort="miss") == text("""
        Name              Stmts   Miss   Cover
        --------------------------------------
        pkg/__init__.py       0      0 100.00%
        pkg/full.py           4      0 100.00%
        main.py               7      2  71.43%
        pkg/my_mod.py         7      3  57.14%
        pkg/zero_cov.py       3      3   0.00%
        --------------------------------------
        TOTAL                21      8  61.90%
        """)


def test_markdown_with_precision_and_sort() -> None:
    assert table(precision=3, sort="-Stmts", show_missing=True, fmt="markdown") == text(r"""
        | Name                |    Stmts |     Miss |       Cover |   Missing |
        |-------------------- | -------: | -------: | ----------: | --------: |
        | pkg/my\_mod.py      |        7 |        3 |     57.143% |  5, 10-15 |
        | main.py             |        7 |        2 |     71.429% |       6-7 |
        | pkg/full.py         |        4 |        0 |    100.000% |           |
        | pkg/zero\_cov.py    |        3 |        3 |      0.000% |       1-3 |
        | pkg/\_\_init\_\_.py |        0 |        0 |    100.000% |           |
        | **TOTAL**           |   **21** |    **8** | **61.905%** |           |
        """)


def test_branch_columns() -> None:
    assert table(gold_branch_results(), branch=True, show_missing=True) == text("""
        Name              Stmts   Miss Branch BrPart  Cover   Missing
        -------------------------------------------------------------
        main.py               7      2      2      1    67%   6-7
        pkg/__init__.py       0      0      0      0   100%
        pkg/full.py           4      0      0      0   100%
        pkg/my_mod.py         7      3      2      1    56%   5, 10-15
        pkg/zero_cov.py       3      3      0      0     0%   1-3
        -------------------------------------------------------------
        TOTAL                21      8      4      2    60%
        """)


def test_branch_columns_in_markdown() -> None:
    assert table(gold_branch_results(), branch=True, fmt="markdown") == text(r"""
        | Name                |    Stmts |     Miss |   Branch |   BrPart |   Cover |
        |-------------------- | -------: | -------: | -------: | -------: | ------: |
        | main.py             |        7 |        2 |        2 |        1 |     67% |
        | pkg/\_\_init\_\_.py |        0 |        0 |        0 |        0 |    100% |
        | pkg/full.py         |        4 |        0 |        0 |        0 |    100% |
        | pkg/my\_mod.py      |        7 |        3 |        2 |        1 |     56% |
        | pkg/zero\_cov.py    |        3 |        3 |        0 |        0 |      0% |
        | **TOTAL**           |   **21** |    **8** |    **4** |    **2** | **60%** |
        """)


def test_sort_by_branch_columns() -> None:
    assert table(gold_branch_results(), branch=True, sort="-brpart") == text("""
        Name              Stmts   Miss Branch BrPart  Cover
        ---------------------------------------------------
        pkg/my_mod.py         7      3      2      1    56%
        main.py               7      2      2      1    67%
        pkg/zero_cov.py       3      3      0      0     0%
        pkg/full.py           4      0      0      0   100%
        pkg/__init__.py       0      0      0      0   100%
        ---------------------------------------------------
        TOTAL                21      8      4      2    60%
        """)
    assert table(gold_branch_results(), branch=True, sort="branch", precision=1) == text("""
        Name              Stmts   Miss Branch BrPart  Cover
        ---------------------------------------------------
        pkg/__init__.py       0      0      0      0 100.0%
        pkg/full.py           4      0      0      0 100.0%
        pkg/zero_cov.py       3      3      0      0   0.0%
        main.py               7      2      2      1  66.7%
        pkg/my_mod.py         7      3      2      1  55.6%
        ---------------------------------------------------
        TOTAL                21      8      4      2  60.0%
        """)


def test_missing_branch_arcs_are_shown() -> None:
    assert table([arcs_result()], branch=True, show_missing=True) == text("""
        Name      Stmts   Miss Branch BrPart  Cover   Missing
        -----------------------------------------------------
        arcs.py      10      0      6      3    81%   2->4, 7->exit, 8->7
        -----------------------------------------------------
        TOTAL        10      0      6      3    81%
        """)


def test_missing_branch_arcs_in_markdown_overflow_their_column() -> None:
    # coverage.py pads the Missing cell to 10 characters; longer text runs into the bar.
    assert table([arcs_result()], branch=True, show_missing=True, fmt="markdown") == text(r"""
        | Name      |    Stmts |     Miss |   Branch |   BrPart |   Cover |   Missing |
        |---------- | -------: | -------: | -------: | -------: | ------: | --------: |
        | arcs.py   |       10 |        0 |        6 |        3 |     81% |2-\>4, 7-\>exit, 8-\>7 |
        | **TOTAL** |   **10** |    **0** |    **6** |    **3** | **81%** |           |
        """)


def test_partial_branches_keep_a_file_from_being_skipped_as_covered() -> None:
    assert "arcs.py" in table([arcs_result()], branch=True, skip_covered=True)


# --- Layout -----------------------------------------------------------------------------------


def human_results() -> list[FileResult]:
    return [result(f"mod{n}.py", [1], [1]) for n in (2, 10, 9)] + [result("run.py", [1], [1])]


def test_name_sort_compares_numbers_in_names_as_numbers() -> None:
    assert table(human_results()) == text("""
        Name       Stmts   Miss  Cover
        ------------------------------
        mod2.py        1      0   100%
        mod9.py        1      0   100%
        mod10.py       1      0   100%
        run.py         1      0   100%
        ------------------------------
        TOTAL          4      0   100%
        """)
    names = [line.split()[0] for line in table(human_results(), sort="-name").splitlines()[2:6]]
    assert names == ["run.py", "mod10.py", "mod9.py", "mod2.py"]


def test_every_file_skipped_still_prints_header_and_total() -> None:
    assert table(human_results(), skip_covered=True) == text("""
        Name    Stmts   Miss  Cover
        ---------------------------
        TOTAL       4      0   100%

        4 files skipped due to complete coverage.
        """)
    assert table(human_results(), skip_covered=True, fmt="markdown") == text("""
        | Name      |    Stmts |     Miss |    Cover |
        |---------- | -------: | -------: | -------: |
        | **TOTAL** |    **4** |    **0** | **100%** |

        4 files skipped due to complete coverage.
        """)


def test_single_file_still_has_a_total_row() -> None:
    lines = table([result("a.py", [1, 2], [1])]).splitlines()
    assert lines == [
        "Name    Stmts   Miss  Cover",
        "---------------------------",
        "a.py        2      1    50%",
        "---------------------------",
        "TOTAL       2      1    50%",
    ]


def test_name_column_widens_to_the_longest_name() -> None:
    long_name = "src/package/deeply/nested/module_name.py"
    lines = table([result(long_name, [1], [1]), result("b.py", [1])]).splitlines()
    name_width = len(long_name) + 1
    assert lines[0] == "Name".ljust(name_width) + "  Stmts   Miss  Cover"
    assert lines[2] == "b.py".ljust(name_width) + "      1      1     0%"
    assert lines[3] == long_name.ljust(name_width) + "      1      0   100%"
    assert {len(line) for line in lines[:5]} == {name_width + 7 + 7 + 7}


def test_control_characters_in_names_are_neutralized() -> None:
    out = table([result("evil\x1b[31m.py", [1], [1])])
    assert "\x1b" not in out
    assert "evil?[31m.py" in out


def test_unknown_format_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="Unknown report format choice: 'xyz'"):
        table(fmt="xyz")


@pytest.mark.parametrize("sort", ["foo", "-", "brpart", "branch"])
def test_invalid_sort_is_a_config_error(sort: str) -> None:
    with pytest.raises(ConfigError, match=f"Invalid sorting option: '{sort}'"):
        table(sort=sort)


def test_no_results_is_no_data() -> None:
    with pytest.raises(NoDataError, match=r"^No data to report\.$"):
        table([])
    with pytest.raises(NoDataError):
        table([], fmt="total")


def test_render_table_returns_totals_including_skipped_files() -> None:
    out = io.StringIO()
    total = render_table(gold_results(), out, skip_covered=True)
    assert total == Numbers(5, 21, 2, 8)


def test_results_may_be_any_iterable() -> None:
    assert table(iter(gold_results())) == table()


# --- Sort options -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (None, ("name", False)),
        ("name", ("name", False)),
        ("+Name", ("name", False)),
        ("-COVER", ("cover", True)),
        ("stmts", ("stmts", False)),
        ("-miss", ("miss", True)),
    ],
)
def test_parse_sort(option: str | None, expected: tuple[str, bool]) -> None:
    assert parse_sort(option, branch=False) == expected


def test_parse_sort_branch_columns_need_branch() -> None:
    assert parse_sort("-brpart", branch=True) == ("brpart", True)
    assert parse_sort("branch", branch=True) == ("branch", False)
    with pytest.raises(ConfigError) as excinfo:
        parse_sort("brpart", branch=False)
    assert excinfo.value.hint is not None
    assert "name, stmts, miss, cover" in excinfo.value.hint


def test_sort_by_stmts_ties_broken_by_name() -> None:
    rows = table([result("b.py", [1]), result("a.py", [1]), result("c.py", [1, 2])], sort="stmts")
    assert [line.split()[0] for line in rows.splitlines()[2:5]] == ["a.py", "b.py", "c.py"]


# --- Helpers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statements", "lines", "expected"),
    [
        ([], [], ""),
        ([1, 2, 3], [], ""),
        ([1, 2, 3], [2], "2"),
        ([1, 2, 3, 4, 5, 10, 11, 12, 13, 14], [1, 2, 5, 10, 11, 13, 14], "1-2, 5-11, 13-14"),
        ([12, 14, 15, 20], [12, 14, 20], "12-14, 20"),
        ([12, 13, 14], [12, 14], "12, 14"),
        ([3, 1, 2], {2, 3, 1}, "1-3"),
        ([1, 2], [2, 99], "2"),
    ],
)
def test_format_lines(statements: list[int], lines: Iterable[int], expected: str) -> None:
    assert format_lines(statements, lines) == expected


def test_line_ranges() -> None:
    assert line_ranges([1, 2, 4, 6, 7, 9], [2, 4, 7, 9]) == [(2, 4), (7, 9)]


def test_format_lines_with_arcs() -> None:
    statements = [1, 2, 3, 4, 6, 7, 8, 9]
    assert format_lines(statements, [], [(2, 4), (7, -6), (8, 7)]) == "2->4, 7->exit, 8->7"
    # An arc from or to a missing line says nothing more than the line: left out.
    assert format_lines(statements, [3, 4], [(2, 3), (2, 6), (4, 6)]) == "2->6, 3-4"
    assert format_lines(statements, [9], [(1, 2)]) == "1->2, 9"


def test_escape_markdown() -> None:
    assert escape_markdown("a_b*c|d.e,f/g-h") == r"a\_b\*c\|d.e,f/g-h"
    assert escape_markdown("12->15") == r"12-\>15"


def test_safe_name() -> None:
    assert safe_name("plain/name.py") == "plain/name.py"
    assert safe_name("a\nb\x07c.py") == "a?b?c.py"
