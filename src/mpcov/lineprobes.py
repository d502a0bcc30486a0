"""Line probes: the syntax rewrite behind the ``probes`` core (CPython 3.11).

Python 3.11 has no ``sys.monitoring``, and ``sys.settrace`` costs a Python
call for every function call of the whole process, measured or not. The
``probes`` core (:mod:`mpcov.cores.lineprobe`) instead compiles each measured
file with a *probe* in front of every statement: a call, with no arguments,
of a function that is a constant of the code. Its first run records the line
(the statement's first line, the line the call is on) and turns the call
into a jump over itself, so that from then on the statement costs one jump
more than without mpcov.

This module makes the probed code; it runs in a measured process only when
a file's probed code is not cached yet (:mod:`mpcov.rewrite`). The probe
function cannot be marshalled: the code holds :data:`PLACEHOLDER` in its
place, which the core swaps for its probe function when the code is loaded.

Where probes go (each on the line a tracer would report, so that the lines
recorded are the lines ``sys.settrace`` reports, up to the statement they
belong to):

* before every statement of every suite, but after a docstring (which stays
  the docstring) and after ``from __future__`` imports (which must come
  first); a module's or class's docstring and those imports get probes after
  them. ``global`` and ``nonlocal`` run no code and get none. A decorated
  definition gets one for each decorator's line and one for its own;
* at the start of every ``except`` body, for that clause's line and the lines
  of the clauses tested before it; and a last ``except BaseException:`` that
  records every clause's line and re-raises (``raise`` re-raises the same
  exception with its traceback unchanged) for an exception that no clause
  matched, which a tracer sees testing each clause;
* at the start of every ``case`` body, for its pattern's line and those
  before it, and a last ``case _:`` recording them all when no case matches
  (unless the last case matches everything).
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Callable
from types import CodeType
from typing import Any

from mpcov.analysis import _is_irrefutable
from mpcov.cores.lineprobe import PLACEHOLDER

#: The warning 3.11's compiler gives for calling a constant: expected here.
_CALLED_CONSTANT = r"'bytes' object is not callable"

_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _where(line: int) -> dict[str, Any]:
    return {"lineno": line, "col_offset": 0, "end_lineno": line, "end_col_offset": 0}


def _probe(line: int) -> ast.stmt:
    where = _where(line)
    call = ast.Call(func=ast.Constant(value=PLACEHOLDER, **where), args=[], keywords=[], **where)
    return ast.Expr(call, **where)


def _probes(lines: list[int]) -> list[ast.stmt]:
    """One probe for each of `lines`, in order, without repeats."""
    return [_probe(line) for line in dict.fromkeys(lines)]


def _is_docstring(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def _probed_suite(owner: ast.AST, field: str, suite: list[ast.stmt]) -> list[ast.stmt]:
    """`suite` with its probes."""
    out: list[ast.stmt] = []
    start = 0
    first: list[int] = []  # lines of what runs before the first probe
    documented = isinstance(owner, (ast.Module, *_DEFINITIONS))
    if field == "body" and documented and _is_docstring(suite[0]):
        out.append(suite[0])
        start = 1
        if not isinstance(owner, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first.append(suite[0].lineno)  # a module's or class's runs: `__doc__ = ...`
    if isinstance(owner, ast.Module):
        while start < len(suite):
            stmt = suite[start]
            if not (isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__"):
                break
            out.append(stmt)  # they must come first
            first.append(stmt.lineno)
            start += 1
    out.extend(_probes(first))
    for stmt in suite[start:]:
        # Nothing to record for statements that run no code, and the probes
        # of `except` and `case` clauses (put first in their bodies) are probes.
        if not isinstance(stmt, (ast.Global, ast.Nonlocal)) and not _is_probe(stmt):
            lines = [stmt.lineno]
            if isinstance(stmt, _DEFINITIONS):
                lines = [d.lineno for d in stmt.decorator_list] + lines
            out.extend(_probes(lines))
        out.append(stmt)
    return out


def _probe_clauses(node: ast.Try | ast.TryStar | ast.Match) -> None:
    """Probes for ``except`` clauses and ``case`` patterns, tested in order."""
    if isinstance(node, ast.Match):
        tested: list[int] = []
        for case in node.cases:
            tested.append(case.pattern.lineno)
            case.body[:0] = _probes(tested)
        if not _is_irrefutable(node.cases[-1]):
            pattern = node.cases[-1].pattern
            wildcard = ast.MatchAs(pattern=None, name=None,
                                   **_where(pattern.end_lineno or pattern.lineno))
            node.cases.append(ast.match_case(pattern=wildcard, guard=None, body=_probes(tested)))
        return
    if not node.handlers:
        return
    tested = []
    for handler in node.handlers:
        tested.append(handler.lineno)
        handler.body[:0] = _probes(tested)
    if isinstance(node, ast.TryStar) or node.handlers[-1].type is None:
        return  # a bare `except:` matches everything; `except*` groups are left as they are
    where = _where(node.handlers[-1].lineno)
    again = _probes(tested)
    again.append(ast.Raise(exc=None, cause=None, **where))
    catch_all = ast.ExceptHandler(
        type=ast.Name(id="BaseException", ctx=ast.Load(), **where), name=None, body=again, **where
    )
    node.handlers.append(catch_all)


def add_probes(tree: ast.Module) -> None:
    """Put the probes into `tree`, in place."""
    nodes = list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, (ast.Try, ast.TryStar, ast.Match)):
            _probe_clauses(node)
    for node in nodes:
        for field in ("body", "orelse", "finalbody"):
            suite = getattr(node, field, None)
            if isinstance(suite, list) and suite and isinstance(suite[0], ast.stmt):
                setattr(node, field, _probed_suite(node, field, suite))
    if not any(_is_probe(stmt) for stmt in tree.body):
        # A module that runs no statement (an empty __init__.py): a tracer
        # sees its code run on line 0, which puts the file in the data.
        tree.body.append(_probe(0))


def _is_probe(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Call)
        and isinstance(stmt.value.func, ast.Constant)
        and stmt.value.func.value == PLACEHOLDER
    )


def compiler_with_line_probes(
    then: Callable[[ast.Module], CodeType] | None, path: str
) -> Callable[[ast.Module], CodeType]:
    """What compiles a syntax tree with line probes added (by `then`, if given):
    branch mode of the probes core adds them to the branch-probed tree, once
    its witnesses are known (line probes change no arc)."""

    def compile_probed(tree: ast.Module) -> CodeType:
        add_probes(tree)
        with warnings.catch_warnings():
            if then is None:
                warnings.simplefilter("ignore")  # as mpcov.probes: warned once by the usual compile
                return compile(tree, path, "exec", dont_inherit=True)
            # pytest's own warnings about asserts are shown, as without mpcov.
            warnings.filterwarnings("ignore", _CALLED_CONSTANT, SyntaxWarning)
            return then(tree)

    return compile_probed


def probe_lines(
    source: str, path: str, then: Callable[[ast.Module], CodeType] | None = None
) -> CodeType:
    """Compile Python `source` (the text of file `path`) with line probes.

    `then`, if given, compiles the probed tree instead (pytest rewriting the
    asserts of a test module). Raises ``SyntaxError`` or ``ValueError`` as
    ``compile()`` does.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = ast.parse(source, path)  # first: a SyntaxError is the compiler's own
    return compiler_with_line_probes(then, path)(tree)
