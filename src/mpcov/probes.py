"""Branch probes: the syntax rewrite that lets the cores measure arcs cheaply.

mpcov measures branches as it measures lines: each location recorded once
(with ``sys.monitoring``, each ``LINE`` event disabled after it first fires;
with settrace, a code object dropped once all its locations ran). That needs every way out of
a branch line to have a location of its own, reached by that way alone:

* A way that *enters a suite* (an ``if`` or loop body, an ``else`` body, the
  next ``case``) already has one: the first statement of that suite can only
  be reached that way (loop bodies are entered again only from inside
  themselves), so the way was taken if and only if that statement ran.
* A way that *falls out* of the statement (an ``if`` with no ``else``, a loop
  ending with no ``else``, a ``match`` that no case matched) goes where other
  code goes too. The rewrite gives it an ``else:`` (or ``case _:``) holding a
  *probe*: a ``pass`` statement, a ``NOP`` after compiling, on a line number of
  its own beyond any real line (:data:`PROBE_BASE` and up).
* A body on the header's own line (``if x: return``) is marked with a probe at
  its start, so that its exits can be told from the header's other ways.

Probes change nothing the program does: ``pass`` in an ``else`` or a
``case _:`` runs no code. Real statements keep their lines, so tracebacks,
warnings and ``inspect`` are unchanged; only ``co_lines()`` (and a
``sys.settrace`` debugger stepping through) show the probes' lines.

:func:`probe_source` rewrites a file and works out its *witness tables* by
walking the rewritten syntax tree with :mod:`mpcov.arcs`' builder: which arcs
the running of each real line implies, and which arcs each probe implies. A
measured process then turns the lines it saw into the same raw arcs a
tracer would record for the branch lines (``docs/branches.md``). This module
runs in a measured process only when a file's rewrite is not cached yet
(:mod:`mpcov.rewrite`).
"""

from __future__ import annotations

import ast
import sys
import warnings
from collections.abc import Callable, Iterator
from types import CodeType
from typing import Any, NamedTuple, TypeAlias

from mpcov.analysis import _code_lines, _is_irrefutable, analyze_source
from mpcov.arcs import _apply_fixes, _ArcBuilder, _constant_test, _normalize

#: The first probe line number. Real files stop far below it; probe lines
#: count up from it, one per probe, so any file can have about 1.6 billion.
PROBE_BASE = 1 << 29

#: Python 3.11's compiler gives some instructions it makes up (an
#: ``async with``'s end of body, for one) the line of the statement it
#: compiled last, which a probe at the end of a suite would be: that probe's
#: line would then run on ways that are not its own. From 3.12 such
#: instructions have no line. See :func:`_reset_lines`.
MADE_UP_LINES = sys.version_info < (3, 12)
#: The name of the ``global`` statements :func:`_reset_lines` adds (they set
#: the compiler's current line and compile to nothing; the name is never used).
RESET_NAME = "_mpcov_line_reset_"

Arc: TypeAlias = tuple[int, int]
#: Raw line -> the arcs its running implies; probe line, or (probe line,
#: instruction offset) for one copy of a probe the compiler duplicated ->
#: the arcs it implies.
Witnesses: TypeAlias = dict[int | tuple[int, int], tuple[Arc, ...]]


class _Rewriter:
    """Adds probes to a syntax tree, in place; remembers what it added."""

    def __init__(self, multiline: dict[int, int]) -> None:
        self._multiline = multiline
        self._next = PROBE_BASE
        # Header line -> the probe marking its same-line body.
        self.body_probes: dict[int, int] = {}
        # Header line -> lines its other ways enter (a `case`'s next case).
        self.header_entries: dict[int, set[int]] = {}
        # Body probe -> the line its jump is seen to go to first (a `with` or
        # `finally` on the way out), when that is not the jump's target.
        self.detours: dict[int, int] = {}
        # A `def` or `class` line holding its body -> (the probe starting the
        # body, the scope's first line, its decorators'): that line is run by
        # two code objects, the definition's and the body's, so its running
        # says nothing about the body's exit. A probe after the definition
        # tells its way on.
        self.scope_probes: dict[int, tuple[int, int]] = {}

    def _probe(self) -> ast.Pass:
        line = self._next
        self._next += 1
        return ast.Pass(lineno=line, col_offset=0, end_lineno=line, end_col_offset=0)

    def _first(self, line: int) -> int:
        return self._multiline.get(line, line)

    def rewrite(self, node: ast.AST, scopes: tuple[_Scope, ...] = ()) -> None:
        """Probe every branch statement in `node`, recursively. `scopes` are the
        enclosing constructs that a jump statement may have to pass through."""
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.stmt, ast.excepthandler, ast.match_case)):
                continue
            if isinstance(child, (ast.If, ast.While)):
                if not _constant_test(child.test)[0]:
                    self._suite_statement(child, scopes)
            elif isinstance(child, (ast.For, ast.AsyncFor)):
                self._suite_statement(child, scopes)
            elif isinstance(child, ast.Match):
                self._match(child, scopes)
            self._descend(child, scopes)

    def _descend(self, child: ast.AST, scopes: tuple[_Scope, ...]) -> None:
        """Walk into `child`'s suites with the scopes each of them is in."""
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self.rewrite(child, (_Scope("function", None),))
        elif isinstance(child, (ast.For, ast.AsyncFor, ast.While)):
            for stmt in child.body:
                self.rewrite_one(stmt, (*scopes, _Scope("loop", None)))
            for stmt in child.orelse:
                self.rewrite_one(stmt, scopes)
        elif isinstance(child, (ast.With, ast.AsyncWith)):
            inner = (*scopes, _Scope("with", self._first(child.lineno)))
            for stmt in child.body:
                self.rewrite_one(stmt, inner)
        elif isinstance(child, (ast.Try, ast.TryStar)):
            outer = scopes
            if child.finalbody:
                outer = (*scopes, _Scope("finally", self._first(child.finalbody[0].lineno)))
            body_scopes = (*outer, _Scope("handlers", None)) if child.handlers else outer
            for stmt in child.body:
                self.rewrite_one(stmt, body_scopes)
            for handler in child.handlers:
                self.rewrite(handler, outer)
            for stmt in [*child.orelse, *child.finalbody]:
                self.rewrite_one(stmt, outer if stmt in child.orelse else scopes)
        else:
            self.rewrite(child, scopes)

    def rewrite_one(self, stmt: ast.stmt, scopes: tuple[_Scope, ...]) -> None:
        """Probe one statement of a suite (and what it holds)."""
        holder = ast.Module(body=[stmt], type_ignores=[])
        self.rewrite(holder, scopes)

    def _suite_statement(
        self, node: ast.If | ast.While | ast.For | ast.AsyncFor, scopes: tuple[_Scope, ...]
    ) -> None:
        header = self._first(node.lineno)
        same_line = bool(node.body) and self._first(node.body[0].lineno) == header
        if same_line:
            self._body_probe(header, node.body, scopes, inner_loop=not isinstance(node, ast.If))
            if node.orelse:
                # Tell entering the `else` from the body's exits by a probe too.
                node.orelse.insert(0, self._probe())
        if not node.orelse:
            node.orelse = [self._probe()]

    def mark_scopes(self, tree: ast.AST) -> None:
        """Probe every function and class whose body is on its ``def``/``class``
        line: one probe where the body starts, one after the definition. Run
        before :meth:`rewrite`."""
        scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        for node in ast.walk(tree):  # a node's children are queued before it is seen
            for field in ("body", "orelse", "finalbody"):
                suite = getattr(node, field, None)
                if not isinstance(suite, list):
                    continue
                at = 0
                while at < len(suite):
                    stmt = suite[at]
                    if isinstance(stmt, scopes) and self._scope_body(stmt):
                        at += 1
                        suite.insert(at, self._probe())
                    at += 1

    def _scope_body(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> bool:
        """Probe the start of a body on its ``def``/``class`` line; False if it has none."""
        header = self._first(node.lineno)
        body = node.body
        if self._first(body[0].lineno) != header:
            return False
        probe = self._probe()
        first = min([header, *(self._first(d.lineno) for d in node.decorator_list)])
        self.scope_probes[header] = (probe.lineno, first)
        docstring = (
            isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        )
        body.insert(1 if docstring else 0, probe)  # a docstring stays the docstring
        return True

    def _body_probe(
        self, header: int, body: list[ast.stmt], scopes: tuple[_Scope, ...], inner_loop: bool
    ) -> None:
        """Mark a body on its header's line; note where its jump, if any, is seen to go."""
        probe = self._probe()
        self.body_probes[header] = probe.lineno
        jump = next((s for s in body if isinstance(s, _JUMPS)), None)
        if jump is not None:
            if inner_loop and isinstance(jump, (ast.Break, ast.Continue)):
                scopes = (*scopes, _Scope("loop", None))
            detour = _detour(jump, scopes)
            if detour is not None:
                self.detours[probe.lineno] = detour
        body.insert(0, probe)

    def _match(self, node: ast.Match, scopes: tuple[_Scope, ...]) -> None:
        cases = node.cases
        for case, after in zip(cases, [*cases[1:], None], strict=True):
            header = self._first(case.pattern.lineno)
            if case.body and self._first(case.body[0].lineno) == header:
                self._body_probe(header, case.body, scopes, inner_loop=False)
                if after is not None:
                    self.header_entries[header] = {self._first(after.pattern.lineno)}
        if not _is_irrefutable(cases[-1]):
            probe = self._probe()
            line = probe.lineno
            wildcard = ast.MatchAs(
                pattern=None, name=None, lineno=line, col_offset=0, end_lineno=line,
                end_col_offset=0,
            )
            cases.append(ast.match_case(pattern=wildcard, guard=None, body=[probe]))


class _Scope(NamedTuple):
    """A construct around a statement: ``function``, ``loop``, ``handlers`` (a
    ``try`` body with ``except`` clauses), ``with`` or ``finally``; `line` is
    where a jump passing through it is seen next (the ``with`` line, the first
    line of the ``finally`` body)."""

    kind: str
    line: int | None


_JUMPS = (ast.Return, ast.Break, ast.Continue, ast.Raise)


def _detour(jump: ast.stmt, scopes: tuple[_Scope, ...]) -> int | None:
    """Where a tracer sees `jump` go first, when a ``with`` exit or a ``finally``
    body runs on the way out (None: straight to its target)."""
    stop = {
        ast.Return: ("function",),
        ast.Break: ("loop", "function"),
        ast.Continue: ("loop", "function"),
        ast.Raise: ("handlers", "function"),
    }[type(jump)]
    for scope in reversed(scopes):
        if scope.kind in stop:
            return None
        if scope.line is not None:
            return scope.line
    return None


def _is_probe(node: ast.AST) -> bool:
    return isinstance(node, ast.Pass) and node.lineno >= PROBE_BASE


def _reset_lines(tree: ast.Module) -> list[tuple[list[ast.stmt], ast.stmt]]:
    """Python 3.11: after every statement of a suite that holds a probe, and
    after a probe that follows a definition, add ``global RESET_NAME`` on the
    line of that statement (of the definition), so that what the compiler
    makes up next gets a line that ran on every way through the statement,
    never a probe's line. Returns what it added, as (suite, statement), for
    :func:`_take_out` (the arc builder must not see them)."""
    added: list[tuple[list[ast.stmt], ast.stmt]] = []
    probed: dict[int, bool] = {}

    def holds_probe(stmt: ast.stmt) -> bool:
        known = probed.get(id(stmt))
        if known is None:
            known = probed[id(stmt)] = any(_is_probe(n) for n in ast.walk(stmt))
        return known

    definitions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    for node in list(ast.walk(tree)):
        for field in ("body", "orelse", "finalbody"):
            suite = getattr(node, field, None)
            if not isinstance(suite, list) or not suite or not isinstance(suite[0], ast.stmt):
                continue
            at = 0
            while at < len(suite):
                stmt = suite[at]
                if _is_probe(stmt):
                    before = suite[at - 1] if at else None
                    line = before.lineno if isinstance(before, definitions) else None
                else:
                    line = stmt.lineno if holds_probe(stmt) else None
                if line is not None:
                    reset = ast.Global(names=[RESET_NAME], lineno=line, col_offset=0,
                                       end_lineno=line, end_col_offset=0)
                    suite.insert(at + 1, reset)
                    added.append((suite, reset))
                    at += 1
                at += 1
    return added


def _take_out(added: list[tuple[list[ast.stmt], ast.stmt]]) -> None:
    """Remove what :func:`_reset_lines` added."""
    for suite, stmt in added:
        for at, one in enumerate(suite):
            if one is stmt:
                del suite[at]
                break


def probe_source(
    source: str, path: str, then: Callable[[ast.Module], CodeType] | None = None
) -> tuple[CodeType, Witnesses, Witnesses]:
    """Rewrite Python `source` (the text of file `path`) with branch probes.

    `then`, if given, makes the code that runs from the probed syntax tree
    (pytest rewriting the asserts of a test module): it may add statements on
    the lines of the statements it replaces, never new lines. The witnesses
    come from the probed tree alone (the arcs coverage.py sees in the source).

    Returns the compiled module code, the line witnesses (every raw line of a
    statement whose running implies arcs -> those arcs) and the probe
    witnesses (probe line -> the arcs it implies). Raises ``SyntaxError`` or
    ``ValueError`` for source that does not compile, like ``compile()``.
    """
    text = _normalize(source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = ast.parse(text, path)  # first: a SyntaxError is the compiler's own
        multiline = dict(analyze_source(text, path, exclude=()).multiline)
        rewriter = _Rewriter(multiline)
        rewriter.mark_scopes(tree)
        rewriter.rewrite(tree)
        resets = _reset_lines(tree) if MADE_UP_LINES else []
        code = compile(tree, path, "exec", dont_inherit=True)
        _take_out(resets)
    code_lines = frozenset(multiline.get(line, line) for line in _code_lines(code))
    builder = _ArcBuilder(code_lines, multiline)
    builder.build(tree)
    fixes = builder.with_exits.fixes(builder.arcs)
    graph = {arc for arc in _apply_fixes(builder.arcs, fixes, multiline) if arc[0] != arc[1]}
    by_line, by_probe = _witnesses(graph, rewriter)
    if then is not None:
        if MADE_UP_LINES:
            _reset_lines(tree)
        code = then(tree)
    by_probe.update(_per_copy_witnesses(code, graph, by_probe))
    return code, _expand_lines(by_line, multiline), by_probe


def _witnesses(graph: set[Arc], rewriter: _Rewriter) -> tuple[Witnesses, Witnesses]:
    """Which arcs each statement's running, and each probe, implies.

    `graph` holds the arcs of the rewritten tree. For each real line with more
    than one way on (and each header with a same-line body), every way is
    classified: into a probe (the arcs go on to the probe's real successors),
    out of a same-line body (implied by its body probe), or into a suite
    (implied by that suite's first statement).
    """
    ways: dict[int, set[int]] = {}
    for start, end in graph:
        ways.setdefault(start, set()).add(end)

    def onward(probe: int, seen: frozenset[int] = frozenset()) -> set[int]:
        found: set[int] = set()
        for end in ways.get(probe, ()):
            if end >= PROBE_BASE and end not in seen:
                found |= onward(end, seen | {probe})
            elif end < PROBE_BASE:
                found.add(end)
        return found

    by_line: dict[int, set[Arc]] = {}
    by_probe: dict[int, set[Arc]] = {}
    for start, ends in ways.items():
        if start >= PROBE_BASE:
            continue
        scope = rewriter.scope_probes.get(start)
        if scope is not None:
            # The body's exit is implied by the probe starting the body; the
            # definition's way on goes through the probe after it (below).
            probe, first = scope
            if -first in ends or -first in onward(probe):  # (a body of a docstring only)
                by_probe.setdefault(probe, set()).add((start, -first))
            ends = {end for end in ends if end != -first}
        body_probe = rewriter.body_probes.get(start)
        if len(ends) < 2 and body_probe is None and scope is None:
            continue
        entries = rewriter.header_entries.get(start, set())
        for end in ends:
            if end >= PROBE_BASE:
                for real in onward(end):
                    if real != start:
                        by_probe.setdefault(end, set()).add((start, real))
            elif body_probe is not None and end not in entries:
                # A jump through a `with` or `finally` is seen going there first.
                seen_end = rewriter.detours.get(body_probe, end)
                by_probe.setdefault(body_probe, set()).add((start, seen_end))
            elif end > 0:
                by_line.setdefault(end, set()).add((start, end))
    return (
        {line: tuple(sorted(arcs)) for line, arcs in by_line.items()},
        {line: tuple(sorted(arcs)) for line, arcs in by_probe.items()},
    )


def _per_copy_witnesses(code: CodeType, graph: set[Arc], by_probe: Witnesses) -> Witnesses:
    """Witnesses for each copy of the probes the compiler duplicated.

    The compiler copies a ``finally`` body once for each way out of its
    ``try`` (normal end, exception, each ``return``/``break``/``continue``),
    probes included. A way out of a branch line there leads somewhere else in
    each copy; a tracer sees the line that runs next. That line is found here
    by following each copy's bytecode from its probe, and keyed by
    ``(probe line, offset)``; a copy whose path cannot be followed without
    running it keeps the probe's witnesses.
    """
    import dis

    headers: dict[int, int] = {end: start for start, end in graph if end >= PROBE_BASE > start}
    found: Witnesses = {}
    for one in _all_code(code):
        copies: dict[int, list[int]] = {}
        for start, _end, line in one.co_lines():
            if line is not None and line >= PROBE_BASE and line in headers:
                copies.setdefault(line, []).append(start)
        duplicated = {line: offsets for line, offsets in copies.items() if len(offsets) > 1}
        if not duplicated:
            continue
        flow = _Flow(one, dis)
        for probe, offsets in duplicated.items():
            header = headers[probe]
            nexts = [flow.next_line(offset, (header, probe)) for offset in offsets]
            if any(line is None for line in nexts):
                continue
            for offset, line in zip(offsets, nexts, strict=True):
                assert line is not None
                found[probe, offset] = ((header, line),) if line != header else ()
    return found


def _all_code(code: CodeType) -> Iterator[CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _all_code(const)


class _Flow:
    """Follows one code object's bytecode the way it runs when nothing branches."""

    _JUMPS = frozenset({"JUMP_FORWARD", "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT"})
    _RETURNS = frozenset({"RETURN_VALUE", "RETURN_CONST"})
    _RAISES = frozenset({"RAISE_VARARGS", "RERAISE"})
    _STOPS = frozenset({"YIELD_VALUE", "SEND", "FOR_ITER", "END_ASYNC_FOR"})

    def __init__(self, code: CodeType, dis: Any) -> None:
        self._exit = -code.co_firstlineno
        self._instructions = {ins.offset: ins for ins in dis.get_instructions(code)}
        self._order = sorted(self._instructions)
        self._next = dict(zip(self._order, self._order[1:], strict=False))
        self._handlers = dis._parse_exception_table(code)
        self._branches = frozenset(dis.hasjrel) | frozenset(dis.hasjabs)

    def next_line(self, offset: int, skip: tuple[int, int]) -> int | None:
        """The first line, other than those in `skip`, that a tracer would see
        after the instruction at `offset`; the code object's exit (negative)
        when it returns or raises out first; None when a branch decides."""
        position: int | None = offset
        for _ in range(500):
            if position is None:
                return None
            ins = self._instructions[position]
            line = ins.positions.lineno if ins.positions else None
            if line is not None and line not in skip and 0 < line < PROBE_BASE:
                return int(line)
            name = ins.opname
            if name in self._JUMPS:
                position = int(ins.argval)
            elif name in self._RETURNS:
                return self._exit
            elif name in self._RAISES:
                position = self._handler(position)
                if position is None:
                    return self._exit
            elif name in self._STOPS or ins.opcode in self._branches:
                return None
            else:
                position = self._next.get(position)
        return None

    def _handler(self, offset: int) -> int | None:
        for entry in self._handlers:
            if entry.start <= offset < entry.end:
                return int(entry.target)
        return None


def _expand_lines(by_first_line: Witnesses, multiline: dict[int, int]) -> Witnesses:
    """Key the line witnesses by every raw line of their statements: a statement
    spread over lines may report any of them first."""
    expanded = dict(by_first_line)
    for line, first in multiline.items():
        if first in by_first_line:
            expanded[line] = by_first_line[first]
    return expanded
