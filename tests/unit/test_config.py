"""Tests for mpcov.config: where settings come from, how values parse, what is reported."""

from __future__ import annotations

import dataclasses
import os
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from mpcov.config import (
    COMPATIBLE_KEYS,
    DEFAULT_EXCLUDE,
    DEFAULT_PARTIAL_ALWAYS,
    DEFAULT_PARTIAL_BRANCHES,
    Config,
    load_config,
)
from mpcov.errors import ConfigError


def write(directory: Path, name: str, text: str) -> str:
    """Write a dedented file and return its path as a string."""
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def load(
    directory: Path, environ: dict[str, str] | None = None, **kwargs: Any
) -> tuple[Config, list[str]]:
    """load_config in `directory`, with no environment unless given."""
    return load_config(cwd=str(directory), environ=environ or {}, **kwargs)


def loaded(directory: Path, **kwargs: Any) -> Config:
    """load() for tests that expect no warnings."""
    config, warnings = load(directory, **kwargs)
    assert warnings == []
    return config


def config_error(directory: Path, **kwargs: Any) -> str:
    """The one-line message of the ConfigError that loading raises."""
    with pytest.raises(ConfigError) as info:
        load(directory, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------
# Defaults


def test_no_file_gives_defaults(tmp_path: Path) -> None:
    config = loaded(tmp_path)
    assert config.config_file is None
    assert config.data_file == str(tmp_path / ".mpcov")
    assert config == Config(data_file=str(tmp_path / ".mpcov"))
    assert set(config.origins.values()) == {"default"}


def test_config_defaults_and_origins() -> None:
    config = Config()
    assert config.data_file == ".mpcov"
    assert config.wait_for_children == 10.0
    assert config.flush_interval == 1.0
    assert config.exclude == DEFAULT_EXCLUDE
    assert config.partial == DEFAULT_PARTIAL_BRANCHES + DEFAULT_PARTIAL_ALWAYS
    assert "origins" not in config.origins
    assert "config_file" not in config.origins
    assert config.origins["branch"] == "default"
    assert len(config.origins) == len(dataclasses.fields(Config)) - 2


def test_config_is_frozen_hashable_and_compares_without_origins() -> None:
    config = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.branch = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.origins["branch"] = "x"  # type: ignore[index]
    assert hash(config) == hash(Config())
    assert config == Config(origins={"branch": "somewhere"})


def test_config_works_with_the_dataclasses_functions() -> None:
    """Config is written out (no dataclasses import at every run) but is used as
    the frozen dataclass it is modelled on: fields(), replace(), is_dataclass()."""
    config = Config()
    names = [f.name for f in dataclasses.fields(config)]
    assert names[:2] == ["data_file", "source"] and names[-2:] == ["config_file", "origins"]
    assert dataclasses.is_dataclass(config) and dataclasses.is_dataclass(Config)
    changed = dataclasses.replace(config, branch=True)
    assert changed.branch is True and changed != config
    assert repr(config).startswith("Config(data_file='.mpcov', source=(), ")
    with pytest.raises(dataclasses.FrozenInstanceError):
        del config.branch
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        Config(colour="red")


@pytest.mark.parametrize(
    "line",
    ["x = 1  # pragma: no cover", "x = 1 #pragma:no cover", "x = 1  # PRAGMA NO COVER"],
)
def test_default_exclude_matches_pragma(line: str) -> None:
    assert any(re.search(regex, line) for regex in DEFAULT_EXCLUDE)


def test_default_exclude_matches_coverage_py_extras() -> None:
    assert any(re.search(regex, "if TYPE_CHECKING:") for regex in DEFAULT_EXCLUDE)
    assert any(re.search(regex, "    def f(self) -> int: ...") for regex in DEFAULT_EXCLUDE)
    assert not any(re.search(regex, "x = 1  # covered") for regex in DEFAULT_EXCLUDE)


def test_default_partial_branches() -> None:
    assert any(re.search(r, "if x:  # pragma: no branch") for r in DEFAULT_PARTIAL_BRANCHES)
    assert any(re.search(r, "    while True:") for r in DEFAULT_PARTIAL_ALWAYS)
    assert any(re.search(r, "if 0:") for r in DEFAULT_PARTIAL_ALWAYS)
    assert not any(re.search(r, "x = 1  # while True:") for r in DEFAULT_PARTIAL_ALWAYS)


# ---------------------------------------------------------------------------
# Which file is read


@pytest.mark.parametrize("section", ["run", "coverage:run"])
def test_coveragerc(tmp_path: Path, section: str) -> None:
    path = write(tmp_path, ".coveragerc", f"[{section}]\nbranch = true\n")
    config = loaded(tmp_path)
    assert config.branch is True
    assert config.config_file == path
    assert config.origins["branch"] == f"{path} [{section}]"


def test_empty_coveragerc_is_used_and_stops_the_search(tmp_path: Path) -> None:
    path = write(tmp_path, ".coveragerc", "# nothing yet\n")
    write(tmp_path, "setup.cfg", "[coverage:run]\nbranch = true\n")
    config = loaded(tmp_path)
    assert config.config_file == path
    assert config.branch is False


@pytest.mark.parametrize("header", ["[run]", "[tool.coverage.run]"])
def test_coveragerc_toml(tmp_path: Path, header: str) -> None:
    path = write(tmp_path, ".coveragerc.toml", f"{header}\nbranch = true\n")
    write(tmp_path, "setup.cfg", "[coverage:report]\nprecision = 2\n")
    config = loaded(tmp_path)
    assert config.config_file == path
    assert config.branch is True
    assert config.precision == 0


def test_coveragerc_beats_coveragerc_toml(tmp_path: Path) -> None:
    path = write(tmp_path, ".coveragerc", "[run]\nbranch = true\n")
    write(tmp_path, ".coveragerc.toml", "[run]\nprecision = 3\n")
    assert loaded(tmp_path).config_file == path


@pytest.mark.parametrize("name", ["setup.cfg", "tox.ini"])
def test_shared_ini_files_use_coverage_prefix(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name, "[tox]\nenvlist = py\n[coverage:run]\nbranch = on\n")
    config = loaded(tmp_path)
    assert config.config_file == path
    assert config.branch is True
    assert config.origins["branch"] == f"{path} [coverage:run]"


def test_setup_cfg_without_coverage_sections_is_skipped(tmp_path: Path) -> None:
    write(tmp_path, "setup.cfg", "[metadata]\nname = x\n[run]\nbranch = true\n")
    path = write(tmp_path, "tox.ini", "[coverage:report]\nprecision = 1\n")
    config = loaded(tmp_path)
    assert config.config_file == path
    assert config.branch is False
    assert config.precision == 1


def test_setup_cfg_with_empty_coverage_section_is_skipped(tmp_path: Path) -> None:
    write(tmp_path, "setup.cfg", "[coverage:run]\n")
    path = write(tmp_path, "pyproject.toml", "[tool.coverage.run]\nbranch = true\n")
    config = loaded(tmp_path)
    assert config.config_file == path
    assert config.branch is True


def test_setup_cfg_with_only_paths_counts(tmp_path: Path) -> None:
    path = write(tmp_path, "setup.cfg", "[coverage:paths]\nsrc = src/, /ci/src/\n")
    write(tmp_path, "tox.ini", "[coverage:run]\nbranch = true\n")
    config = loaded(tmp_path)
    assert config.config_file == path
    assert config.paths == (("src", ("src/", "/ci/src/")),)


def test_setup_cfg_with_compatible_key_only_counts(tmp_path: Path) -> None:
    path = write(tmp_path, "setup.cfg", "[coverage:run]\nparallel = true\n")
    write(tmp_path, "tox.ini", "[coverage:run]\nbranch = true\n")
    assert loaded(tmp_path).config_file == path


def test_setup_cfg_beats_tox_ini_beats_pyproject(tmp_path: Path) -> None:
    setup = write(tmp_path, "setup.cfg", "[coverage:run]\nbranch = true\n")
    tox = write(tmp_path, "tox.ini", "[coverage:run]\nbranch = true\n")
    pyproject = write(tmp_path, "pyproject.toml", "[tool.coverage.run]\nbranch = true\n")
    assert loaded(tmp_path).config_file == setup
    os.remove(setup)
    assert loaded(tmp_path).config_file == tox
    os.remove(tox)
    assert loaded(tmp_path).config_file == pyproject


def test_pyproject_without_coverage_settings_is_not_used(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", "[project]\nname = 'x'\n[tool.coverage.myplugin]\na = 1\n")
    assert loaded(tmp_path).config_file is None


def test_tool_mpcov_beats_coverage_files(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "pyproject.toml",
        """\
        [tool.mpcov.run]
        branch = true
        [tool.coverage.report]
        precision = 2
        """,
    )
    write(tmp_path, ".coveragerc", "[report]\nprecision = 3\n")
    config = loaded(tmp_path)
    assert config.config_file == path
    assert config.branch is True
    # One file, one table: nothing is merged from [tool.coverage] or .coveragerc.
    assert config.precision == 0
    assert config.origins["branch"] == f"{path} [tool.mpcov.run]"


def test_empty_tool_mpcov_table_is_used(tmp_path: Path) -> None:
    path = write(tmp_path, "pyproject.toml", "[tool.mpcov]\n")
    write(tmp_path, ".coveragerc", "[run]\nbranch = true\n")
    config = loaded(tmp_path)
    assert config.config_file == path
    assert config.branch is False


def test_rcfile_beats_tool_mpcov(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", "[tool.mpcov.run]\nbranch = true\n")
    path = write(tmp_path, "my.ini", "[report]\nprecision = 1\n")
    config = loaded(tmp_path, rcfile="my.ini")
    assert config.config_file == path
    assert config.branch is False


def test_rcfile_ini_accepts_coverage_prefix(tmp_path: Path) -> None:
    write(tmp_path, "tox.ini", "[coverage:run]\nbranch = 1\n")
    assert loaded(tmp_path, rcfile=str(tmp_path / "tox.ini")).branch is True


@pytest.mark.parametrize(
    "text",
    [
        "[tool.mpcov.run]\nbranch = true\n[tool.coverage.run]\nbranch = false\n",
        "[tool.coverage.run]\nbranch = true\n[run]\nbranch = false\n",
        "[run]\nbranch = true\n",
    ],
)
def test_rcfile_toml_roots(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, "cov.toml", text)
    config = loaded(tmp_path, rcfile=path)
    assert config.branch is True
    assert config.config_file == path


def test_mpcov_rcfile_environment_variable(tmp_path: Path) -> None:
    write(tmp_path, ".coveragerc", "[run]\nbranch = true\n")
    path = write(tmp_path, "other.cfg", "[report]\nprecision = 4\n")
    config = loaded(tmp_path, environ={"MPCOV_RCFILE": "other.cfg"})
    assert config.config_file == path
    assert config.precision == 4
    assert config.branch is False


def test_rcfile_argument_beats_mpcov_rcfile(tmp_path: Path) -> None:
    path = write(tmp_path, "a.cfg", "[report]\nprecision = 1\n")
    write(tmp_path, "b.cfg", "[report]\nprecision = 2\n")
    config = loaded(tmp_path, rcfile="a.cfg", environ={"MPCOV_RCFILE": "b.cfg"})
    assert config.config_file == path


def test_rcfile_false_reads_nothing(tmp_path: Path) -> None:
    write(tmp_path, ".coveragerc", "[run]\nbranch = true\n")
    write(tmp_path, "b.cfg", "[run]\nbranch = true\n")
    config = loaded(tmp_path, rcfile=False, environ={"MPCOV_RCFILE": "b.cfg"})
    assert config.config_file is None
    assert config.branch is False


def test_rcfile_true_searches(tmp_path: Path) -> None:
    path = write(tmp_path, ".coveragerc", "[run]\nbranch = true\n")
    assert loaded(tmp_path, rcfile=True).config_file == path


def test_missing_rcfile_is_an_error(tmp_path: Path) -> None:
    message = config_error(tmp_path, rcfile="nope.cfg")
    assert str(tmp_path / "nope.cfg") in message
    assert "no such file" in message


def test_missing_mpcov_rcfile_is_an_error(tmp_path: Path) -> None:
    message = config_error(tmp_path, environ={"MPCOV_RCFILE": "gone.toml"})
    assert str(tmp_path / "gone.toml") in message
    assert "MPCOV_RCFILE" in message


def test_cwd_defaults_to_current_directory(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, ".coveragerc", "[run]\ndata_file = d.dat\n")
    config, _ = load_config(environ={})
    assert config.config_file == path
    assert config.data_file == str(tmp_path / "d.dat")


# ---------------------------------------------------------------------------
# Values


def test_ini_lists_split_on_commas_and_newlines(tmp_path: Path) -> None:
    write(
        tmp_path,
        ".coveragerc",
        """\
        [run]
        omit = a/*, b/*
            c/*,
            ,d/*
        include =
        source_pkgs = one,two
        [report]
        omit = x/*
        include = y/*
        """,
    )
    config = loaded(tmp_path)
    assert config.omit == ("a/*", "b/*", "c/*", "d/*")
    assert config.include == ()
    assert config.source_pkgs == ("one", "two")
    assert config.report_omit == ("x/*",)
    assert config.report_include == ("y/*",)


def test_toml_lists_and_strings(tmp_path: Path) -> None:
    write(
        tmp_path,
        "pyproject.toml",
        """\
        [tool.mpcov.run]
        omit = ["a/*, keep", " b/* "]
        include = "x/*, y/*"
        disable_warnings = ["no-data-collected"]
        """,
    )
    config = loaded(tmp_path)
    assert config.omit == ("a/*, keep", "b/*")
    assert config.include == ("x/*", "y/*")
    assert config.disable_warnings == ("no-data-collected",)


def test_regex_lists_split_on_newlines_only(tmp_path: Path) -> None:
    write(
        tmp_path,
        ".coveragerc",
        """\
        [report]
        exclude_lines =
            raise NotImplementedError
            x{1,2}

        partial_branches = for .*:  # always
        """,
    )
    config = loaded(tmp_path)
    assert config.exclude_lines == ("raise NotImplementedError", "x{1,2}")
    assert config.exclude == config.exclude_lines
    assert config.partial == ("for .*:  # always", *DEFAULT_PARTIAL_ALWAYS)


def test_exclude_also_and_partial_also_add_to_defaults(tmp_path: Path) -> None:
    write(
        tmp_path,
        "pyproject.toml",
        """\
        [tool.coverage.report]
        exclude_also = ["if DEBUG:", "@abstractmethod"]
        partial_also = "if FLAG:"
        partial_branches_always = []
        """,
    )
    config = loaded(tmp_path)
    assert config.exclude_lines == DEFAULT_EXCLUDE
    assert config.exclude == (*DEFAULT_EXCLUDE, "if DEBUG:", "@abstractmethod")
    assert config.partial == (*DEFAULT_PARTIAL_BRANCHES, "if FLAG:")


@pytest.mark.parametrize(
    ("text", "expected"),
    [(w, True) for w in ("1", "yes", "True", "ON", " true ")]
    + [(w, False) for w in ("0", "no", "False", "off")],
)
def test_ini_booleans(tmp_path: Path, text: str, expected: bool) -> None:
    write(tmp_path, ".coveragerc", f"[report]\nshow_missing = {text}\n")
    assert loaded(tmp_path).show_missing is expected


@pytest.mark.parametrize(("text", "expected"), [("true", True), ('"yes"', True), ("false", False)])
def test_toml_booleans(tmp_path: Path, text: str, expected: bool) -> None:
    write(tmp_path, "pyproject.toml", f"[tool.mpcov.report]\nskip_covered = {text}\n")
    assert loaded(tmp_path).skip_covered is expected


def test_numbers(tmp_path: Path) -> None:
    write(
        tmp_path,
        ".coveragerc",
        """\
        [run]
        wait_for_children = 2.5
        flush_interval = 0.25
        [report]
        precision = 2
        fail_under = 97.5
        """,
    )
    config = loaded(tmp_path)
    assert (config.precision, config.fail_under) == (2, 97.5)
    assert (config.wait_for_children, config.flush_interval) == (2.5, 0.25)


def test_toml_numbers(tmp_path: Path) -> None:
    write(
        tmp_path,
        "pyproject.toml",
        """\
        [tool.mpcov.run]
        wait_for_children = 0
        flush_interval = 3
        [tool.mpcov.report]
        precision = 1
        fail_under = 100
        """,
    )
    config = loaded(tmp_path)
    assert config.fail_under == 100.0
    assert isinstance(config.fail_under, float)
    assert (config.precision, config.wait_for_children, config.flush_interval) == (1, 0.0, 3.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Cover", "cover"), ("-miss", "-miss"), ("brpart", "brpart"), ("", None)],
)
def test_sort(tmp_path: Path, text: str, expected: str | None) -> None:
    write(tmp_path, ".coveragerc", f"[report]\nsort = {text}\n")
    assert loaded(tmp_path).sort == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("monitoring", "monitoring"),
        ("settrace", "settrace"),
        ("sysmon", "monitoring"),
        ("ctrace", "settrace"),
        ("PyTrace", "settrace"),
        ("", None),
    ],
)
def test_core(tmp_path: Path, text: str, expected: str | None) -> None:
    write(tmp_path, ".coveragerc", f"[run]\ncore = {text}\n")
    assert loaded(tmp_path).core == expected


def test_output_sections(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write(
        tmp_path,
        ".coveragerc",
        """\
        [html]
        directory = ~/html
        title = My  report
        show_contexts = yes
        [json]
        output = out.json
        pretty_print = true
        [lcov]
        output = out.lcov
        [xml]
        output = out.xml
        """,
    )
    config = loaded(tmp_path)
    assert config.html_dir == str(tmp_path / "home" / "html")
    assert config.html_title == "My  report"
    assert config.show_contexts is True
    assert (config.json_output, config.json_pretty_print) == ("out.json", True)
    assert (config.lcov_output, config.xml_output) == ("out.lcov", "out.xml")


def test_data_file_resolves_against_cwd(tmp_path: Path) -> None:
    write(tmp_path, ".coveragerc", "[run]\ndata_file = out/../data/.cov\n")
    assert loaded(tmp_path).data_file == str(tmp_path / "data" / ".cov")


def test_data_file_absolute_and_home(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    write(tmp_path, ".coveragerc", "[run]\ndata_file = ~/.cov\n")
    assert loaded(tmp_path).data_file == str(tmp_path / "home" / ".cov")
    write(tmp_path, ".coveragerc", f"[run]\ndata_file = {tmp_path / 'abs'}\n")
    assert loaded(tmp_path).data_file == str(tmp_path / "abs")


def test_source_directories_resolve_and_packages_stay(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    write(tmp_path, ".coveragerc", "[run]\nsource = src, mypkg, mypkg.sub, missing_dir/\n")
    config = loaded(tmp_path)
    assert config.source == (str(tmp_path / "src"), "mypkg", "mypkg.sub", "missing_dir/")


def test_source_dirs_add_to_source(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    path = write(tmp_path, ".coveragerc", "[run]\nsource_dirs = lib\nsource = pkg\n")
    config = loaded(tmp_path)
    assert config.source == ("pkg", str(tmp_path / "lib"))
    assert config.origins["source"] == f"{path} [run]"


def test_source_dirs_must_exist(tmp_path: Path) -> None:
    path = write(tmp_path, ".coveragerc", "[run]\nsource_dirs = nope\n")
    message = config_error(tmp_path)
    assert message.startswith(f"{path} [run] source_dirs:")
    assert "'nope' is not a directory" in message


# ---------------------------------------------------------------------------
# Environment variables in values


def test_ini_environment_expansion(tmp_path: Path) -> None:
    write(
        tmp_path,
        ".coveragerc",
        """\
        [run]
        data_file = $OUT/${NAME}.dat
        omit = ${OMITS}
        source_pkgs = ${MISSING-fallback}, x$UNSET, ${SET-notused}
        [html]
        title = Cost: $$5 ${EMPTY-dflt}
        """,
    )
    environ = {"OUT": "build", "NAME": "cov", "OMITS": "a/*,b/*", "SET": "set", "EMPTY": ""}
    config = loaded(tmp_path, environ=environ)
    assert config.data_file == str(tmp_path / "build" / "cov.dat")
    assert config.omit == ("a/*", "b/*")
    assert config.source_pkgs == ("fallback", "x", "set")
    assert config.html_title == "Cost: $5"


def test_toml_environment_expansion(tmp_path: Path) -> None:
    write(
        tmp_path,
        "pyproject.toml",
        """\
        [tool.mpcov.run]
        omit = ["$A/*", "${B-b}/*"]
        [tool.mpcov.html]
        title = "${A} report"
        """,
    )
    config = loaded(tmp_path, environ={"A": "aa"})
    assert config.omit == ("aa/*", "b/*")
    assert config.html_title == "aa report"


def test_strict_variable_must_be_set(tmp_path: Path) -> None:
    path = write(tmp_path, ".coveragerc", "[run]\ndata_file = ${OUT?}/x\n")
    message = config_error(tmp_path)
    assert message.startswith(f"{path} [run] data_file:")
    assert "OUT" in message
    assert loaded(tmp_path, environ={"OUT": "o"}).data_file == str(tmp_path / "o" / "x")


def test_expansion_uses_given_environ_not_os_environ(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("MPCOV_TEST_VAR", "from-os")
    write(tmp_path, ".coveragerc", "[html]\ntitle = [$MPCOV_TEST_VAR]\n")
    assert loaded(tmp_path).html_title == "[]"


# ---------------------------------------------------------------------------
# [paths]


def test_ini_paths_keep_order_and_expand_home(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("HOME", "/home/me")
    path = write(
        tmp_path,
        ".coveragerc",
        """\
        [paths]
        source =
            src/
            /ci/*/src/
        other = ~/lib, /opt/lib
        """,
    )
    config = loaded(tmp_path)
    assert config.paths == (
        ("source", ("src/", "/ci/*/src/")),
        ("other", ("/home/me/lib", "/opt/lib")),
    )
    assert config.origins["paths"] == f"{path} [paths]"


def test_toml_paths(tmp_path: Path) -> None:
    write(
        tmp_path,
        "pyproject.toml",
        """\
        [tool.mpcov.paths]
        zeta = ["src/", "*/site-packages/"]
        alpha = ["lib/", "$ROOT/lib/"]
        """,
    )
    config = loaded(tmp_path, environ={"ROOT": "/r"})
    assert config.paths == (("zeta", ("src/", "*/site-packages/")), ("alpha", ("lib/", "/r/lib/")))


def test_empty_paths_entry_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, ".coveragerc", "[paths]\nsource =\n")
    message = config_error(tmp_path)
    assert message.startswith(f"{path} [paths] source:")


def test_toml_paths_entry_must_be_a_list(tmp_path: Path) -> None:
    path = write(tmp_path, "pyproject.toml", "[tool.mpcov.paths]\nsource = 3\n")
    message = config_error(tmp_path)
    assert message == f"{path} [tool.mpcov.paths] source: expected a list of strings, got 3"


# ---------------------------------------------------------------------------
# Environment, command line, origins


def test_mpcov_core_environment_beats_file(tmp_path: Path) -> None:
    write(tmp_path, ".coveragerc", "[run]\ncore = settrace\n")
    config = loaded(tmp_path, environ={"MPCOV_CORE": "monitoring"})
    assert config.core == "monitoring"
    assert config.origins["core"] == "environment MPCOV_CORE"


def test_empty_mpcov_core_is_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, ".coveragerc", "[run]\ncore = settrace\n")
    config = loaded(tmp_path, environ={"MPCOV_CORE": " "})
    assert config.core == "settrace"
    assert config.origins["core"] == f"{path} [run]"


def test_bad_mpcov_core(tmp_path: Path) -> None:
    message = config_error(tmp_path, environ={"MPCOV_CORE": "fast"})
    assert message.startswith("environment MPCOV_CORE: expected one of monitoring, settrace")
    assert "'fast'" in message


def test_command_line_beats_environment_and_file(tmp_path: Path) -> None:
    write(tmp_path, ".coveragerc", "[run]\ncore = settrace\nbranch = false\n")
    config = loaded(
        tmp_path,
        environ={"MPCOV_CORE": "monitoring"},
        overrides={"core": "settrace", "branch": True, "precision": None},
    )
    assert (config.core, config.branch, config.precision) == ("settrace", True, 0)
    assert config.origins["core"] == "command line"
    assert config.origins["branch"] == "command line"
    assert config.origins["precision"] == "default"


def test_overrides_are_normalized(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    config = loaded(
        tmp_path,
        overrides={
            "data_file": "out/.cov",
            "include": "a/*,b/*",
            "omit": ["c/*"],
            "source": ["src", "pkg"],
            "fail_under": 90,
            "exclude_also": "x{1,2}",
            "paths": {"src": ["src/", "/ci/src/"]},
        },
    )
    assert config.data_file == str(tmp_path / "out" / ".cov")
    assert config.include == ("a/*", "b/*")
    assert config.omit == ("c/*",)
    assert config.source == (str(tmp_path / "src"), "pkg")
    assert config.fail_under == 90.0
    assert config.exclude_also == ("x{1,2}",)
    assert config.paths == (("src", ("src/", "/ci/src/")),)


def test_bad_override_value(tmp_path: Path) -> None:
    message = config_error(tmp_path, overrides={"precision": "two"})
    expected = "expected a whole number, 0 or more, got 'two'"
    assert message == f"command line setting 'precision': {expected}"


@pytest.mark.parametrize("value", [3, ["src"], [("src", ["a/"], "extra")], {"src": []}])
def test_bad_paths_override(tmp_path: Path, value: object) -> None:
    message = config_error(tmp_path, overrides={"paths": value})
    assert message.startswith("command line setting 'paths': expected ")


def test_paths_override_as_pairs(tmp_path: Path) -> None:
    config = loaded(tmp_path, overrides={"paths": [("a", "x/, y/"), ("b", ["z/"])]})
    assert config.paths == (("a", ("x/", "y/")), ("b", ("z/",)))


def test_unknown_override_is_a_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="'colour'"):
        load(tmp_path, overrides={"colour": True})


def test_replace_updates_origins() -> None:
    config = Config(origins={"branch": "/x/.coveragerc [run]"})
    changed = config.replace(precision=2)
    assert changed.precision == 2
    assert changed.origins["precision"] == "command line"
    assert changed.origins["branch"] == "/x/.coveragerc [run]"
    assert config.precision == 0
    assert config.origins["precision"] == "default"


@pytest.mark.parametrize("name", ["nonsense", "origins", "config_file"])
def test_replace_rejects_non_settings(name: str) -> None:
    with pytest.raises(TypeError, match=name):
        Config().replace(**{name: 1})


def test_file_origins_name_file_and_section(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "pyproject.toml",
        '[tool.mpcov.report]\nprecision = 1\n[tool.mpcov.html]\ntitle = "t"\n',
    )
    config = loaded(tmp_path)
    assert config.origins["precision"] == f"{path} [tool.mpcov.report]"
    assert config.origins["html_title"] == f"{path} [tool.mpcov.html]"
    assert config.origins["data_file"] == "default"


# ---------------------------------------------------------------------------
# Bad values


@pytest.mark.parametrize(
    ("section", "line", "expected"),
    [
        ("run", "branch = maybe", "a boolean"),
        ("report", "precision = x", "a whole number"),
        ("report", "precision = -1", "a whole number"),
        ("report", "fail_under = abc", "a number from 0 to 100"),
        ("report", "fail_under = 101", "a number from 0 to 100"),
        ("report", "fail_under = nan", "a number from 0 to 100"),
        ("report", "sort = size", "one of name, stmts"),
        ("run", "core = fastest", "one of monitoring, settrace"),
        ("run", "wait_for_children = -1", "a number of seconds, 0 or more"),
        ("run", "flush_interval = 0", "a number of seconds, more than 0"),
        ("run", "data_file =", "a file name"),
    ],
)
def test_bad_ini_values(tmp_path: Path, section: str, line: str, expected: str) -> None:
    path = write(tmp_path, ".coveragerc", f"[{section}]\n{line}\n")
    key = line.partition(" =")[0]
    message = config_error(tmp_path)
    assert message.startswith(f"{path} [{section}] {key}: expected {expected}")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("branch = {a = 1}", "expected a boolean (true/false, yes/no, on/off, 1/0), got {'a': 1}"),
        ("branch = 1", "expected a boolean (true/false, yes/no, on/off, 1/0), got 1"),
        ("omit = [1, 2]", "expected a list of strings, got [1, 2]"),
        ("omit = 3", "expected a list of strings, got 3"),
        ("core = true", "expected a string, got True"),
        ("wait_for_children = true", "expected a number of seconds, 0 or more, got True"),
    ],
)
def test_bad_toml_values(tmp_path: Path, line: str, expected: str) -> None:
    path = write(tmp_path, "pyproject.toml", f"[tool.mpcov.run]\n{line}\n")
    key = line.partition(" = ")[0]
    assert config_error(tmp_path) == f"{path} [tool.mpcov.run] {key}: {expected}"


def test_bad_toml_number_types(tmp_path: Path) -> None:
    path = write(tmp_path, "pyproject.toml", "[tool.coverage.report]\nprecision = 1.5\n")
    message = config_error(tmp_path)
    expected = "expected a whole number, 0 or more, got 1.5"
    assert message == f"{path} [tool.coverage.report] precision: {expected}"


def test_invalid_regex(tmp_path: Path) -> None:
    path = write(tmp_path, "setup.cfg", "[coverage:report]\nexclude_also =\n    ok\n    bad(\n")
    message = config_error(tmp_path)
    where = f"{path} [coverage:report] exclude_also"
    assert message.startswith(f"{where}: invalid regular expression 'bad('")


def test_section_must_be_a_table(tmp_path: Path) -> None:
    path = write(tmp_path, "pyproject.toml", "[tool.mpcov]\nrun = 3\n")
    assert config_error(tmp_path) == f"{path} [tool.mpcov.run]: expected a table, got 3"


def test_tool_mpcov_must_be_a_table(tmp_path: Path) -> None:
    path = write(tmp_path, "pyproject.toml", "[tool]\nmpcov = 'yes'\n")
    assert config_error(tmp_path) == f"{path} [tool.mpcov]: expected a table, got 'yes'"


# ---------------------------------------------------------------------------
# Unreadable and unparsable files


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("branch = true\n", 1, "a setting comes before the first [section] header"),
        ("[run]\nbranch = true\nnot a setting\n", 3, "cannot parse 'not a setting'"),
        ("[run]\nbranch = true\nbranch = false\n", 3, "option 'branch' appears twice in [run]"),
        ("[run]\n[report]\n[run]\n", 3, "section [run] appears twice"),
    ],
)
def test_unparsable_ini(tmp_path: Path, text: str, line: int, reason: str) -> None:
    path = write(tmp_path, ".coveragerc", text)
    assert config_error(tmp_path) == f"Couldn't parse config file {path}, line {line}: {reason}"


def test_unparsable_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "pyproject.toml", "[tool.mpcov.run]\nbranch = \n")
    message = config_error(tmp_path)
    assert message.startswith(f"Couldn't parse config file {path}: ")
    assert "line 2" in message


def test_unparsable_pyproject_is_an_error_even_with_coveragerc(tmp_path: Path) -> None:
    path = write(tmp_path, "pyproject.toml", "[tool\n")
    write(tmp_path, ".coveragerc", "[run]\n")
    assert str(path) in config_error(tmp_path)


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / ".coveragerc").write_bytes(b"[run]\ndata_file = \xff\xfe\n")
    message = config_error(tmp_path)
    assert message.startswith(f"Couldn't read config file {tmp_path / '.coveragerc'}: not UTF-8")


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    (tmp_path / ".coveragerc").write_bytes(b"\xef\xbb\xbf[run]\nbranch = true\n")
    assert loaded(tmp_path).branch is True


def test_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "setup.cfg").mkdir()
    message = config_error(tmp_path)
    assert message.startswith(f"Couldn't read config file {tmp_path / 'setup.cfg'}: ")


def test_values_are_literal_without_interpolation(tmp_path: Path) -> None:
    write(tmp_path, ".coveragerc", "[DEFAULT]\nbranch = true\n[html]\ntitle = 100% %(x)s\n")
    config = loaded(tmp_path)
    assert config.html_title == "100% %(x)s"
    assert config.branch is False


# ---------------------------------------------------------------------------
# Warnings


def test_unknown_key_with_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, ".coveragerc", "[run]\nbrnach = true\n")
    _, warnings = load(tmp_path)
    assert warnings == [
        f"Unrecognized option '[run] brnach' in {path} (ignored); did you mean 'branch'?"
    ]


def test_unknown_key_without_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "setup.cfg", "[coverage:report]\nprecision = 1\nzzz = 1\n")
    _, warnings = load(tmp_path)
    assert warnings == [f"Unrecognized option '[coverage:report] zzz' in {path} (ignored)"]


def test_key_in_wrong_section(tmp_path: Path) -> None:
    path = write(tmp_path, "pyproject.toml", "[tool.mpcov.report]\nbranch = true\n")
    config, warnings = load(tmp_path)
    assert config.branch is False
    assert warnings == [
        f"Unrecognized option '[tool.mpcov.report] branch' in {path} (ignored);"
        " it belongs in the [run] section"
    ]


def test_toml_keys_are_case_sensitive(tmp_path: Path) -> None:
    write(tmp_path, "pyproject.toml", "[tool.mpcov.run]\nBranch = true\n")
    config, warnings = load(tmp_path)
    assert config.branch is False
    assert "did you mean 'branch'?" in warnings[0]


def test_stray_entries_in_tool_mpcov(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "pyproject.toml",
        "[tool.mpcov]\nbranch = true\nwhatever = 1\n[tool.mpcov.rn]\nbranch = true\n",
    )
    _, warnings = load(tmp_path)
    assert warnings == [
        f"Unrecognized option '[tool.mpcov] branch' in {path} (ignored);"
        " it belongs in [tool.mpcov.run]",
        f"Unrecognized option '[tool.mpcov] whatever' in {path} (ignored)",
        f"Unrecognized option '[tool.mpcov] rn' in {path} (ignored);"
        " did you mean [tool.mpcov.run]?",
    ]


def test_other_sections_and_tables_are_not_warned_about(tmp_path: Path) -> None:
    write(tmp_path, ".coveragerc", "[run]\nbranch = 1\n[my_plugin]\nanything = 1\n")
    assert loaded(tmp_path).branch is True
    os.remove(tmp_path / ".coveragerc")
    write(
        tmp_path,
        "pyproject.toml",
        "[tool.coverage.run]\nbranch = true\n[tool.coverage.my_plugin]\nx = 1\n[tool.other]\n",
    )
    assert loaded(tmp_path).branch is True


@pytest.mark.parametrize(
    ("section", "key"),
    sorted((section, key) for section, keys in COMPATIBLE_KEYS.items() for key in keys),
)
def test_compatible_keys_are_accepted_silently(tmp_path: Path, section: str, key: str) -> None:
    value = "" if key == "plugins" else "${UNSET?} anything"
    write(tmp_path, ".coveragerc", f"[{section}]\n{key} = {value}\n")
    loaded(tmp_path)


def test_documented_compatible_keys() -> None:
    assert {"parallel", "concurrency", "sigterm", "patch", "timid", "relative_files"} <= (
        COMPATIBLE_KEYS["run"]
    )
    assert {"dynamic_context", "plugins", "debug", "command_line", "context"} <= (
        COMPATIBLE_KEYS["run"]
    )
    assert {"cover_pylib", "note"} <= COMPATIBLE_KEYS["run"]
    assert {"extra_css", "skip_covered", "skip_empty"} <= COMPATIBLE_KEYS["html"]


@pytest.mark.parametrize("value", ["my_plugin, other_plugin", "\n    my_plugin\n    other_plugin"])
def test_plugins_warn(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, ".coveragerc", f"[run]\nplugins = {value}\n")
    _, warnings = load(tmp_path)
    assert warnings == [
        "mpcov does not support coverage.py plugins: ignoring plugins ="
        f" my_plugin, other_plugin in {path} [run]"
    ]


def test_toml_plugins_warn(tmp_path: Path) -> None:
    path = write(tmp_path, "pyproject.toml", '[tool.coverage.run]\nplugins = ["p"]\n')
    _, warnings = load(tmp_path)
    assert warnings == [
        "mpcov does not support coverage.py plugins:"
        f" ignoring plugins = p in {path} [tool.coverage.run]"
    ]


def test_skipped_shared_file_still_warns(tmp_path: Path) -> None:
    setup = write(tmp_path, "setup.cfg", "[coverage:run]\nbrnach = true\n")
    tox = write(tmp_path, "tox.ini", "[coverage:run]\nbranch = true\n")
    config, warnings = load(tmp_path)
    assert config.config_file == tox
    assert warnings == [
        f"Unrecognized option '[coverage:run] brnach' in {setup} (ignored); did you mean 'branch'?"
    ]


def test_mpcov_keys_are_accepted_in_coverage_files(tmp_path: Path) -> None:
    write(tmp_path, ".coveragerc", "[run]\nwait_for_children = 1\nflush_interval = 2\n")
    config = loaded(tmp_path)
    assert (config.wait_for_children, config.flush_interval) == (1.0, 2.0)
