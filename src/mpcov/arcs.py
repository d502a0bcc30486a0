"""Possible arcs of a Python source file: the static half of branch coverage.

Used at report time only. An *arc* is a jump ``(from_line, to_line)`` between
the first lines of two statements; a negative line ``-n`` stands for leaving
the code object (module, class or function) whose first line is ``n``. A
*branch line* is a statement with more than one possible exit. The answers
agree with coverage.py 7.17's (``PythonParser.arcs()`` and ``exit_counts()``;
see ``docs/branches.md``), which keeps mpcov's branch numbers identical:

* Arcs come from the syntax tree, one code object at a time (the module, each
  class body, each function; lambdas and comprehensions have none). Each
  statement's possible exits flow to the next statement of its suite; loops,
  ``try``, ``with``, ``match``, ``break``, ``continue``, ``return`` and
  ``raise`` redirect them. Statements the compiler dropped (``if 0:`` bodies,
  unreachable code) are skipped.
* No arc enters a code object: ``(-n, first)`` arcs that a tracer records are
  never branches, so coverage.py stopped predicting them.
* Leaving a ``with`` body passes through the ``with`` line (``__exit__``) at
  run time; the ``body -> with -> next`` detour is shown as ``body -> next``,
  both in the possible arcs and in the executed ones (:func:`normalize_executed`).
"""

from __future__ import annotations

import ast
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import CodeType, MappingProxyType
from typing import NamedTuple, TypeAlias

from mpcov.analysis import (
    _code_lines,
    _is_irrefutable,
    analyze_source,
    file_stamp,
    read_source,
)

Arc: TypeAlias = tuple[int, int]
"""A jump between two statements' first lines; negative lines are code object exits."""

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_TRY_NODES = (ast.Try, ast.TryStar)
# The only nodes whose children can be statements; expressions never hold any.
_STATEMENT_HOLDERS = (ast.stmt, ast.excepthandler, ast.match_case)
# Names the compiler folds to constants in tests; `__debug__` as this
# interpreter sees it (False only under -O), like the compiler that ran the code.
_CONSTANT_NAMES = {"True": True, "False": False, "None": None, "__debug__": __debug__}


class BranchTotals(NamedTuple):
    """The branch counts of one file, as coverage.py's ``Numbers`` holds them."""

    n_branches: int
    n_partial_branches: int
    n_missing_branches: int


@dataclass(frozen=True)
class ArcAnalysis:
    """The possible arcs of one source file, and how to judge executed ones.

    `arcs` are coverage.py's possible arcs: like coverage.py's, they still hold
    arcs from and to excluded lines, which `exit_counts`, `missing_arcs` and
    `executed_branch_arcs` then leave out. `exit_counts` maps each statement
    line to its number of possible exits to non-excluded lines (excluded lines
    have none); partial-branch pragmas do not change it. `no_branch` holds the
    lines a ``partial`` regex marks: their unexecuted exits are never missing.
    """

    arcs: frozenset[Arc]
    exit_counts: Mapping[int, int]
    excluded: frozenset[int] = frozenset()
    no_branch: frozenset[int] = frozenset()
    multiline: Mapping[int, int] = field(default_factory=dict)
    # Executed arc -> the arc to count instead (None: drop it); see _WithExits.
    with_fixes: Mapping[Arc, Arc | None] = field(default_factory=dict)

    def branch_lines(self) -> frozenset[int]:
        """The lines with more than one possible exit."""
        return frozenset(line for line, count in self.exit_counts.items() if count > 1)

    @property
    def n_branches(self) -> int:
        """The number of branches: the exits of all branch lines."""
        return sum(count for count in self.exit_counts.values() if count > 1)

    def missing_arcs(self, executed: Iterable[Arc]) -> list[Arc]:
        """The possible exits of branch lines not in `executed`, sorted.

        `executed` are arcs as :func:`normalize_executed` returns them. Exits to
        excluded lines, and those of ``no_branch`` lines, are never missing.
        """
        done = set(executed)
        branch_lines = self.branch_lines()
        return sorted(
            (a, b)
            for a, b in self.arcs
            if a in branch_lines
            and (a, b) not in done
            and a not in self.no_branch
            and b not in self.excluded
        )

    def executed_branch_arcs(self, executed: Iterable[Arc]) -> list[Arc]:
        """The possible exits of branch lines that are in `executed`, sorted."""
        branch_lines = self.branch_lines()
        return sorted(arc for arc in set(executed) if arc[0] in branch_lines and arc in self.arcs)

    def totals(self, executed: Iterable[Arc], missing_lines: Iterable[int]) -> BranchTotals:
        """The file's branch counts, given its normalised executed arcs and its
        missing statements.

        A missing exit is *partial* unless its line is a missing statement, as
        coverage.py counts it. (Not "when its line ran": a line that is no
        statement, such as ``def f(): "doc"; return 1``, which coverage.py
        takes for a docstring, can still have exits.)
        """
        missing = self.missing_arcs(executed)
        not_run = set(missing_lines)
        partial = sum(1 for arc in missing if arc[0] not in not_run)
        return BranchTotals(self.n_branches, partial, len(missing))


def analyze_arcs(
    source: str, path: str, *, exclude: Sequence[str], partial: Sequence[str]
) -> ArcAnalysis:
    """Work out the possible arcs of Python `source`.

    `path` is used in messages and as the code's file name. `exclude` are the
    exclusion regexes (as for :func:`mpcov.analysis.analyze_source`); `partial`
    the ``partial_branches`` (plus ``partial_also`` and
    ``partial_branches_always``) regexes. Raises ``NotPythonError`` if
    `source` is not Python.
    """
    analysis = analyze_source(source, path, exclude)
    text = _normalize(source)
    tree, code = _compile(text, path)
    multiline = analysis.multiline
    code_lines = frozenset(multiline.get(line, line) for line in _code_lines(code))
    builder = _ArcBuilder(code_lines, multiline)
    builder.build(tree)
    fixes = builder.with_exits.fixes(builder.arcs)
    arcs = frozenset(
        arc for arc in _apply_fixes(builder.arcs, fixes, multiline) if arc[0] != arc[1]
    )
    return ArcAnalysis(
        arcs=arcs,
        exit_counts=MappingProxyType(_exit_counts(arcs, analysis.excluded)),
        excluded=analysis.excluded,
        no_branch=_no_branch_lines(text, partial, multiline),
        multiline=multiline,
        with_fixes=MappingProxyType(fixes),
    )


class ArcAnalysisCache:
    """Analyses the arcs of files once each, like :class:`mpcov.analysis.AnalysisCache`.

    An entry is keyed by path, modification time, size and the exclusion and
    partial-branch regexes, so an edited file is analysed again.
    """

    def __init__(self) -> None:
        self._entries: dict[
            tuple[str, int, int, tuple[str, ...], tuple[str, ...]], ArcAnalysis
        ] = {}

    def analyze(self, path: str, *, exclude: Sequence[str], partial: Sequence[str]) -> ArcAnalysis:
        """The arc analysis of `path`, computed now or remembered from before."""
        key = (*file_stamp(path), tuple(exclude), tuple(partial))
        found = self._entries.get(key)
        if found is None:
            found = self._entries[key] = analyze_arcs(
                read_source(path), path, exclude=exclude, partial=partial
            )
        return found

    def __len__(self) -> int:
        return len(self._entries)


def normalize_executed(raw_arcs: Iterable[Arc], analysis: ArcAnalysis) -> set[Arc]:
    """Turn the arcs a tracer recorded into arcs comparable with `analysis.arcs`.

    As coverage.py does: the ``with`` detours are fixed and both ends moved to
    their statement's first line; an arc from a statement to itself (a loop on
    one line, or a jump between lines of one statement) stands for that
    statement's only possible exit, if it has exactly one, and is dropped
    otherwise; then the fixes and the mapping are applied once more.
    """
    once = _apply_fixes(raw_arcs, analysis.with_fixes, analysis.multiline)
    only_exit = _single_destinations(analysis.arcs)
    kept = {arc for arc in once if arc[0] != arc[1]}
    kept.update((a, only_exit[a]) for a, b in once if a == b and a in only_exit)
    return _apply_fixes(kept, analysis.with_fixes, analysis.multiline)


# -- building the arcs ------------------------------------------------------------


@dataclass
class _Loop:
    """A ``for`` or ``while`` being walked: where ``continue`` goes, who ``break``s."""

    top: int
    breaks: set[int] = field(default_factory=set)


@dataclass
class _WithExits:
    """What is needed to hide the jump back to a ``with`` line when its body ends.

    From Python 3.10, leaving a ``with`` body runs ``__exit__`` on the ``with``
    line, so a tracer sees ``body -> with -> next``. Reports show ``body ->
    next``: :meth:`fixes` says which arcs to replace.
    """

    starts: set[int] = field(default_factory=set)  # every `with` line
    open: set[int] = field(default_factory=set)  # `with` lines whose body is being walked
    entries: set[Arc] = field(default_factory=set)  # arcs from a `with` line into its body
    exits: set[Arc] = field(default_factory=set)  # (body end, `with` line) arcs

    def fixes(self, arcs: Iterable[Arc]) -> dict[Arc, Arc | None]:
        """Arc -> its replacement, or None to drop it, among `arcs`."""
        onward = self._onward(arcs)
        fixes: dict[Arc, Arc | None] = {}
        for end, start in self.exits:
            if start in onward:
                fixes[end, start] = (end, self._landing(start, onward))
        # The `with -> next` arc is the second half of a detour now shown in
        # one arc, unless the body shares the `with` line and leaves no detour.
        for start, after in onward.items():
            if (start, start) not in self.exits:
                fixes[start, after] = None
        return fixes

    def _onward(self, arcs: Iterable[Arc]) -> dict[int, int]:
        """Each `with` line -> where flow goes after its ``__exit__``."""
        after: dict[int, set[int]] = {}
        for arc in arcs:
            if arc[0] in self.starts and arc not in self.entries:
                after.setdefault(arc[0], set()).add(arc[1])
        # More than one way on would be a new kind of statement; leave it be.
        return {start: next(iter(ends)) for start, ends in after.items() if len(ends) == 1}

    def _landing(self, start: int, onward: Mapping[int, int]) -> int:
        """Where leaving the body of the `with` on `start` lands, through outer ``with``s."""
        after = onward[start]
        while (start, after) in self.exits and after in onward:
            start, after = after, onward[after]
        return after


class _ArcBuilder:
    """Walks a module's syntax tree and collects its possible arcs.

    Each code object (module, class body, function) is walked on its own. A
    statement handler records the arcs inside its statement and returns the
    statement's *exits*: the lines from which execution may go on to the next
    statement of the suite.
    """

    def __init__(self, code_lines: frozenset[int], multiline: Mapping[int, int]) -> None:
        self._code_lines = code_lines
        self._multiline = multiline
        self.arcs: set[Arc] = set()
        self.with_exits = _WithExits()
        self._loops: list[_Loop] = []
        # The innermost `try` body's first handler; None: raised out of sight.
        self._raise_to: list[int | None] = []
        self._exit: int | None = None  # where `return` goes, in a function
        self._handlers: dict[type[ast.AST], Callable[[ast.stmt], set[int]]] = {
            **dict.fromkeys(_DEFS, self._definition),
            **dict.fromkeys((ast.For, ast.AsyncFor), self._for),
            **dict.fromkeys((ast.With, ast.AsyncWith), self._with),
            **dict.fromkeys(_TRY_NODES, self._try),
            ast.Break: self._break,
            ast.Continue: self._continue,
            ast.Return: self._return,
            ast.Raise: self._raise,
            ast.If: self._if,
            ast.While: self._while,
            ast.Match: self._match,
        }

    def build(self, tree: ast.Module) -> None:
        """Collect the arcs of `tree` and of every class and function in it."""
        self._module(tree)
        for node in _statement_nodes(tree):
            if isinstance(node, ast.ClassDef):
                self._code_object(node, returns=False)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._code_object(node, returns=True)

    def _arc(self, start: int, end: int) -> None:
        self.arcs.add((start, end))
        if start in self.with_exits.open:
            self.with_exits.entries.add((start, end))

    def _line(self, node: ast.stmt | ast.expr | ast.pattern | ast.excepthandler) -> int:
        """The first line of `node`'s statement: where a tracer reports it."""
        line = node.lineno
        if isinstance(node, _DEFS) and node.decorator_list:
            line = node.decorator_list[0].lineno
        return self._multiline.get(line, line)

    # -- code objects ------------------------------------------------------------

    def _module(self, tree: ast.Module) -> None:
        # A module's code object starts on line 1 whatever its first statement.
        if not tree.body:
            self._arc(1, -1)
        for line in self._suite(tree.body, set()):
            self._arc(line, -1)

    def _code_object(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef, *, returns: bool
    ) -> None:
        """The arcs of a function or class body; no arc enters it."""
        exit_to = -self._line(node)
        self._loops, self._raise_to = [], []
        # A class body cannot return, and a raise in it is not followed.
        self._exit = exit_to if returns else None
        for line in self._suite(node.body, set()):
            self._arc(line, exit_to)

    # -- suites and statements -----------------------------------------------

    def _suite(self, body: Sequence[ast.stmt], starts: set[int]) -> set[int]:
        """Chain the statements of `body`, entered from `starts`; return its exits.

        Statements that left no code (dropped by the compiler) are skipped, so
        flow goes past them; an empty or dropped suite exits from `starts`.
        """
        for node in body:
            line = self._line(node)
            if line not in self._code_lines:
                continue
            for start in starts:
                self._arc(start, line)
            starts = self._statement(node)
        return starts

    def _statement(self, node: ast.stmt) -> set[int]:
        handler = self._handlers.get(type(node))
        if handler is None:
            return {self._line(node)}
        return handler(node)

    def _definition(self, node: ast.stmt) -> set[int]:
        """A ``def`` or ``class`` statement runs its decorators, then binds the name."""
        assert isinstance(node, _DEFS)
        previous = None
        for decorator in node.decorator_list:
            line = self._line(decorator)
            if previous is not None and line != previous:
                self._arc(previous, line)
            previous = line
        if previous is not None:
            self._arc(previous, node.lineno)
        return {node.lineno}

    def _break(self, node: ast.stmt) -> set[int]:
        self._loops[-1].breaks.add(self._line(node))
        return set()

    def _continue(self, node: ast.stmt) -> set[int]:
        self._arc(self._line(node), self._loops[-1].top)
        return set()

    def _return(self, node: ast.stmt) -> set[int]:
        # Straight to the function's exit: a `finally` on the way is not shown.
        if self._exit is not None:
            self._arc(self._line(node), self._exit)
        return set()

    def _raise(self, node: ast.stmt) -> set[int]:
        # To the first handler of the innermost `try`, whatever it catches, or
        # out of the function; inside a `try` without handlers, nowhere.
        target = self._raise_to[-1] if self._raise_to else self._exit
        if target is not None:
            self._arc(self._line(node), target)
        return set()

    def _if(self, node: ast.stmt) -> set[int]:
        assert isinstance(node, ast.If)
        start = self._line(node.test)
        constant, value = _constant_test(node.test)
        exits: set[int] = set()
        if value or not constant:
            exits |= self._suite(node.body, {start})
        if not value or not constant:
            exits |= self._suite(node.orelse, {start})
        return exits

    def _loop(self, top: int, node: ast.For | ast.AsyncFor | ast.While) -> set[int]:
        """Walk a loop's body (ends go back to `top`); return the breaks."""
        self._loops.append(_Loop(top))
        for line in self._suite(node.body, {top}):
            self._arc(line, top)
        return self._loops.pop().breaks

    def _for(self, node: ast.stmt) -> set[int]:
        assert isinstance(node, (ast.For, ast.AsyncFor))
        top = self._line(node.iter)
        return self._loop(top, node) | self._suite(node.orelse, {top})

    def _while(self, node: ast.stmt) -> set[int]:
        assert isinstance(node, ast.While)
        top = self._line(node.test)
        exits = self._loop(top, node)
        if node.orelse:
            exits |= self._suite(node.orelse, {top})
        elif not _constant_test(node.test)[0]:
            # `while True:` (or any constant) never ends by its test.
            exits.add(top)
        return exits

    def _with(self, node: ast.stmt) -> set[int]:
        assert isinstance(node, (ast.With, ast.AsyncWith))
        start = self._line(node)
        self.with_exits.starts.add(start)
        self.with_exits.open.add(start)
        ends = self._suite(node.body, {start})
        self.with_exits.open.discard(start)
        for end in ends:
            self._arc(end, start)
            self.with_exits.exits.add((end, start))
        return {start} if ends else set()

    def _match(self, node: ast.stmt) -> set[int]:
        assert isinstance(node, ast.Match)
        previous = self._line(node)
        exits: set[int] = set()
        for case in node.cases:
            line = self._line(case.pattern)
            self._arc(previous, line)
            exits |= self._suite(case.body, {line})
            previous = line
        # Without a `case _:` at the end, no case may match.
        if not _is_irrefutable(node.cases[-1]):
            exits.add(previous)
        return exits

    def _try(self, node: ast.stmt) -> set[int]:
        assert isinstance(node, _TRY_NODES)
        handler = self._line(node.handlers[0]) if node.handlers else None
        self._raise_to.append(handler)
        exits = self._suite(node.body, {self._line(node)})
        # Raises in handlers and `else` go on outwards, or vanish into a `finally`.
        if node.finalbody:
            self._raise_to[-1] = None
        else:
            self._raise_to.pop()
        caught: set[int] = set()
        for except_clause in node.handlers:
            caught |= self._suite(except_clause.body, {self._line(except_clause)})
        exits = self._suite(node.orelse, exits) | caught
        if not node.finalbody:
            return exits
        self._raise_to.pop()
        final_exits = self._suite(node.finalbody, exits)
        # A `finally` is left normally only if it was entered normally.
        return final_exits if exits else set()


# -- helpers ------------------------------------------------------------------


def _normalize(source: str) -> str:
    """`source` with the newlines the compiler sees (as mpcov.analysis reads it)."""
    text = source.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    return text if not text or text.endswith("\n") else text + "\n"


def _compile(text: str, path: str) -> tuple[ast.Module, CodeType]:
    """The syntax tree and code object of `text` (already known to compile)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = ast.parse(text, path)
        return tree, compile(tree, path, "exec", dont_inherit=True)


def _statement_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """`node` and every statement-level node below it."""
    yield node
    for child in ast.iter_child_nodes(node):
        if isinstance(child, _STATEMENT_HOLDERS):
            yield from _statement_nodes(child)


def _constant_test(node: ast.expr) -> tuple[bool, bool]:
    """(is `node` a test the compiler folds to a constant, its truth value)."""
    if isinstance(node, ast.Constant):
        return True, bool(node.value)
    if isinstance(node, ast.Name) and node.id in _CONSTANT_NAMES:
        return True, bool(_CONSTANT_NAMES[node.id])
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        constant, value = _constant_test(node.operand)
        return constant, not value
    if isinstance(node, ast.BoolOp):
        tests = [_constant_test(value) for value in node.values]
        if all(constant for constant, _ in tests):
            combine = any if isinstance(node.op, ast.Or) else all
            return True, combine(value for _, value in tests)
    return False, False


def _first_line(line: int, multiline: Mapping[int, int]) -> int:
    """The first line of `line`'s statement; code object exits keep their sign."""
    if line < 0:
        return -multiline.get(-line, -line)
    return multiline.get(line, line)


def _apply_fixes(
    arcs: Iterable[Arc], fixes: Mapping[Arc, Arc | None], multiline: Mapping[int, int]
) -> set[Arc]:
    """`arcs` with the ``with`` fixes applied, then moved to first lines."""
    fixed = (fixes.get(arc, arc) for arc in arcs)
    return {
        (_first_line(arc[0], multiline), _first_line(arc[1], multiline))
        for arc in fixed
        if arc is not None
    }


def _single_destinations(arcs: Iterable[Arc]) -> dict[int, int]:
    """Line -> its only possible destination, for lines with exactly one."""
    ends: dict[int, set[int]] = {}
    for a, b in arcs:
        ends.setdefault(a, set()).add(b)
    return {a: next(iter(bs)) for a, bs in ends.items() if len(bs) == 1}


def _exit_counts(arcs: Iterable[Arc], excluded: frozenset[int]) -> dict[int, int]:
    """Line -> number of possible exits, leaving out excluded lines at either end."""
    counts = Counter(a for a, b in arcs if a not in excluded and b not in excluded)
    return dict(counts)


def _no_branch_lines(
    text: str, partial: Sequence[str], multiline: Mapping[int, int]
) -> frozenset[int]:
    """First lines of the statements that a `partial` regex matches (over the whole text)."""
    if not partial:
        return frozenset()
    regex = re.compile("|".join(f"(?:{pattern})" for pattern in partial), re.MULTILINE)
    lines: set[int] = set()
    offset, first = 0, 1
    for match in regex.finditer(text):
        first += text.count("\n", offset, match.start())
        offset = match.start()
        last = first + text.count("\n", offset, match.end())
        lines.update(multiline.get(line, line) for line in range(first, last + 1))
    return frozenset(lines)
