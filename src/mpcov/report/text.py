"""The summary table of ``mpcov report``: plain text, markdown, or just the total.

The layout is coverage.py's ``coverage report``, character for character, so
that anything parsing its output (CI badges, review bots, people's eyes) reads
ours the same::

    Name              Stmts   Miss  Cover   Missing
    -----------------------------------------------
    main.py               7      2    71%   6-7
    pkg/my_mod.py         7      3    57%   5, 10-15
    -----------------------------------------------
    TOTAL                14      5    64%
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import IO

from mpcov.errors import ConfigError, NoDataError
from mpcov.report import format_lines, safe_name
from mpcov.results import FileResult, Numbers, format_pct

FORMATS = ("text", "markdown", "total")
"""The values `fmt` of :func:`render_table` accepts."""

SORT_KEYS = ("name", "stmts", "miss", "branch", "brpart", "cover")
"""The columns a table can be sorted by (``-`` in front sorts descending)."""

# Every punctuation character means something in a markdown table but these.
_MARKDOWN_ESCAPES = str.maketrans({ch: f"\\{ch}" for ch in string.punctuation if ch not in ".,/-"})


@dataclass(frozen=True)
class _Row:
    """One line of the table: its cells by column, and its numbers by sort key."""

    cells: dict[str, str]
    sort_values: dict[str, float | int]


def render_table(
    results: Iterable[FileResult],
    out: IO[str],
    *,
    fmt: str = "text",
    show_missing: bool = False,
    skip_covered: bool = False,
    skip_empty: bool = False,
    sort: str | None = None,
    precision: int = 0,
    branch: bool = False,
) -> Numbers:
    """Write the coverage summary of `results` to `out`; return the totals.

    `fmt` is ``"text"`` (the terminal table), ``"markdown"`` (a markdown table)
    or ``"total"`` (only the total percentage). `show_missing` adds the Missing
    column; `skip_covered` leaves out files with nothing missing, `skip_empty`
    files without statements (both still count in the total). `sort` is a
    column of :data:`SORT_KEYS`, descending with a leading ``-``; files are in
    name order by default. `precision` is the number of decimals of
    percentages. `branch` adds the Branch and BrPart columns.
    Raises :class:`NoDataError` when there is no file at all.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"Unknown report format choice: {fmt!r}")
    sort_key, descending = parse_sort(sort, branch=branch)
    results = list(results)
    if not results:
        raise NoDataError("No data to report.")
    total = sum((result.numbers for result in results), Numbers())
    if fmt == "total":
        out.write(format_pct(total.pc_covered, precision) + "\n")
        return total
    shown, end_lines = _select(results, skip_covered=skip_covered, skip_empty=skip_empty)
    columns = _columns(branch=branch, show_missing=show_missing)
    rows = [_file_row(result, columns, precision) for result in shown]
    rows = _sorted_rows(rows, sort_key, descending)
    total_row = _total_row(total, columns, precision)
    writer = _write_markdown if fmt == "markdown" else _write_text
    writer(out, columns, [row.cells for row in rows], total_row, end_lines)
    return total


def parse_sort(sort: str | None, *, branch: bool) -> tuple[str, bool]:
    """Split a sort option like ``-Cover`` into (column, descending).

    No option means by name, ascending. A leading ``+`` is allowed; case is
    ignored. The branch columns are only valid with `branch`.
    """
    option = (sort or "name").lower()
    descending = option.startswith("-")
    column = option[1:] if option[:1] in "+-" else option
    valid = SORT_KEYS if branch else tuple(k for k in SORT_KEYS if not k.startswith("br"))
    if column not in valid:
        raise ConfigError(
            f"Invalid sorting option: {sort!r}",
            hint=f"sort by one of {', '.join(valid)}, with '-' in front for descending",
        )
    return column, descending


def _select(
    results: Sequence[FileResult], *, skip_covered: bool, skip_empty: bool
) -> tuple[list[FileResult], list[str]]:
    """The results to show, and the closing lines that count the others."""
    shown: list[FileResult] = []
    n_covered = n_empty = 0
    for result in results:
        nums = result.numbers
        if skip_covered and nums.n_missing == 0 and nums.n_partial_branches == 0:
            n_covered += 1
        elif skip_empty and nums.n_statements == 0:
            n_empty += 1
        else:
            shown.append(result)
    end_lines = []
    if skip_covered and n_covered:
        end_lines.append(f"\n{_plural(n_covered, 'file')} skipped due to complete coverage.")
    if skip_empty and n_empty:
        end_lines.append(f"\n{_plural(n_empty, 'empty file')} skipped.")
    return shown, end_lines


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _columns(*, branch: bool, show_missing: bool) -> list[str]:
    """The column captions, in order."""
    columns = ["Name", "Stmts", "Miss"]
    if branch:
        columns += ["Branch", "BrPart"]
    columns.append("Cover")
    if show_missing:
        columns.append("Missing")
    return columns


def _file_row(result: FileResult, columns: Sequence[str], precision: int) -> _Row:
    """The row of one file."""
    nums = result.numbers
    values: dict[str, float | int] = {
        "stmts": nums.n_statements,
        "miss": nums.n_missing,
        "branch": nums.n_branches,
        "brpart": nums.n_partial_branches,
        "cover": nums.pc_covered,
    }
    cells = {
        "Name": safe_name(result.name),
        "Stmts": str(nums.n_statements),
        "Miss": str(nums.n_missing),
        "Branch": str(nums.n_branches),
        "BrPart": str(nums.n_partial_branches),
        "Cover": format_pct(nums.pc_covered, precision),
    }
    if "Missing" in columns:
        cells["Missing"] = missing_text(result)
    return _Row({column: cells[column] for column in columns}, values)


def missing_text(result: FileResult) -> str:
    """The Missing cell of a file: missing lines, then branch arcs not taken."""
    return format_lines(result.statements, result.missing, result.missing_arcs)


def _total_row(total: Numbers, columns: Sequence[str], precision: int) -> dict[str, str]:
    """The cells of the TOTAL row (its Missing cell is empty)."""
    cells = {
        "Name": "TOTAL",
        "Stmts": str(total.n_statements),
        "Miss": str(total.n_missing),
        "Branch": str(total.n_branches),
        "BrPart": str(total.n_partial_branches),
        "Cover": format_pct(total.pc_covered, precision),
        "Missing": "",
    }
    return {column: cells[column] for column in columns}


def _sorted_rows(rows: list[_Row], key: str, descending: bool) -> list[_Row]:
    """Rows in the asked order; ties are broken by name, in the same direction."""
    if key == "name":
        return sorted(rows, key=lambda row: _human_key(row.cells["Name"]), reverse=descending)
    return sorted(
        rows,
        key=lambda row: (row.sort_values[key], row.cells["Name"]),
        reverse=descending,
    )


def _human_key(name: str) -> tuple[list[str | int], str]:
    """Sort key putting ``file9`` before ``file10``: digit runs compare as numbers."""
    chunks = re.split(r"(\d+)", name)
    # split() alternates text and digits, so equal positions always hold equal types.
    return [int(c) if i % 2 else c for i, c in enumerate(chunks)], name


def _write_line(out: IO[str], line: str) -> None:
    out.write(line.rstrip() + "\n")


def _write_text(
    out: IO[str],
    columns: Sequence[str],
    rows: Sequence[dict[str, str]],
    total: dict[str, str],
    end_lines: Sequence[str],
) -> None:
    """The plain text table: header, rule, rows, rule, TOTAL, closing lines."""
    name_width = max([len(row["Name"]) for row in rows] + [5]) + 1
    cover_width = max(len(total["Cover"]) + 2, len(" Cover")) + 1
    cover_width = max([cover_width] + [len(row["Cover"]) + 2 for row in rows])
    header = "".join(_text_cell(c, c, name_width, cover_width, header=True) for c in columns)
    rule = "-" * len(header)
    _write_line(out, header)
    _write_line(out, rule)
    for cells in rows:
        _write_line(out, _text_line(columns, cells, name_width, cover_width))
    if rows:
        _write_line(out, rule)
    _write_line(out, _text_line(columns, total, name_width, cover_width))
    for line in end_lines:
        _write_line(out, line)


def _text_line(
    columns: Sequence[str], cells: dict[str, str], name_width: int, cover_width: int
) -> str:
    """One row of the text table."""
    return "".join(_text_cell(c, cells[c], name_width, cover_width) for c in columns)


def _text_cell(
    column: str, value: str, name_width: int, cover_width: int, header: bool = False
) -> str:
    """One cell of the text table, padded to its column."""
    if column == "Name":
        return f"{value:{name_width}}"
    if column == "Cover":
        return f"{value:>{cover_width}}" if header else f"{value:>{cover_width - 1}}%"
    if column == "Missing":
        return f"{value:>10}" if header else f"   {value:9}"
    return f"{value:>7}"


def escape_markdown(text: str) -> str:
    """`text` with the characters that mean something in markdown backslashed."""
    return text.translate(_MARKDOWN_ESCAPES)


def _write_markdown(
    out: IO[str],
    columns: Sequence[str],
    rows: Sequence[dict[str, str]],
    total: dict[str, str],
    end_lines: Sequence[str],
) -> None:
    """The markdown table: header, alignment row, rows, bold TOTAL, closing lines."""
    name_width = max([len(escape_markdown(row["Name"])) for row in rows] + [0])
    name_width = max(name_width, len("**TOTAL**")) + 1
    cover_width = max(len(total["Cover"]) + 6, len(" Cover "))
    header_cells = [_markdown_cell(c, c, name_width, cover_width) for c in columns]
    _write_line(out, "".join(header_cells))
    _write_line(out, _markdown_rule(header_cells))
    for cells in rows:
        values = {c: escape_markdown(cells[c]) for c in columns}
        line = "".join(
            _markdown_cell(c, values[c], name_width, cover_width - 1, "%") for c in columns
        )
        _write_line(out, line)
    _write_line(
        out, "".join(_markdown_total_cell(c, total[c], name_width, cover_width) for c in columns)
    )
    for line in end_lines:
        _write_line(out, line)


def _markdown_rule(header_cells: Sequence[str]) -> str:
    """The alignment row: the name column left-aligned, the others right-aligned."""
    first = "- |".rjust(len(header_cells[0]) - 1, "-")
    others = ["-: |".rjust(len(cell) - 1, "-") for cell in header_cells[1:]]
    return "|" + " ".join([first, *others])


def _markdown_cell(
    column: str, value: str, name_width: int, cover_width: int, pct: str = ""
) -> str:
    """One cell of a markdown row, with its closing bar (and the name's opening one)."""
    if column == "Name":
        return f"| {value:{name_width}}|"
    if column == "Cover":
        return f"{value:>{cover_width}}{pct} |"
    if column == "Missing":
        return f"{value:>10} |"
    return f"{value:>9} |"


def _markdown_total_cell(column: str, value: str, name_width: int, cover_width: int) -> str:
    """One cell of the bold TOTAL row."""
    if column == "Name":
        return f"|{' **' + value + '**':{name_width}} |"
    if value == "":
        bold = ""
    elif column == "Cover":
        bold = f" **{value}%**"
    else:
        bold = f" **{value}**"
    return _markdown_cell(column, bold, name_width, cover_width)
