"""Tests of mpcov.select: the file-pattern matcher and the per-process file filter.

Users carry their coverage.py ``include``/``omit`` settings over unchanged, so
the matcher is compared with coverage.py's own ``GlobMatcher`` (fed by its
``prep_patterns``, exactly as ``coverage run`` does) on a table of patterns
and paths: any disagreement names the pattern and the paths.
"""

from __future__ import annotations

import marshal
import os
from pathlib import Path

import pytest
from coverage.files import GlobMatcher, prep_patterns

import mpcov
from mpcov.select import FileFilter, compile_glob, compile_rules, glob_match, glob_match_any

# --- The matcher against coverage.py ------------------------------------------------------------

# Patterns as users write them in [run] include/omit. "{cwd}" is replaced by the
# (real) directory the patterns are compiled in, "{parent}" by its parent.
PATTERNS = [
    # leading */ and **/
    "*/foo/*",
    "*/foo/*.py",
    "**/foo/*.py",
    "*/tests/*",
    "**/tests/**/*.py",
    "*/site-packages/*",
    "*/a/b/*",
    # trailing /* and /**
    "{cwd}/src/*",
    "{cwd}/src/**",
    "/abs/x/*",
    "/abs/x/**/*",
    # * within a component
    "*.py",
    "*_test.py",
    "test_*",
    "*/foo*bar.py",
    "/abs/*/y.py",
    "/abs/x*/y.py",
    "/abs/*x*/*.py",
    # ?
    "?x.py",
    "/abs/t_?.py",
    "/abs/??/y.py",
    "*/a?c.py",
    # sets
    "[ab]/x.py",
    "[ab]*.py",
    "*/a[0-9].py",
    "*/a[bc]c.py",
    "a[!b]c.py",
    "[!a]*.py",
    "a[^b]c.py",
    "*/a[^b]c.py",
    "/q/a[^b]c.py",
    "/q/[a-c][x-z].py",
    "/q/a[-b]c.py",
    # no "/" at all: a file name anywhere
    "foo.py",
    "setup.py",
    "src",
    "x.py",
    # relative patterns, made absolute against cwd
    "src/*",
    "src/*.py",
    "src/**/*.py",
    "./src/*.py",
    "src/../lib/*",
    "../other/*",
    "src/",
    "sub/dir/x.py",
    "pkg/*/mod.py",
    # Windows separators in a pattern
    "src\\*.py",
    "*\\foo\\*",
    # absolute, not normalised
    "/abs//x/*",
    "/abs/./x/*",
    # wildcards spanning components
    "*/*/*.py",
    "*",
    "*/*",
    "/*",
]

PATHS = [
    "{cwd}/foo.py",
    "{cwd}/x.py",
    "{cwd}/setup.py",
    "{cwd}/src",
    "{cwd}/src/foo.py",
    "{cwd}/src/a/foo.py",
    "{cwd}/src/a/b/foo_test.py",
    "{cwd}/src/test_a.py",
    "{cwd}/srcx/foo.py",
    "{cwd}/lib/l.py",
    "{cwd}/a/x.py",
    "{cwd}/b/x.py",
    "{cwd}/c/x.py",
    "{cwd}/sub/dir/x.py",
    "{cwd}/pkg/inner/mod.py",
    "{cwd}/pkg/a/b/mod.py",
    "{cwd}/tests/t.py",
    "{cwd}/tests/unit/t.py",
    "{cwd}/foo/b.py",
    "/x/foo/b.py",
    "/x/foo/b/c.py",
    "/x/y/foo/b.py",
    "/x/foobar.py",
    "/x/foo/foo_bar.py",
    "/x/foozbar.py",
    "/abs/x/y.py",
    "/abs/x/z/y.py",
    "/abs/xy/y.py",
    "/abs/ab/y.py",
    "/abs/abc/y.py",
    "/abs/t_1.py",
    "/abs/t_12.py",
    "/abs/q/t_1.py",
    "/abs/axb/c.py",
    "/other/z.py",
    "{parent}/other/z.py",
    "/q/a1.py",
    "/q/a12.py",
    "/q/!x.py",
    "/q/ax.py",
    "/q/bx.py",
    "/q/cy.py",
    "/q/dz.py",
    "/q/abc.py",
    "/q/acc.py",
    "/q/a!c.py",
    "/q/a-c.py",
    "/q/a/c.py",
    "/q/a?c.py",
    "/q/bac.py",
    "/t/tests/q.py",
    "/t/tests/a/q.py",
    "/t/tests",
    "/p/src",
    "/usr/lib/python3/site-packages/pkg/m.py",
    "/a/b/c.py",
    "/z/a/b/c/d.py",
    "/top.py",
    "/f.pyc",
]


# Patterns that rightly match every absolute path.
UNIVERSAL = {"*", "*/*", "/*"}


def _real_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """coverage.py makes relative patterns absolute against the real current directory."""
    cwd = str(tmp_path.resolve())
    monkeypatch.chdir(cwd)
    return cwd


def _fill(template: str, cwd: str) -> str:
    return template.replace("{cwd}", cwd).replace("{parent}", os.path.dirname(cwd))


@pytest.mark.parametrize("pattern", PATTERNS)
def test_glob_agrees_with_coverage_py(
    pattern: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every pattern selects exactly the files coverage.py's include/omit would select."""
    cwd = _real_cwd(tmp_path, monkeypatch)
    pattern = _fill(pattern, cwd)
    theirs = GlobMatcher(prep_patterns([pattern]))
    ours = compile_glob(pattern, cwd)
    disagreements = []
    for template in PATHS:
        path = _fill(template, cwd)
        expected = theirs.match(path)
        if glob_match_any([ours], path) != expected:
            disagreements.append(f"{path} (coverage.py: {'match' if expected else 'no match'})")
    assert disagreements == []


def test_the_table_exercises_both_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each pattern matches some paths of the table and misses others: the comparison bites."""
    cwd = _real_cwd(tmp_path, monkeypatch)
    always_or_never = []
    for pattern in PATTERNS:
        matcher = GlobMatcher(prep_patterns([_fill(pattern, cwd)]))
        answers = {matcher.match(_fill(p, cwd)) for p in PATHS}
        if answers != ({True} if pattern in UNIVERSAL else {True, False}):
            always_or_never.append(pattern)
    assert always_or_never == []


def test_glob_match_any_accepts_windows_separators_in_paths() -> None:
    """A path with backslashes matches like the same path with slashes."""
    glob = compile_glob("*/foo/*.py", "/cwd")
    assert glob_match_any([glob], "C:\\proj\\foo\\a.py")
    assert not glob_match_any([glob], "C:\\proj\\bar\\a.py")


def test_glob_match_any_of_several() -> None:
    """A path is selected when any one of several patterns matches it."""
    globs = [compile_glob("*/a/*", "/"), compile_glob("*.txt", "/")]
    assert glob_match_any(globs, "/x/a/m.py")
    assert glob_match_any(globs, "/x/b/notes.txt")
    assert not glob_match_any(globs, "/x/b/m.py")
    assert not glob_match_any([], "/x/a/m.py")


def test_compiled_globs_survive_marshal() -> None:
    """Compiled patterns travel to children in the marshal-ed manifest."""
    glob = compile_glob("*/te[sx]t?/**/*.py", "/cwd")
    copy = marshal.loads(marshal.dumps(glob, 4))
    assert copy == glob
    assert glob_match(copy, "/r/test1/a/b/m.py")
    assert not glob_match(copy, "/r/test12/m.py")


def test_relative_pattern_uses_given_cwd_not_process_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rules compiled by the parent keep meaning the parent's directory in every child."""
    monkeypatch.chdir(tmp_path)
    glob = compile_glob("src/*", "/project")
    assert glob_match(glob, "/project/src/m.py")
    assert not glob_match(glob, f"{tmp_path}/src/m.py")


# --- FileFilter ---------------------------------------------------------------------------------


def _filter(tmp_path: Path, **rules: list[str]) -> FileFilter:
    return FileFilter(compile_rules(cwd=str(tmp_path), **rules))


def _write(path: Path, text: str = "") -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_user_code_is_measured_by_default(tmp_path: Path) -> None:
    """With no rules, the program's own files are measured."""
    file_filter = _filter(tmp_path)
    assert file_filter.wanted(_write(tmp_path / "proj" / "app.py"))
    assert file_filter.wanted(str(tmp_path / "proj" / "not_yet_written.py"))


def test_stdlib_is_not_measured_by_default(tmp_path: Path) -> None:
    """The standard library is never measured unless asked for."""
    file_filter = _filter(tmp_path)
    assert not file_filter.wanted(os.__file__)
    import json

    assert json.__file__ is not None
    assert not file_filter.wanted(json.__file__)


@pytest.mark.parametrize("kind", ["site-packages", "dist-packages"])
def test_installed_packages_are_not_measured_by_default(tmp_path: Path, kind: str) -> None:
    """Third-party code (any site-packages or dist-packages directory) is left alone."""
    file_filter = _filter(tmp_path)
    assert not file_filter.wanted(f"/opt/py/lib/python3.12/{kind}/requests/api.py")
    assert not file_filter.wanted(str(tmp_path / kind / "pkg.py"))
    # A directory merely named like it is not third-party.
    assert file_filter.wanted(str(tmp_path / f"my-{kind}" / "pkg.py"))


def test_files_of_a_virtualenv_are_not_measured_by_default(tmp_path: Path) -> None:
    """Anything under a directory holding pyvenv.cfg is an environment, not user code."""
    venv = tmp_path / "venv"
    _write(venv / "pyvenv.cfg", "home = /usr/bin\n")
    file_filter = _filter(tmp_path)
    assert not file_filter.wanted(_write(venv / "lib" / "python3.12" / "tool" / "m.py"))
    assert not file_filter.wanted(_write(venv / "src" / "editable" / "m.py"))
    assert file_filter.wanted(_write(tmp_path / "proj" / "m.py"))


def test_pseudo_files_are_never_measured(tmp_path: Path) -> None:
    """Code compiled from strings and frozen modules has no source file to report."""
    file_filter = _filter(tmp_path, include=["*"])
    for name in ("<string>", "<frozen os>", "<stdin>", "<frozen importlib._bootstrap>", ""):
        assert not file_filter.wanted(name), name


def test_mpcov_itself_is_never_measured(tmp_path: Path) -> None:
    """mpcov's own code stays out of the report even when every file is included."""
    assert mpcov.__file__ is not None
    own = os.path.join(os.path.dirname(mpcov.__file__), "store.py")
    assert not FileFilter(compile_rules(cwd=str(tmp_path))).wanted(own)
    assert not FileFilter(compile_rules(cwd=str(tmp_path), include=["*"])).wanted(own)
    assert not FileFilter(
        compile_rules(cwd=str(tmp_path), source_dirs=[own.rsplit("/", 2)[0]])
    ).wanted(own)


def test_mpcov_dir_can_be_given(tmp_path: Path) -> None:
    """The directory treated as mpcov's own can be handed in (a copy elsewhere)."""
    other = tmp_path / "vendored_mpcov"
    file_filter = FileFilter(compile_rules(cwd=str(tmp_path)), mpcov_dir=str(other))
    assert not file_filter.wanted(_write(other / "select.py"))
    assert file_filter.wanted(_write(tmp_path / "app.py"))


def test_never_dirs_are_not_measured_whatever_the_rules(tmp_path: Path) -> None:
    """The sitecustomize hook directory is excluded even under `source` or `include`."""
    hook = tmp_path / "hook"
    path = _write(hook / "sitecustomize.py")
    assert not _filter(tmp_path, never=[str(hook)]).wanted(path)
    assert not _filter(tmp_path, never=[str(hook)], include=["*"]).wanted(path)
    assert not _filter(tmp_path, never=[str(hook)], source_dirs=[str(tmp_path)]).wanted(path)
    # Only that directory: a sibling with the same prefix is measured.
    assert _filter(tmp_path, never=[str(hook)]).wanted(_write(tmp_path / "hooks" / "m.py"))


def test_relative_never_dir_is_relative_to_the_rules_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like every other rule, a relative `never` names a directory of `cwd`."""
    monkeypatch.chdir("/")
    path = _write(tmp_path / "hook" / "sitecustomize.py")
    assert not _filter(tmp_path, never=["hook"]).wanted(path)


def test_never_dir_reached_through_a_symlink(tmp_path: Path) -> None:
    """A `never` directory is excluded under its real name and under a link to it."""
    real = tmp_path / "real_hook"
    path = _write(real / "sitecustomize.py")
    link = tmp_path / "link_hook"
    link.symlink_to(real)
    file_filter = _filter(tmp_path, never=[str(link)])
    assert not file_filter.wanted(path)
    assert not file_filter.wanted(str(link / "sitecustomize.py"))


def test_source_dirs_select_only_their_files(tmp_path: Path) -> None:
    """With `source`, only files under those directories are measured."""
    file_filter = _filter(tmp_path, source_dirs=["src", str(tmp_path / "lib")])
    assert file_filter.wanted(_write(tmp_path / "src" / "pkg" / "m.py"))
    assert file_filter.wanted(_write(tmp_path / "lib" / "l.py"))
    assert not file_filter.wanted(_write(tmp_path / "tests" / "t.py"))
    assert not file_filter.wanted(_write(tmp_path / "srcx" / "m.py"))  # a prefix is not a dir
    assert not file_filter.wanted(str(tmp_path / "src"))


def test_source_dir_inside_site_packages_is_measured(tmp_path: Path) -> None:
    """Measuring an installed package works by naming it in `source`."""
    installed = tmp_path / "venv" / "lib" / "python3.12" / "site-packages" / "mypkg"
    _write(tmp_path / "venv" / "pyvenv.cfg")
    path = _write(installed / "core.py")
    assert not _filter(tmp_path).wanted(path)
    file_filter = _filter(tmp_path, source_dirs=[str(installed)])
    assert file_filter.wanted(path)
    assert not file_filter.wanted(_write(installed.parent / "other" / "m.py"))


def test_source_dir_matches_files_reached_through_a_symlink(tmp_path: Path) -> None:
    """A file imported through a symlinked directory still belongs to its source dir."""
    real = tmp_path / "real"
    path = _write(real / "m.py")
    link = tmp_path / "link"
    link.symlink_to(real)
    file_filter = _filter(tmp_path, source_dirs=[str(real)])
    assert file_filter.wanted(path)
    assert file_filter.wanted(str(link / "m.py"))


def test_source_wins_over_include(tmp_path: Path) -> None:
    """As in coverage.py, `include` is ignored when `source` is given."""
    file_filter = _filter(tmp_path, source_dirs=["src"], include=["*/tests/*"])
    assert not file_filter.wanted(_write(tmp_path / "tests" / "t.py"))
    assert file_filter.wanted(_write(tmp_path / "src" / "m.py"))


def test_include_selects_only_matching_files(tmp_path: Path) -> None:
    """With `include`, files outside the patterns are not measured."""
    file_filter = _filter(tmp_path, include=["src/*", "*/tools/*.py"])
    assert file_filter.wanted(_write(tmp_path / "src" / "a" / "m.py"))
    assert file_filter.wanted("/elsewhere/tools/t.py")
    assert not file_filter.wanted(_write(tmp_path / "tests" / "t.py"))


def test_include_can_reach_installed_code(tmp_path: Path) -> None:
    """An explicit `include` is authoritative: third-party code it names is measured."""
    file_filter = _filter(tmp_path, include=["*/site-packages/mypkg/*"])
    assert file_filter.wanted("/v/lib/python3.12/site-packages/mypkg/m.py")
    assert not file_filter.wanted("/v/lib/python3.12/site-packages/other/m.py")


def test_omit_excludes_from_every_selection(tmp_path: Path) -> None:
    """`omit` removes files whether they were selected by default, source or include."""
    test_file = _write(tmp_path / "src" / "test_m.py")
    keep = _write(tmp_path / "src" / "m.py")
    for extra in ({}, {"source_dirs": ["src"]}, {"include": ["src/*"]}):
        file_filter = _filter(tmp_path, omit=["*/test_*.py"], **extra)
        assert not file_filter.wanted(test_file), extra
        assert file_filter.wanted(keep), extra


def test_omit_by_file_name_anywhere(tmp_path: Path) -> None:
    """An omit pattern without "/" names a file in any directory, as in coverage.py."""
    file_filter = _filter(tmp_path, omit=["conftest.py"])
    assert not file_filter.wanted(_write(tmp_path / "conftest.py"))
    assert not file_filter.wanted(_write(tmp_path / "tests" / "unit" / "conftest.py"))
    assert file_filter.wanted(_write(tmp_path / "tests" / "unit" / "test_x.py"))


def test_relative_filenames_are_resolved_against_the_process_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``co_filename`` may be relative (``python sub/app.py``): it means a file of the cwd."""
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "sub" / "app.py")
    assert _filter(tmp_path, include=["sub/*"]).wanted(os.path.join("sub", "app.py"))
    assert not _filter(tmp_path, omit=["sub/*"]).wanted(os.path.join("sub", "app.py"))


def test_rules_survive_the_manifest(tmp_path: Path) -> None:
    """Rules are plain data: after marshal (the manifest) they select the same files."""
    rules = compile_rules(
        cwd=str(tmp_path), source_dirs=["src"], omit=["*/gen_*.py"], never=["hook"]
    )
    copy = marshal.loads(marshal.dumps(rules, 4))
    files = [
        _write(tmp_path / "src" / "m.py"),
        _write(tmp_path / "src" / "gen_x.py"),
        _write(tmp_path / "other.py"),
    ]
    assert [FileFilter(copy).wanted(f) for f in files] == [True, False, False]
    assert [FileFilter(rules).wanted(f) for f in files] == [True, False, False]


def test_empty_rules_mean_defaults(tmp_path: Path) -> None:
    """A manifest without rules (or an old one) measures user code and nothing else."""
    file_filter = FileFilter({})
    assert file_filter.wanted(_write(tmp_path / "m.py"))
    assert not file_filter.wanted(os.__file__)


def test_decisions_are_cached_per_file_name(tmp_path: Path) -> None:
    """A file is judged once per process: later changes on disk don't flip the decision."""
    directory = tmp_path / "later_a_venv"
    path = _write(directory / "m.py")
    file_filter = _filter(tmp_path)
    assert file_filter.wanted(path)
    assert file_filter.cache == {path: True}
    _write(directory / "pyvenv.cfg")
    assert file_filter.wanted(path)  # cached
    assert not _filter(tmp_path).wanted(path)  # a new process sees the venv


def test_virtualenv_answers_are_shared_by_a_directory_tree(tmp_path: Path) -> None:
    """Looking for pyvenv.cfg walks up once: sibling files reuse what was found."""
    venv = tmp_path / "venv"
    _write(venv / "pyvenv.cfg")
    first = _write(venv / "a" / "b" / "one.py")
    second = _write(venv / "a" / "c" / "two.py")
    outside = _write(tmp_path / "proj" / "a" / "three.py")
    file_filter = _filter(tmp_path)
    assert not file_filter.wanted(first)
    (venv / "pyvenv.cfg").unlink()
    # venv/a is known to be inside the environment: no second look at the disk.
    assert not file_filter.wanted(second)
    assert file_filter.wanted(outside)
    _write(tmp_path / "proj" / "pyvenv.cfg")
    assert file_filter.wanted(_write(tmp_path / "proj" / "a" / "four.py"))
