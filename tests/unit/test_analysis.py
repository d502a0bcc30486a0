"""Unit tests for mpcov.analysis: statements, exclusions, errors and the cache.

The expected sets are what coverage.py 7.17 reports for the same sources on
Python 3.11, 3.12 and 3.13 (they agree on all three).
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from mpcov.analysis import (
    DEFAULT_EXCLUDE,
    Analysis,
    AnalysisCache,
    analyze_file,
    analyze_source,
)
from mpcov.errors import ConfigError, NoSourceError, NotPythonError


def analyze(source: str, exclude: tuple[str, ...] = DEFAULT_EXCLUDE) -> Analysis:
    return analyze_source(textwrap.dedent(source), "example.py", exclude)


def check(
    a: Analysis,
    statements: set[int],
    excluded: set[int] | None = None,
    multiline: dict[int, int] | None = None,
) -> None:
    assert sorted(a.statements) == sorted(statements)
    assert sorted(a.excluded) == sorted(excluded or set())
    if multiline is not None:
        assert dict(a.multiline) == multiline


# -- statements ---------------------------------------------------------------


def test_simple_module_with_multiline_statements() -> None:
    a = analyze(
        """\
        '''Module doc.'''
        import os
        x = (1,
             2)
        y = 3 \\
            + 4
        """
    )
    check(a, {2, 3, 5}, multiline={4: 3, 6: 5})


def test_uncalled_function_has_def_line_and_missing_body() -> None:
    a = analyze(
        """\
        def f(a,
              b):
            '''Doc
            string.'''
            return a + b
        """
    )
    check(a, {1, 5}, multiline={2: 1, 4: 3})
    # Only the def ran: the tracer may report its first line or a continuation line.
    assert a.executed([2]) == {1}
    assert a.missing([1]) == {5}
    assert a.missing([1, 5]) == frozenset()


def test_decorators_are_their_own_statements() -> None:
    a = analyze(
        """\
        @dec1
        @dec2(
            arg)
        def f():
            pass

        @dataclass
        class C:
            '''Doc.'''
            x: int = 0
            def m(self): return 1
        """
    )
    check(a, {1, 2, 4, 5, 7, 8, 10, 11}, multiline={3: 2})


def test_async_lambdas_comprehensions_generators() -> None:
    a = analyze(
        """\
        async def g():
            await h()
            async with a as b:
                pass
            async for i in b:
                yield i
        f = lambda x: (
            x + 1)
        sq = [i * i
              for i in range(3)]
        gen = (i for i in
               range(3))
        """
    )
    check(a, {1, 2, 3, 4, 5, 6, 7, 9, 11}, multiline={8: 7, 10: 9, 12: 11})


def test_match_statement() -> None:
    a = analyze(
        """\
        match cmd:
            case [x, y]:
                a = 1
            case {"k": v} if v:
                a = 2
            case _:
                a = 3
        """
    )
    check(a, {1, 2, 3, 4, 5, 6, 7})


def test_try_line_is_a_statement_else_and_finally_are_not() -> None:
    a = analyze(
        """\
        try:
            a = 1
        except (ValueError,
                TypeError) as e:
            a = 2
        else:
            a = 4
        finally:
            a = 5
        """
    )
    check(a, {1, 2, 3, 5, 7, 9}, multiline={4: 3})


def test_loops_constant_conditions_and_simple_statements() -> None:
    a = analyze(
        """\
        def w():
            while True:
                if x:
                    break
            while 1:
                pass
        def consts():
            if 0:
                dead = 1
            if False:
                dead = 2
            elif x:
                live = 0
            if __debug__:
                live = 1
            if not __debug__:
                dead = 3
            while False:
                dead = 4
            return
            after_return = 5
        def misc(x):
            global G
            for i in x:
                continue
            else:
                done = 1
            with open(p) as f, \\
                 open(q) as g:
                pass
            assert x, "msg"
            n = 1
            del n
            yield
        class K:
            def inner(self):
                def closure():
                    nonlocal_ = 1
                return closure
        """
    )
    # Not statements: dead code the compiler drops (9, 11, 17, 19, 21), the
    # `global` line (23), `else:` (26).
    not_statements = {9, 11, 17, 19, 21, 23, 26, 29}
    check(a, set(range(1, 40)) - not_statements, multiline={29: 28})


def test_docstrings_are_not_statements_but_f_strings_are() -> None:
    a = analyze(
        """\
        def f():
            '''Doc.'''; x = 1
            return x
        class K:
            "doc"
        def g():
            f'''not a docstring'''
            return 1
        """
    )
    # Line 2 goes with its docstring, as in coverage.py.
    check(a, {1, 3, 4, 6, 7, 8})


def test_multiline_strings() -> None:
    a = analyze(
        """\
        x = '''
        a
        b'''
        y = f'''{x}
        c'''
        """
    )
    check(a, {1, 4}, multiline={2: 1, 3: 1, 5: 4})


def test_one_line_compound_statements() -> None:
    a = analyze(
        """\
        if x: y = 1  # pragma: no cover
        z = 2
        for i in x: pass
        class E(Exception): pass
        def f(): return 1
        a = 1; b = 2
        """
    )
    check(a, {2, 3, 4, 5, 6}, {1})


@pytest.mark.parametrize("source", ["", "\n\n", "# only a comment\n\n", "#!/usr/bin/env python\n"])
def test_files_without_code_have_no_statements(source: str) -> None:
    check(analyze(source), set())


def test_executed_keeps_only_statements() -> None:
    a = analyze("x = [\n    1,\n]\n'''a\nstring'''\n")
    assert a.first_line(3) == 1
    assert a.first_line(7) == 7
    assert a.executed([2, 3, 5, 99]) == {1, 4}
    assert a.missing([]) == {1, 4}


# -- exclusions ---------------------------------------------------------------


def test_excluded_if_keeps_its_else() -> None:
    a = analyze(
        """\
        if x:  # pragma: no cover
            a = 1
            # a comment

            b = 2
        else:
            c = 3
        d = 4
        """
    )
    # Comment and blank lines in an excluded suite are not listed.
    check(a, {7, 8}, {1, 2, 5})


def test_excluded_else_and_elif() -> None:
    a = analyze(
        """\
        if x:
            a = 1
        else:  # pragma: no cover
            c = 3
            e = 5
        d = 4
        """
    )
    check(a, {1, 2, 6}, {3, 4, 5})
    b = analyze(
        """\
        if x:
            a = 1
        elif y:  # pragma: no cover
            c = 3
        else:
            e = 5
        """
    )
    check(b, {1, 2, 6}, {3, 4})


def test_excluded_def_takes_every_line_of_it() -> None:
    a = analyze(
        """\
        def f():  # pragma: no cover
            a = 1

            # trailing comment
            return a
        def g():
            return 2
        """
    )
    check(a, {6, 7}, {1, 2, 3, 4, 5})


def test_excluded_decorator_excludes_the_definition() -> None:
    a = analyze(
        """\
        @dec  # pragma: no cover
        def f():
            a = 1
            return a

        x = 1
        """
    )
    check(a, {6}, {1, 2, 3, 4})


def test_excluded_continuation_line_excludes_the_statement() -> None:
    a = analyze(
        """\
        x = call(
            1,  # pragma: no cover
            2)
        def f(a,
              b,  # pragma: no cover
        ):
            return a
        y = 2
        """
    )
    check(a, {8}, {1, 4, 5, 6, 7}, {2: 1, 3: 1, 5: 4, 6: 4})


def test_excluded_class() -> None:
    a = analyze(
        """\
        class A:  # pragma: no cover
            '''Doc.'''
            x = 1

            def m(self):
                return 2
        z = 3
        """
    )
    check(a, {7}, {1, 2, 3, 4, 5, 6})


def test_excluded_try_and_except() -> None:
    a = analyze(
        """\
        try:  # pragma: no cover
            a = 1
        except ValueError:  # pragma: no cover
            a = 2
        finally:
            a = 3
        """
    )
    check(a, {6}, {1, 2, 3, 4})


def test_excluded_cases() -> None:
    a = analyze(
        """\
        match x:
            case 1:
                a = 1
            case _:  # pragma: no cover
                a = 2
        match y:
            case 1:
                a = 1
            case other:
                raise ValueError(other)  # pragma: no cover
        match z:
            case 1:  # pragma: no cover
                a = 1
            case 2:
                a = 2
        """
    )
    # An irrefutable `case` whose body is all excluded goes too (line 9).
    check(a, {1, 2, 3, 6, 7, 8, 11, 14, 15}, {4, 5, 9, 10, 12, 13})


def test_nested_blocks_in_an_excluded_suite() -> None:
    a = analyze(
        """\
        def outer():
            x = 1
            if x:  # pragma: no cover
                for i in x:
                    if i:
                        y = 1
                    else:
                        y = 2
                z = 3
            return x
        """
    )
    check(a, {1, 2, 10}, {3, 4, 5, 6, 7, 8, 9})


def test_default_type_checking_and_ellipsis_exclusions() -> None:
    a = analyze(
        """\
        from typing import TYPE_CHECKING, Protocol
        if TYPE_CHECKING:
            import os
        if typing.TYPE_CHECKING:
            import sys
        class P(Protocol):
            def m(self) -> int: ...
            def n(
                self,
            ) -> int:
                ...
            async def o(self): ...
        def stub(): ...
        """
    )
    check(a, {1, 6}, set(range(2, 15)) - {6}, {9: 8, 10: 8})


def test_pragma_spellings_and_comment_lines() -> None:
    a = analyze(
        """\
        # pragma: no cover
        x = 1
        y = 2  # PRAGMA: NO COVER
        z = 3  #pragma:no cover
        """
    )
    check(a, {2}, {1, 3, 4})


def test_exclude_also_style_patterns() -> None:
    a = analyze(
        """\
        class A:
            def m(self):
                raise NotImplementedError
            def n(self):
                raise NotImplementedError(
                    "no")
            def __repr__(self):
                return "A"
        if __name__ == "__main__":
            main()
        """,
        (r"raise NotImplementedError", r"if __name__ == .__main__.:", r"def __repr__"),
    )
    check(a, {1, 2, 4}, {3, 5, 7, 8, 9, 10}, {6: 5})


def test_multiline_exclusion_regex() -> None:
    a = analyze("a = 1\nb = 2\nc = 3\n", (r"a = 1\nb",))
    check(a, {3}, {1, 2})


def test_no_exclusions() -> None:
    check(analyze("x = 1  # pragma: no cover\n", ()), {1})


def test_invalid_exclusion_regex_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="Invalid exclusion regex"):
        analyze("x = 1\n", ("(unclosed",))


# -- source text ----------------------------------------------------------------

SAMPLE = "def f():\n    '''Doc.'''\n    return (1 +\n            2)\n\nx = f()\n"
SAMPLE_STATEMENTS = {1, 3, 6}


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(SAMPLE.encode(), id="plain"),
        pytest.param(b"\xef\xbb\xbf" + SAMPLE.encode(), id="bom"),
        pytest.param(SAMPLE.replace("\n", "\r\n").encode(), id="crlf"),
        pytest.param(SAMPLE.replace("\n", "\r").encode(), id="cr"),
        pytest.param(SAMPLE.rstrip("\n").encode(), id="no-final-newline"),
        pytest.param(SAMPLE.replace("    ", "\t").encode(), id="tabs"),
        pytest.param(SAMPLE.replace("\n\n", "\n\f\n").encode(), id="form-feed-line"),
    ],
)
def test_file_encodings_and_line_endings(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "mod.py"
    path.write_bytes(data)
    a = analyze_file(str(path))
    check(a, SAMPLE_STATEMENTS, multiline={4: 3})
    assert a.path == str(path)


def test_form_feed_before_indentation(tmp_path: Path) -> None:
    # Python resets the column at a form feed; coverage.py cannot parse this file.
    path = tmp_path / "ff.py"
    path.write_bytes(b"if x:\n    a = 1\n\f    b = 2\n")
    check(analyze_file(str(path)), {1, 2, 3})


def test_pep263_declared_encoding(tmp_path: Path) -> None:
    path = tmp_path / "latin.py"
    path.write_bytes("# -*- coding: latin-1 -*-\ns = 'caf\xe9'\n".encode("latin-1"))
    check(analyze_file(str(path)), {2})


def test_syntax_warnings_are_not_reported(tmp_path: Path) -> None:
    # Under filterwarnings=error a SyntaxWarning escaping would fail this test.
    check(analyze('x = "\\d"\nif x is 1:\n    pass\n'), {1, 2, 3})


# -- errors -------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.py")
    with pytest.raises(NoSourceError) as exc:
        analyze_file(path)
    assert str(exc.value) == f"No source for measured file '{path}': No such file or directory"


def test_directory_is_not_source(tmp_path: Path) -> None:
    with pytest.raises(NoSourceError, match="No source for measured file"):
        analyze_file(str(tmp_path))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(b"x = 1\ny = (\n", "'(' was never closed (line 2)", id="syntax"),
        pytest.param(b"if x:\n  a\n    b\n", "unexpected indent (line 3)", id="indent"),
        pytest.param(b"x = 1\ns = '\xff'\n", "can't decode byte 0xff", id="undecodable"),
        pytest.param(b"# coding: nope\nx = 1\n", "unknown encoding", id="bad-cookie"),
        pytest.param(b"x = 1\x00\n", "null bytes", id="null-byte"),
    ],
)
def test_unparsable_files(tmp_path: Path, data: bytes, reason: str) -> None:
    path = tmp_path / "bad.py"
    path.write_bytes(data)
    with pytest.raises(NotPythonError) as exc:
        analyze_file(str(path))
    message = str(exc.value)
    assert message.startswith(f"Couldn't parse '{path}' as Python: ")
    assert reason in message
    assert "\n" not in message


def test_undecodable_byte_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.py"
    path.write_bytes(b"x = 1\n\ns = '\xff'\n")
    with pytest.raises(NotPythonError, match=r"\(line 3\)$"):
        analyze_file(str(path))


# -- cache --------------------------------------------------------------------


def test_cache_analyses_each_file_once(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text("x = 1\n")
    cache = AnalysisCache()
    first = cache.analyze(str(path))
    assert cache.analyze(str(path)) is first
    assert len(cache) == 1
    other = cache.analyze(str(path), ())
    assert other is not first
    assert len(cache) == 2
    cache.clear()
    assert len(cache) == 0


def test_cache_sees_a_changed_file(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text("x = 1\n")
    cache = AnalysisCache()
    assert cache.analyze(str(path)).statements == {1}
    path.write_text("x = 1\ny = 2\n")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert cache.analyze(str(path)).statements == {1, 2}


def test_cache_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NoSourceError, match=r"nope\.py"):
        AnalysisCache().analyze(str(tmp_path / "nope.py"))
