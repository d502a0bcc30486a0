"""mpcov.analysis must report the statements and exclusions coverage.py reports.

Real files are analysed by both: mpcov's own modules and a fixed set of stdlib
modules of varied style, each with coverage.py's default exclusions and with a
heavier set like a project's ``exclude_also``. Known, deliberate differences are
listed (with their reason) in KNOWN_DIFFERENCES and in docs/analysis.md.
"""

from __future__ import annotations

import sysconfig
from collections.abc import Sequence
from pathlib import Path

import pytest

from mpcov.analysis import DEFAULT_EXCLUDE, analyze_file
from mpcov.errors import NotPythonError

# The behaviour matched is coverage.py 7.17's (multi-line exclusion regexes,
# its three default exclusions); older versions differ on purpose.
coverage = pytest.importorskip(
    "coverage", minversion="7.17", reason="needs coverage.py >= 7.17 to compare with"
)
from coverage.exceptions import NotPython  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "src" / "mpcov"
STDLIB = Path(sysconfig.get_paths()["stdlib"])

# Present, with these paths, on Python 3.11, 3.12 and 3.13.
STDLIB_FILES = [
    "abc.py",
    "argparse.py",
    "ast.py",
    "asyncio/base_events.py",
    "asyncio/streams.py",
    "asyncio/taskgroups.py",
    "asyncio/tasks.py",
    "asyncio/timeouts.py",
    "bisect.py",
    "calendar.py",
    "collections/__init__.py",
    "concurrent/futures/process.py",
    "configparser.py",
    "contextlib.py",
    "csv.py",
    "dataclasses.py",
    "difflib.py",
    "email/_header_value_parser.py",
    "email/feedparser.py",
    "email/message.py",
    "email/utils.py",
    "enum.py",
    "fractions.py",
    "functools.py",
    "graphlib.py",
    "heapq.py",
    "http/client.py",
    "importlib/metadata/__init__.py",
    "inspect.py",
    "json/__init__.py",
    "json/decoder.py",
    "json/encoder.py",
    "logging/__init__.py",
    "logging/handlers.py",
    "multiprocessing/pool.py",
    "pprint.py",
    "_pydecimal.py",
    "re/_parser.py",
    "selectors.py",
    "shutil.py",
    "statistics.py",
    "string.py",
    "subprocess.py",
    "textwrap.py",
    "tokenize.py",
    "tomllib/_parser.py",
    "typing.py",
    "unittest/case.py",
    "unittest/mock.py",
    "urllib/parse.py",
    "xml/etree/ElementTree.py",
    "zoneinfo/_zoneinfo.py",
]

# A project's typical `exclude_also` list on top of the defaults: these hit far
# more lines than the defaults do in the stdlib, and every kind of block.
HEAVY_EXCLUDE = (
    *DEFAULT_EXCLUDE,
    r"raise NotImplementedError",
    r"if __name__ == .__main__.:",
    r"def __repr__",
    r"@(abc\.)?abstractmethod",
    r"^\s*else:",
    r"^\s*except ImportError",
    r"^\s*try:",
    r"^\s*finally:",
    r"if sys\.platform",
    r"class .*Error\(",
    r"^\s*@",
    r"while True:",
    r"^\s*case ",
)

EXCLUDES = {"default": DEFAULT_EXCLUDE, "heavy": HEAVY_EXCLUDE}

# file (relative to the stdlib, or "mpcov/NAME.py") -> exclusion set name ->
# (reason, coverage.py's statements minus ours, ours minus coverage.py's,
#  coverage.py's excluded minus ours, ours minus coverage.py's).
# None found so far; an entry here must state exactly what differs.
KNOWN_DIFFERENCES: dict[str, dict[str, tuple[str, set[int], set[int], set[int], set[int]]]] = {}


def real_files() -> list[tuple[str, Path]]:
    files = [(f"mpcov/{p.name}", p) for p in sorted(SRC.glob("*.py"))]
    files += [(name, STDLIB / name) for name in STDLIB_FILES]
    return files


def coverage_analysis(path: Path, exclude: Sequence[str]) -> tuple[set[int], set[int]]:
    """Statements and excluded lines of `path`, through coverage.py's public API."""
    cov = coverage.Coverage(data_file=None, config_file=False)
    cov.clear_exclude()
    for regex in exclude:
        cov.exclude(regex)
    try:
        _, statements, excluded, _, _ = cov.analysis2(str(path))
    finally:
        # The in-memory data's sqlite connection would otherwise be left to
        # the garbage collector, a ResourceWarning (an error here) on 3.13.
        cov.get_data().close(force=True)
    return set(statements), set(excluded)


def test_default_exclude_is_coveragepys() -> None:
    cov = coverage.Coverage(data_file=None, config_file=False)
    assert tuple(cov.get_exclude_list()) == DEFAULT_EXCLUDE


def test_stdlib_files_exist() -> None:
    missing = [name for name in STDLIB_FILES if not (STDLIB / name).is_file()]
    assert not missing


@pytest.mark.parametrize("exclude_name", sorted(EXCLUDES))
@pytest.mark.parametrize(("name", "path"), real_files(), ids=[n for n, _ in real_files()])
def test_same_as_coveragepy(name: str, path: Path, exclude_name: str) -> None:
    exclude = EXCLUDES[exclude_name]
    try:
        cov_statements, cov_excluded = coverage_analysis(path, exclude)
    except NotPython:
        # A module being written may not parse yet: then neither can parse it.
        with pytest.raises(NotPythonError):
            analyze_file(str(path), exclude)
        return
    ours = analyze_file(str(path), exclude)
    diff = (
        cov_statements - ours.statements,
        set(ours.statements - cov_statements),
        cov_excluded - ours.excluded,
        set(ours.excluded - cov_excluded),
    )
    known = KNOWN_DIFFERENCES.get(name, {}).get(exclude_name)
    expected = known[1:] if known else (set(), set(), set(), set())
    assert diff == expected


# -- the deliberate differences (docs/analysis.md) -----------------------------


def test_form_feed_before_indentation_parses_unlike_coveragepy(tmp_path: Path) -> None:
    # coverage.py turns form feeds into spaces, which shifts this indentation
    # and makes a file Python runs unparsable; mpcov leaves them alone.
    path = tmp_path / "ff.py"
    path.write_bytes(b"if x:\n    a = 1\n\f    b = 2\n")
    with pytest.raises(NotPython):
        coverage_analysis(path, DEFAULT_EXCLUDE)
    assert analyze_file(str(path)).statements == {1, 2, 3}


def test_undecodable_file_is_an_error_unlike_coveragepy(tmp_path: Path) -> None:
    # coverage.py decodes with replacement characters; Python refuses to run
    # such a file, so mpcov reports it instead of guessing.
    path = tmp_path / "bad.py"
    path.write_bytes(b"x = 1\ns = '\xff'\n")
    assert coverage_analysis(path, DEFAULT_EXCLUDE) == ({1, 2}, set())
    with pytest.raises(NotPythonError):
        analyze_file(str(path))
