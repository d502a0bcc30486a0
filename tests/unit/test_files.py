"""Tests of mpcov.files: ``[paths]`` remapping and how reports name files.

What users rely on: data measured on other machines, in containers, on
Windows CI shards, is reported against the files here, with the ``[paths]``
settings they already have for coverage.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import pytest
from coverage.files import PathAliases as CoveragePathAliases

from mpcov.files import PathAliases, relative_name

LOCAL = "/home/me/proj/src"


def _exists_only(*paths: str) -> Callable[[str], bool]:
    known = set(paths)
    return lambda path: path in known


def _aliases(
    *locations: str,
    cwd: str = "/home/me/proj",
    exists: Callable[[str], bool] = lambda path: False,
) -> PathAliases:
    return PathAliases([("source", list(locations))], cwd=cwd, exists=exists)


# --- Agreement with coverage.py -----------------------------------------------------------------

# (pattern, measured path); "{local}" is where the files are here.
AGREEMENT = [
    ("/ci/build/src", "/ci/build/src/pkg/a.py"),
    ("/ci/build/src", "/ci/build/srcx/a.py"),
    ("/ci/build/src", "/other/ci/build/src/a.py"),
    ("/ci/build/src/", "/ci/build/src/a.py"),
    ("*/src", "/ci/build/src/pkg/a.py"),
    ("*/src", "/src/a.py"),
    ("*/src", "/a/b/c/src/d.py"),
    ("*/src", "/a/b/c/lib/d.py"),
    ("/jenkins/*/src", "/jenkins/job1/src/a.py"),
    ("/jenkins/*/src", "/jenkins/job1/job2/src/a.py"),
    ("/ci/**/src", "/ci/src/a.py"),
    ("/ci/**/src", "/ci/x/src/a.py"),
    ("/ci/**/src", "/ci/x/y/src/a.py"),
    ("/ci/**/src", "/elsewhere/src/a.py"),
    ("/ci/p?/src", "/ci/p1/src/a.py"),
    ("/ci/p?/src", "/ci/p12/src/a.py"),
    ("C:\\ci\\proj\\src", "C:\\ci\\proj\\src\\pkg\\a.py"),
    ("C:\\ci\\proj\\src", "c:\\ci\\proj\\src\\a.py"),
    ("C:\\ci\\proj\\src", "C:\\CI\\Proj\\src\\a.py"),
    ("C:\\ci\\proj\\src", "C:/ci/proj/src/a.py"),
    ("C:\\ci\\proj\\src", "D:\\ci\\proj\\src\\a.py"),
    ("C:\\ci\\proj\\src\\", "C:\\ci\\proj\\src\\a.py"),
    ("*\\proj\\src", "D:\\a\\b\\proj\\src\\m.py"),
    ("/Ci/Src", "/ci/src/a.py"),
]


@pytest.mark.parametrize(("pattern", "measured"), AGREEMENT)
def test_remapping_agrees_with_coverage_py(pattern: str, measured: str) -> None:
    """With the same [paths] entry, a measured path lands where coverage.py puts it."""
    theirs = CoveragePathAliases(relative=False)
    theirs.add(pattern, LOCAL)
    expected = theirs.map(measured, exists=lambda path: True)
    if expected != measured:  # remapped: coverage.py leaves "/" runs and "." as they come
        expected = os.path.normpath(expected)
    assert _aliases(LOCAL, pattern).map(measured) == expected


# --- Behaviour ----------------------------------------------------------------------------------


def test_windows_paths_measured_elsewhere() -> None:
    """A Windows CI shard's paths become local POSIX paths, separators converted."""
    aliases = _aliases(LOCAL, "C:\\Users\\ci\\proj\\src")
    assert aliases.map("C:\\Users\\ci\\proj\\src\\pkg\\mod.py") == f"{LOCAL}/pkg/mod.py"
    assert aliases.map("C:\\Users\\ci\\proj\\tests\\t.py") == "C:\\Users\\ci\\proj\\tests\\t.py"


def test_globbed_prefixes() -> None:
    """Wildcards in a pattern match the varying part of CI paths."""
    aliases = _aliases(LOCAL, "/builds/*/proj/src", "/tmp/tox-?/src")
    assert aliases.map("/builds/job-17/proj/src/a/b.py") == f"{LOCAL}/a/b.py"
    assert aliases.map("/tmp/tox-3/src/c.py") == f"{LOCAL}/c.py"
    assert aliases.map("/tmp/tox-33/src/c.py") == "/tmp/tox-33/src/c.py"


def test_pattern_matches_whole_directory_names_only() -> None:
    """A pattern is a directory prefix: /ci/src does not capture /ci/srcs."""
    aliases = _aliases(LOCAL, "/ci/src")
    assert aliases.map("/ci/srcs/a.py") == "/ci/srcs/a.py"
    assert aliases.map("/ci/src") == "/ci/src"  # the directory itself is not a file in it


def test_relative_canonical_is_made_absolute_against_cwd() -> None:
    """The first location may be relative (``src/``): it names a directory of the cwd."""
    aliases = _aliases("src/", "/ci/proj/src", cwd="/home/me/proj")
    assert aliases.map("/ci/proj/src/pkg/m.py") == "/home/me/proj/src/pkg/m.py"


def test_relative_pattern_matches_at_any_depth_outermost_first() -> None:
    """A relative pattern finds its directory anywhere; the outermost one is the prefix."""
    aliases = _aliases("src", cwd="/home/me/proj")
    assert aliases.map("/ci/build/src/m.py") == "/home/me/proj/src/m.py"
    assert aliases.map("/ci/build/src/pkg/src/m.py") == "/home/me/proj/src/pkg/src/m.py"


def test_local_files_stay_where_they_are() -> None:
    """Local paths stay as they are, even when a nested directory repeats the name."""
    aliases = _aliases("src", "*/src", cwd="/home/me/proj")
    for path in ("/home/me/proj/src/m.py", "/home/me/proj/src/pkg/src/m.py"):
        assert aliases.map(path) == path


def test_first_existing_result_wins() -> None:
    """With several entries matching, the one whose result exists here is taken."""
    paths = [
        ("lib", ["/home/me/proj/lib", "*/proj"]),
        ("src", ["/home/me/proj/src", "*/proj"]),
    ]
    exists = _exists_only("/home/me/proj/src/m.py")
    aliases = PathAliases(paths, cwd="/", exists=exists)
    assert aliases.map("/ci/proj/m.py") == "/home/me/proj/src/m.py"


def test_first_matching_result_when_none_exists() -> None:
    """When no result exists here (sources not checked out), the first match is used."""
    paths = [
        ("lib", ["/home/me/proj/lib", "*/proj"]),
        ("src", ["/home/me/proj/src", "*/proj"]),
    ]
    aliases = PathAliases(paths, cwd="/", exists=lambda path: False)
    assert aliases.map("/ci/proj/m.py") == "/home/me/proj/lib/m.py"


def test_unmatched_path_is_unchanged() -> None:
    """Paths no pattern matches are kept as measured."""
    aliases = _aliases(LOCAL, "/ci/src")
    assert aliases.map("/usr/lib/python3.12/os.py") == "/usr/lib/python3.12/os.py"


def test_exists_is_consulted_with_the_mapped_path() -> None:
    """The injected check sees the candidate local paths, in rule order."""
    asked: list[str] = []

    def exists(path: str) -> bool:
        asked.append(path)
        return False

    paths = [("a", ["/here/a", "/ci"]), ("b", ["/here/b", "/ci"])]
    PathAliases(paths, cwd="/", exists=exists).map("/ci/x/y.py")
    # The candidates in rule order, then the measured path itself.
    assert asked == ["/here/a/x/y.py", "/here/b/x/y.py", "/ci/x/y.py"]


@pytest.mark.parametrize(
    ("paths", "truthy"),
    [([], False), ([("empty", [])], False), ([("s", ["src"])], True)],
)
def test_aliases_are_false_without_rules(
    paths: Sequence[tuple[str, Sequence[str]]], truthy: bool
) -> None:
    """Combine skips remapping altogether when [paths] has nothing."""
    assert bool(PathAliases(paths, cwd="/")) is truthy


# --- relative_name ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/home/me/proj/src/m.py", "src/m.py"),
        ("/home/me/proj/m.py", "m.py"),
        ("/home/me/other/m.py", "/home/me/other/m.py"),
        ("/usr/lib/python3.12/os.py", "/usr/lib/python3.12/os.py"),
        ("/home/me/proj/..hidden.py", "..hidden.py"),
        ("/home/me/proj/...", "..."),
        ("/home/me/proj", "."),
        ("/home/me", "/home/me"),
    ],
)
def test_relative_name(path: str, expected: str) -> None:
    """Reports name files under the cwd relatively and everything else absolutely."""
    assert relative_name(path, "/home/me/proj") == expected


def test_a_local_path_is_not_remapped_to_a_path_that_does_not_exist() -> None:
    """A project directory named like its package (``[paths] pkg = ["pkg"]`` in
    ``/x/pkg``): the relative pattern matches the project directory itself, and the
    rewritten path does not exist, so the measured path, which does, is kept."""
    measured = "/x/pkg/pkg/__init__.py"
    aliases = _aliases("pkg", cwd="/x/pkg", exists=_exists_only(measured))
    assert aliases.map(measured) == measured
    # Measured elsewhere, with the sources here: remapped as before.
    assert aliases.map("/ci/build/pkg/__init__.py") == "/x/pkg/pkg/__init__.py"
