"""Reporters: each turns a list of :class:`mpcov.results.FileResult` into one format.

One module per format (:mod:`mpcov.report.text` for the terminal table and
markdown, :mod:`mpcov.report.jsonreport` for coverage.py's JSON). Every
reporter writes to the text stream it is given and returns the totals it
reported. This package module holds the small helpers that several formats
share; it imports no reporter, so importing one format costs only that format.
"""

from __future__ import annotations

from collections.abc import Iterable

from mpcov.results import Arc, LineNo


def safe_name(text: str) -> str:
    """`text` with every non-printable character replaced by ``?``.

    File names may legally contain control characters, which a terminal would
    obey as escape sequences; reports must show them inert.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def line_ranges(statements: Iterable[LineNo], lines: Iterable[LineNo]) -> list[tuple[int, int]]:
    """Group `lines` into (first, last) ranges of consecutive `statements`.

    A range runs on across lines that are not statements (blank lines,
    comments, continuation lines): with statements 12, 14 and 15, lines 12
    and 14 make one range (12, 14). Lines that are not statements are ignored.
    """
    wanted = set(lines)
    ranges: list[tuple[int, int]] = []
    start = end = 0
    for stmt in sorted(statements):
        if stmt in wanted:
            start = start or stmt
            end = stmt
        elif start:
            ranges.append((start, end))
            start = 0
    if start:
        ranges.append((start, end))
    return ranges


def format_lines(
    statements: Iterable[LineNo], lines: Iterable[LineNo], arcs: Iterable[Arc] = ()
) -> str:
    """Show `lines` compactly, as in "5, 10-15, 20->exit".

    Lines are grouped into ranges as :func:`line_ranges` does. Each of `arcs`
    (branch arcs not taken) is shown as ``from->to`` (``from->exit`` for a
    negative destination) unless either end is among `lines` already. Items
    are ordered by their first line.
    """
    line_set = set(lines)
    items = [(first, _range_text(first, last)) for first, last in line_ranges(statements, line_set)]
    for src, dst in arcs:
        if src not in line_set and dst not in line_set:
            items.append((src, f"{src}->{dst if dst > 0 else 'exit'}"))
    return ", ".join(text for _, text in sorted(items))


def _range_text(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"
