"""Static analysis of a Python source file: its statements and excluded lines.

Used at report time only, never inside a measured process. The answers agree
with coverage.py's, the tool users compare mpcov with (see ``docs/analysis.md``):

* Statements are the line numbers in the compiled code objects' line tables
  (``co_lines``), each moved to the first line of its logical line (lines
  joined by brackets or backslashes), less docstrings and excluded lines.
* Excluded lines are the lines an ``exclude`` regex matches, plus the suite of
  any clause whose header holds such a line, plus the whole of a ``def`` or
  ``class`` whose decorators or signature hold one.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import CodeType, MappingProxyType

from mpcov.errors import ConfigError, NoSourceError, NotPythonError

LineNo = int

#: coverage.py's default ``exclude_lines``: ``# pragma: no cover`` comments,
#: bodies that are only ``...`` (stubs, protocols, overloads), and
#: ``if TYPE_CHECKING:`` blocks.
DEFAULT_EXCLUDE: tuple[str, ...] = (
    r"#\s*(pragma|PRAGMA)[:\s]?\s*(no|NO)\s*(cover|COVER)",
    r"^\s*(((async )?def .*?)?[\])]+(\s*->.*?)?:\s*)?\.\.\.\s*(#|$)",
    r"^\s*if (typing\.)?TYPE_CHECKING:",
)

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
# The only nodes whose children can be statements; expressions never hold any.
_STATEMENT_HOLDERS = (ast.stmt, ast.excepthandler, ast.match_case)


@dataclass(frozen=True)
class Analysis:
    """What one source file contains, as a coverage report needs it."""

    path: str
    statements: frozenset[int]
    excluded: frozenset[int]
    multiline: Mapping[int, int]

    def first_line(self, line: int) -> int:
        """The first line of the statement that physical line `line` belongs to."""
        return self.multiline.get(line, line)

    def executed(self, raw_lines: Iterable[int]) -> frozenset[int]:
        """Map raw line numbers recorded by the tracer (which may be continuation lines of a
        multi-line statement, or the `def` line when a function starts) to statement first lines,
        keeping only those in `statements`."""
        return frozenset(self.first_line(line) for line in raw_lines) & self.statements

    def missing(self, raw_lines: Iterable[int]) -> frozenset[int]:
        """The statements that none of `raw_lines` executed."""
        return self.statements - self.executed(raw_lines)


@dataclass(frozen=True)
class _Logical:
    """One logical line, as the tokenizer sees it."""

    first: int  # line of its first token
    last: int  # line of its NEWLINE token
    depth: int  # indentation depth, in INDENT tokens
    colon: int  # line of its last colon outside brackets, 0 if none


def analyze_source(source: str, path: str, exclude: Sequence[str] = DEFAULT_EXCLUDE) -> Analysis:
    """Analyse Python `source`; `path` is used in messages and as the code's file name."""
    text = _normalize(source)
    try:
        tree, code = _compile(text, path)
        logical = list(_logical_lines(text))
    except (SyntaxError, ValueError, tokenize.TokenError) as err:
        raise NotPythonError(_parse_message(path, err)) from err
    multiline = {line: ln.first for ln in logical for line in range(ln.first + 1, ln.last + 1)}
    raw_excluded = _matching_lines(text, _exclusion_regex(exclude))
    excluded = {multiline.get(line, line) for line in _suite_exclusions(logical, raw_excluded)}
    # Without a single token of code, the compiler still invents a line for the module.
    raw_statements = set(_code_lines(code)) if logical else set()
    docstrings = _exclude_from_tree(tree, excluded, raw_statements)
    ignore = excluded | docstrings
    statements = {multiline.get(line, line) for line in raw_statements - ignore} - ignore
    return Analysis(path, frozenset(statements), frozenset(excluded), MappingProxyType(multiline))


def analyze_file(path: str, exclude: Sequence[str] = DEFAULT_EXCLUDE) -> Analysis:
    """Read `path` (honouring its PEP 263 encoding declaration) and analyse it."""
    return analyze_source(read_source(path), path, exclude)


def read_source(path: str) -> str:
    """The text of the Python file `path`, decoded as the interpreter would decode it."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise NoSourceError(f"No source for measured file '{path}': {err.strerror or err}") from err
    # The same PEP 263 / BOM detection tokenize.open() uses; decoding the bytes
    # ourselves lets a decoding error say which line it is on.
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)
    except SyntaxError as err:  # a bad or unknown coding declaration
        raise NotPythonError(_parse_message(path, err)) from err
    except (UnicodeDecodeError, LookupError) as err:
        line = data.count(b"\n", 0, getattr(err, "start", 0)) + 1
        raise NotPythonError(f"Couldn't parse '{path}' as Python: {err} (line {line})") from err


def file_stamp(path: str) -> tuple[str, int, int]:
    """`path` with its modification time and size: what makes a cached
    analysis of it still valid. NoSourceError when the file is gone."""
    try:
        st = os.stat(path)
    except OSError as err:
        raise NoSourceError(f"No source for measured file '{path}': {err.strerror or err}") from err
    return path, st.st_mtime_ns, st.st_size


class AnalysisCache:
    """Analyses files once each, however many processes' data a report combines.

    An entry is keyed by path, modification time, size and exclusion regexes,
    so an edited file is analysed again.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[str, int, int, tuple[str, ...]], Analysis] = {}

    def analyze(self, path: str, exclude: Sequence[str] = DEFAULT_EXCLUDE) -> Analysis:
        """The analysis of `path`, computed now or remembered from before."""
        key = (*file_stamp(path), tuple(exclude))
        if key not in self._entries:
            self._entries[key] = analyze_file(path, exclude)
        return self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget every analysis."""
        self._entries.clear()


def _normalize(source: str) -> str:
    """Give `source` the shape the compiler sees when it reads a file."""
    # Universal newlines, so that line numbers count the same for compile(),
    # tokenize and the exclusion regexes. Form feeds stay: compile() and
    # tokenize agree on them (coverage.py replaces them with spaces, which
    # breaks files where one precedes indentation).
    text = source.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if text and not text.endswith("\n"):
        text += "\n"
    return text


def _compile(text: str, path: str) -> tuple[ast.Module, CodeType]:
    """The AST and the code object of `text`."""
    # Syntax warnings (invalid escapes, `x is 1`...) were the user's to see when
    # the code ran; repeating them at report time is noise (or an error, under
    # `-W error`).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = ast.parse(text, path)
        # dont_inherit: this module's `from __future__ import annotations` must
        # not change how the measured code compiles.
        return tree, compile(tree, path, "exec", dont_inherit=True)


def _parse_message(path: str, err: Exception) -> str:
    """A one-line NotPythonError message for `err`, naming `path`."""
    if isinstance(err, SyntaxError):
        reason, line = err.msg, err.lineno
    elif isinstance(err, tokenize.TokenError):
        reason, line = str(err.args[0]), err.args[1][0]
    else:
        reason, line = str(err), None
    where = f" (line {line})" if line else ""
    return f"Couldn't parse '{path}' as Python: {reason}{where}"


def _exclusion_regex(exclude: Sequence[str]) -> re.Pattern[str] | None:
    """One compiled regex matching where any of `exclude` does, or None if empty."""
    if not exclude:
        return None
    joined = "|".join(f"(?:{pattern})" for pattern in exclude)
    try:
        return re.compile(joined, re.MULTILINE)
    except re.error as err:
        raise ConfigError(f"Invalid exclusion regex {joined!r}: {err}") from err


def _matching_lines(text: str, regex: re.Pattern[str] | None) -> set[int]:
    """The lines touched by a match of `regex` in `text`."""
    # The regex runs over the whole text, as coverage.py's does, so a pattern
    # can span lines (and `\s*` in the defaults can run over blank lines).
    lines: set[int] = set()
    if regex is None:
        return lines
    offset, line = 0, 1
    for match in regex.finditer(text):
        line += text.count("\n", offset, match.start())
        offset = match.start()
        lines.update(range(line, line + text.count("\n", offset, match.end()) + 1))
    return lines


def _logical_lines(text: str) -> Iterator[_Logical]:
    """The logical lines of `text`, from the tokenizer."""
    depth = nesting = first = colon = 0
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.INDENT:
            depth += 1
        elif tok.type == tokenize.DEDENT:
            depth -= 1
        elif tok.type == tokenize.NEWLINE:
            if first:
                yield _Logical(first, tok.end[0], depth, colon)
            first = colon = 0
        elif tok.type == tokenize.OP:
            if tok.string in "([{":
                nesting += 1
            elif tok.string in ")]}":
                nesting -= 1
            elif tok.string == ":" and nesting == 0:
                colon = tok.start[0]
        if not first and tok.type not in (tokenize.COMMENT, tokenize.NL) and tok.string.strip():
            first = tok.start[0]


def _suite_exclusions(logical: Sequence[_Logical], raw: set[int]) -> set[int]:
    """`raw` plus the first line of every statement in an excluded clause's suite.

    A clause is excluded when a line of its header, up to the colon, is in `raw`;
    its suite is every following logical line indented deeper than the header.
    Indentation, not the AST, finds suites because `else:`, `try:` and `finally:`
    lines have no position of their own in the AST.
    """
    excluded = set(raw)
    suite_depth: int | None = None
    for ln in logical:
        if suite_depth is not None:
            if ln.depth > suite_depth:
                excluded.add(ln.first)
                continue
            suite_depth = None
        if ln.colon and raw.intersection(range(ln.first, ln.colon + 1)):
            suite_depth = ln.depth
    return excluded


def _code_lines(code: CodeType) -> Iterator[int]:
    """Every line number in the line tables of `code` and the code nested in it."""
    # PEP 649 annotation functions (3.14+) rarely run, so their lines are not
    # statements; like coverage.py, any code nested in them still counts.
    if code.co_name != "__annotate__":
        yield from (line for _, _, line in code.co_lines() if line)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _code_lines(const)


def _exclude_from_tree(tree: ast.AST, excluded: set[int], raw_statements: set[int]) -> set[int]:
    """Extend `excluded` with what the AST shows; return the docstring lines.

    Nodes are visited parents first: an irrefutable ``case`` is judged before
    the defs in its body are widened to their full extent, as coverage.py does.
    """
    docstrings: set[int] = set()
    for node in _statement_nodes(tree):
        if isinstance(node, (*_DEFS, ast.Module)):
            docstrings.update(_docstring_lines(node))
        if isinstance(node, _DEFS):
            start = min((d.lineno for d in node.decorator_list), default=node.lineno)
            # Decorators and the signature carry an exclusion to the whole definition.
            if excluded.intersection(range(start, node.lineno + 1)):
                excluded.update(range(start, _end(node) + 1))
        elif isinstance(node, ast.match_case) and _is_irrefutable(node):
            # `case _:` is the `else` of a match: drop it along with a wholly excluded body.
            body = range(node.body[0].lineno, _end(node.body[-1]) + 1)
            inside = raw_statements.intersection(body)
            if inside and inside <= excluded:
                excluded.update(range(node.pattern.lineno, _end(node.pattern) + 1))
    return docstrings


def _statement_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """`node` and every statement-level node below it, parents before children."""
    yield node
    for child in ast.iter_child_nodes(node):
        if isinstance(child, _STATEMENT_HOLDERS):
            yield from _statement_nodes(child)


def _docstring_lines(node: ast.AST) -> range:
    """The lines of the docstring of module, class or function `node`, if any."""
    body = getattr(node, "body", None)
    if body:
        first = body[0]
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        ):
            return range(first.lineno, _end(first) + 1)
    return range(0)


def _is_irrefutable(case: ast.match_case) -> bool:
    """Does `case` match anything, like ``case _:`` or ``case name:`` without a guard?

    Shared with mpcov.arcs, which needs the same judgement.
    """
    pattern = case.pattern
    # Only the last alternative of an or-pattern may be irrefutable.
    while isinstance(pattern, ast.MatchOr):
        pattern = pattern.patterns[-1]
    while isinstance(pattern, ast.MatchAs) and pattern.pattern is not None:
        pattern = pattern.pattern
    return case.guard is None and isinstance(pattern, ast.MatchAs)


def _end(node: ast.stmt | ast.pattern) -> int:
    """The last line of `node` (always set for nodes that come from parsing)."""
    return node.end_lineno if node.end_lineno is not None else node.lineno
