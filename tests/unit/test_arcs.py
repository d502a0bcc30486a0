"""Unit tests for mpcov.arcs: the possible arcs of small sources, and judging executed arcs.

The expected arcs and exit counts are what coverage.py 7.17's
``PythonParser.arcs()`` and ``exit_counts()`` give for the same sources on
Python 3.11, 3.12 and 3.13 (they agree on all three). ``-n`` is the exit of
the code object whose first line is ``n`` (the module's is 1; a decorated
function's is its first decorator's line).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mpcov.analysis import DEFAULT_EXCLUDE
from mpcov.arcs import Arc, ArcAnalysis, BranchTotals, analyze_arcs, normalize_executed
from mpcov.config import DEFAULT_PARTIAL_ALWAYS, DEFAULT_PARTIAL_BRANCHES
from mpcov.errors import NotPythonError

PARTIAL = DEFAULT_PARTIAL_BRANCHES + DEFAULT_PARTIAL_ALWAYS


def analyze(source: str, exclude: tuple[str, ...] = DEFAULT_EXCLUDE) -> ArcAnalysis:
    return analyze_arcs(textwrap.dedent(source), "example.py", exclude=exclude, partial=PARTIAL)


def check(a: ArcAnalysis, arcs: set[Arc], branches: dict[int, int]) -> None:
    """`a` has exactly `arcs`, every line one exit except `branches` (line -> exits)."""
    assert sorted(a.arcs) == sorted(arcs)
    expected = {line: 1 for line, _ in arcs if line not in branches} | branches
    assert dict(a.exit_counts) == expected


# -- the statements that branch ---------------------------------------------------


def test_if_elif_else() -> None:
    a = analyze(
        """\
        if a:
            b = 1
        elif c:
            b = 2
        else:
            b = 3
        d = 4
        """
    )
    arcs = {(1, 2), (1, 3), (2, 7), (3, 4), (3, 6), (4, 7), (6, 7), (7, -1)}
    check(a, arcs, {1: 2, 3: 2})
    assert a.branch_lines() == {1, 3}
    assert a.n_branches == 4


def test_nested_ifs() -> None:
    a = analyze(
        """\
        if a:
            if b:
                c = 1
        d = 2
        """
    )
    check(a, {(1, 2), (1, 4), (2, 3), (2, 4), (3, 4), (4, -1)}, {1: 2, 2: 2})


def test_multiline_condition_is_one_statement() -> None:
    a = analyze(
        """\
        if (a and
                b):
            c = (1,
                 2)
        d = 3
        """
    )
    check(a, {(1, 3), (1, 5), (3, 5), (5, -1)}, {1: 2})


def test_while_with_else_break_and_continue() -> None:
    a = analyze(
        """\
        while a:
            if b:
                break
            if c:
                continue
            d = 1
        else:
            e = 2
        f = 3
        """
    )
    arcs = {(1, 2), (1, 8), (2, 3), (2, 4), (3, 9), (4, 5), (4, 6), (5, 1), (6, 1), (8, 9)}
    check(a, arcs | {(9, -1)}, {1: 2, 2: 2, 4: 2})


def test_while_true_only_ends_by_break() -> None:
    a = analyze(
        """\
        while True:
            if a:
                break
        b = 1
        """
    )
    check(a, {(1, 2), (2, 1), (2, 3), (3, 4), (4, -1)}, {2: 2})


def test_constant_while_never_exits() -> None:
    a = analyze(
        """\
        while 1:
            d = 5
        """
    )
    check(a, {(1, 2), (2, 1)}, {})


def test_for_else() -> None:
    a = analyze(
        """\
        for x in y:
            if x:
                break
        else:
            z = 1
        w = 2
        """
    )
    check(a, {(1, 2), (1, 5), (2, 1), (2, 3), (3, 6), (5, 6), (6, -1)}, {1: 2, 2: 2})


def test_async_for() -> None:
    a = analyze(
        """\
        async def f():
            async for x in y:
                await x
            return 1
        """
    )
    check(a, {(1, -1), (2, 3), (2, 4), (3, 2), (4, -1)}, {2: 2})


def test_one_line_loops_do_not_branch() -> None:
    # The body shares the loop's line: the arc from the line to itself is no arc.
    a = analyze(
        """\
        while x: x -= 1
        for i in y: pass
        z = 1
        """
    )
    check(a, {(1, 2), (2, 3), (3, -1)}, {})


def test_match_with_guard_and_wildcard() -> None:
    a = analyze(
        """\
        match x:
            case 1:
                a = 1
            case [b, c] if b:
                a = 2
            case _:
                a = 3
        d = 4
        """
    )
    arcs = {(1, 2), (2, 3), (2, 4), (3, 8), (4, 5), (4, 6), (5, 8), (6, 7), (7, 8), (8, -1)}
    check(a, arcs, {2: 2, 4: 2})


def test_match_without_wildcard_can_match_nothing() -> None:
    a = analyze(
        """\
        match x:
            case 1 | 2:
                a = 1
            case {"k": v}:
                a = 2
        d = 4
        """
    )
    check(a, {(1, 2), (2, 3), (2, 4), (3, 6), (4, 5), (4, 6), (5, 6), (6, -1)}, {2: 2, 4: 2})


# -- try, with, jumps ----------------------------------------------------------


def test_try_except_else_finally() -> None:
    # Only `raise` statements lead to handlers; `return` skips the `finally`.
    a = analyze(
        """\
        def f():
            try:
                a = 1
            except ValueError:
                return 2
            except KeyError:
                b = 3
            else:
                c = 4
            finally:
                d = 5
            return d
        """
    )
    arcs = {(1, -1), (2, 3), (3, 9), (4, 5), (5, -1), (6, 7), (7, 11), (9, 11), (11, 12)}
    check(a, arcs | {(12, -1)}, {})


def test_raise_goes_to_first_handler() -> None:
    a = analyze(
        """\
        def f(x):
            try:
                if x:
                    raise ValueError
                y = 1
            except ValueError:
                raise
            return y
        """
    )
    arcs = {(1, -1), (2, 3), (3, 4), (3, 5), (4, 6), (5, 8), (6, 7), (7, -1), (8, -1)}
    check(a, arcs, {3: 2})


def test_return_break_continue_in_try_finally() -> None:
    a = analyze(
        """\
        def f(x):
            for i in x:
                try:
                    if i:
                        return i
                    if i > 1:
                        break
                    continue
                finally:
                    z = 1
            return 0
        """
    )
    arcs = {(1, -1), (2, 3), (2, 11), (3, 4), (4, 5), (4, 6), (5, -1), (6, 7), (6, 8)}
    check(a, arcs | {(7, 11), (8, 2), (11, -1)}, {2: 2, 4: 2, 6: 2})


def test_try_star() -> None:
    a = analyze(
        """\
        try:
            a = 1
        except* ValueError:
            b = 2
        c = 3
        """
    )
    check(a, {(1, 2), (2, 5), (3, 4), (4, 5), (5, -1)}, {})


def test_with_exit_goes_straight_to_next_statement() -> None:
    a = analyze(
        """\
        with a as b:
            c = 1
            if c:
                d = 2
        e = 3
        """
    )
    check(a, {(1, 2), (2, 3), (3, 4), (3, 5), (4, 5), (5, -1)}, {3: 2})
    assert a.with_fixes == {(4, 1): (4, 5), (3, 1): (3, 5), (1, 5): None}


def test_nested_with_and_async_with() -> None:
    a = analyze(
        """\
        def f():
            with a:
                with b:
                    c = 1
            return c
        async def g():
            async with a:
                b = 1
        """
    )
    arcs = {(1, 6), (6, -1), (2, 3), (3, 4), (4, 5), (5, -1), (7, 8), (8, -6)}
    check(a, arcs, {})


def test_return_and_raise_in_the_middle() -> None:
    a = analyze(
        """\
        def f(x):
            if x:
                return 1
                y = 2
            raise ValueError
        """
    )
    check(a, {(1, -1), (2, 3), (2, 5), (3, -1), (5, -1)}, {2: 2})


def test_generator() -> None:
    a = analyze(
        """\
        def g(x):
            for i in x:
                yield i
            yield from x
        """
    )
    check(a, {(1, -1), (2, 3), (2, 4), (3, 2), (4, -1)}, {2: 2})


# -- code objects ---------------------------------------------------------------


def test_nested_functions_and_classes_have_exits_but_lambdas_and_comprehensions_none() -> None:
    a = analyze(
        """\
        def outer(x):
            def inner(y):
                return y
            class K:
                z = 1
            f = lambda q: q if q else 0
            g = [i for i in x if i]
            h = (i for i in x)
            return inner(x)
        """
    )
    arcs = {(1, -1), (2, 4), (3, -2), (4, 6), (5, -4), (6, 7), (7, 8), (8, 9), (9, -1)}
    check(a, arcs, {})


def test_decorators_run_before_the_definition() -> None:
    # f's code object starts at its first decorator, so it leaves to -1 like the module.
    a = analyze(
        """\
        @dec1
        @dec2(
            arg)
        def f():
            pass
        @dec3
        class C:
            pass
        """
    )
    check(a, {(1, 2), (2, 4), (4, 6), (5, -1), (6, 7), (7, -1), (8, -6)}, {})


def test_class_body_branches() -> None:
    a = analyze(
        """\
        class C:
            '''Doc.'''
            if a:
                x = 1
        """
    )
    check(a, {(1, -1), (2, 3), (3, -1), (3, 4), (4, -1)}, {3: 2})


@pytest.mark.parametrize("source", ["# just a comment\n", "'''Just a docstring.'''\n", ""])
def test_module_without_statements_just_exits(source: str) -> None:
    check(analyze(source), {(1, -1)}, {})


def test_assert_does_not_branch() -> None:
    a = analyze(
        """\
        assert a
        assert b, "msg"
        c = 1
        """
    )
    check(a, {(1, 2), (2, 3), (3, -1)}, {})


def test_constant_conditions_have_one_way() -> None:
    a = analyze(
        """\
        if 0:
            a = 1
        if __debug__:
            b = 2
        if True:
            c = 3
        else:
            c = 4
        """
    )
    check(a, {(1, 3), (3, 4), (4, 5), (5, 6), (6, -1)}, {})


# -- exclusions and pragmas -----------------------------------------------------


def test_excluded_lines_have_no_exits_and_are_no_exits() -> None:
    a = analyze(
        """\
        if a:  # pragma: no cover
            b = 1
        else:
            b = 2
        if c:
            d = 3
        else:  # pragma: no cover
            d = 4
        e = 5
        """
    )
    # The arcs stay (as coverage.py's do), but none counts.
    arcs = {(1, 2), (1, 4), (2, 5), (4, 5), (5, 6), (5, 8), (6, 9), (8, 9), (9, -1)}
    assert a.arcs == arcs
    assert dict(a.exit_counts) == {4: 1, 5: 1, 6: 1, 9: 1}
    assert a.excluded == {1, 2, 7, 8}
    assert a.branch_lines() == frozenset()


def test_exit_to_an_excluded_line_does_not_count() -> None:
    a = analyze(
        """\
        match x:
            case 1:
                a = 1
            case 2:
                a = 2  # pragma: no cover
            case _:
                a = 3
        """
    )
    assert {(4, 5), (4, 6)} <= a.arcs
    assert a.exit_counts[4] == 1
    assert a.branch_lines() == {2}
    executed = {(1, 2), (2, 4), (4, 6), (6, 7), (7, -1)}
    assert a.missing_arcs(executed) == [(2, 3)]
    assert a.executed_branch_arcs(executed) == [(2, 4)]


def test_no_branch_pragma_keeps_the_count_but_nothing_is_missing() -> None:
    a = analyze(
        """\
        if a:  # pragma: no branch
            b = 1
        c = 2
        if d:
            e = 3
        """
    )
    assert a.exit_counts[1] == 2
    assert a.no_branch == {1}
    executed = {(1, 2), (2, 3), (3, 4), (4, 5), (5, -1)}
    assert a.missing_arcs(executed) == [(4, -1)]
    assert a.totals(executed, set()) == BranchTotals(4, 1, 1)


def test_while_true_else_is_partial_always() -> None:
    a = analyze(
        """\
        while True:
            if a:
                break
        else:
            b = 1
        c = 2
        """
    )
    assert a.exit_counts[1] == 2
    assert a.no_branch == {1}
    assert a.missing_arcs({(1, 2), (2, 3), (3, 6), (6, -1)}) == [(2, 1)]


def test_partial_regex_on_a_continuation_line_marks_the_statement() -> None:
    a = analyze(
        """\
        if (a or
                b):  # pragma: no branch
            c = 1
        """
    )
    assert a.no_branch == {1}


def test_no_partial_regexes() -> None:
    a = analyze_arcs("if a:  # pragma: no branch\n    b = 1\n", "x.py", exclude=(), partial=())
    assert a.no_branch == frozenset()
    assert a.missing_arcs({(1, 2), (2, -1)}) == [(1, -1)]


def test_not_python() -> None:
    with pytest.raises(NotPythonError):
        analyze_arcs("if x\n", "bad.py", exclude=DEFAULT_EXCLUDE, partial=PARTIAL)


# -- executed arcs -------------------------------------------------------------


def test_normalize_executed_skips_the_with_detour() -> None:
    a = analyze(
        """\
        with a as b:
            c = 1
            if c:
                d = 2
        e = 3
        """
    )
    # What a tracer sees: the body's end jumps back to line 1 (__exit__), then on.
    raw = {(-1, 1), (1, 2), (2, 3), (3, 4), (4, 1), (1, 5), (5, -1)}
    executed = normalize_executed(raw, a)
    assert executed == {(-1, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, -1)}
    assert a.missing_arcs(executed) == [(3, 5)]
    assert a.executed_branch_arcs(executed) == [(3, 4)]
    assert a.totals(executed, set()) == BranchTotals(2, 1, 1)


def test_normalize_executed_maps_continuation_lines() -> None:
    a = analyze(
        """\
        def f(a,
              b):
            if (a or
                    b):
                return 1
            return 2
        """
    )
    # Lines 2 and 4 are continuation lines; a jump within one statement is no arc.
    raw = {(-1, 1), (1, 2), (2, -1), (-1, 3), (3, 4), (4, 3), (3, 5), (5, -1)}
    assert normalize_executed(raw, a) == {(-1, 1), (1, -1), (-1, 3), (3, 5), (5, -1)}


def test_self_arc_stands_for_the_only_exit() -> None:
    a = analyze(
        """\
        while x: x -= 1
        z = 1
        """
    )
    # A one-line loop jumps from its line to itself; its only exit is line 2.
    assert normalize_executed({(-1, 1), (1, 1)}, a) == {(-1, 1), (1, 2)}


def test_self_arc_of_a_branch_line_is_dropped() -> None:
    a = analyze("if x: y = 1\nelse: y = 2\n")
    assert a.branch_lines() == {1}
    assert normalize_executed({(-1, 1), (1, 1), (1, -1)}, a) == {(-1, 1), (1, -1)}


def test_unknown_arcs_are_not_branch_arcs() -> None:
    a = analyze("if x:\n    y = 1\n")
    executed = {(-1, 1), (1, 2), (2, -1), (7, 8)}
    assert a.executed_branch_arcs(executed) == [(1, 2)]
    assert a.missing_arcs(executed) == [(1, -1)]
    assert a.totals(executed, {1, 2}) == BranchTotals(2, 0, 1)


def test_arc_analysis_cache_analyses_each_version_once(tmp_path: Path) -> None:
    """The cache keys on path, file version and regexes; a missing file is NoSourceError."""
    from mpcov.arcs import ArcAnalysisCache
    from mpcov.errors import NoSourceError

    path = tmp_path / "m.py"
    path.write_text("if x:\n    y = 1\n")
    cache = ArcAnalysisCache()
    first = cache.analyze(str(path), exclude=(), partial=())
    assert cache.analyze(str(path), exclude=(), partial=()) is first
    assert first.branch_lines() == {1}
    assert cache.analyze(str(path), exclude=("y = 1",), partial=()).branch_lines() == frozenset()
    path.write_text("if x:\n    y = 1\nelse:\n    y = 2\n")
    assert cache.analyze(str(path), exclude=(), partial=()).arcs == {(1, 2), (1, 4), (2, -1),
                                                                     (4, -1)}
    assert len(cache) == 3
    with pytest.raises(NoSourceError):
        cache.analyze(str(tmp_path / "gone.py"), exclude=(), partial=())


def test_a_branch_line_that_is_no_statement_counts_as_partial() -> None:
    """coverage.py takes ``def f(): "doc"; return 1`` for a docstring line (no
    statement) yet gives it two exits; its missing exit is partial, since the
    line is no *missing* statement (coverage.py: 1 statement, 2 branches, 1
    partial, 67 %)."""
    a = analyze('def f(): "doc"; return 1\nx = 1\n')
    executed = normalize_executed({(-1, 1), (1, 2), (2, -1)}, a)
    assert a.missing_arcs(executed) == [(1, -1)]
    assert a.totals(executed, set()) == BranchTotals(2, 1, 1)
