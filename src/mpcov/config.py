"""Read mpcov's configuration from the files users already have.

mpcov reads one configuration file, chosen the way coverage.py chooses its own
(see ``docs/config.md``): an explicit ``--rcfile`` or ``MPCOV_RCFILE``, else a
``[tool.mpcov]`` table in ``pyproject.toml``, else coverage.py's own files in
coverage.py's order. Settings are never merged across files. After the file,
``MPCOV_CORE`` and then command-line overrides apply.

Only the command line imports this module, in the parent process, so it may use
any of the standard library; it imports nothing from mpcov but the errors.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType

from mpcov.errors import ConfigError

# tomllib, configparser, difflib and ast are imported where they are used: a
# project without the file they read does not pay for them at every `mpcov
# run` (tomllib alone is ~4 ms); `typing` is only for the type checker.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import configparser
    from dataclasses import Field
    from typing import Any, ClassVar, Final

__all__ = [
    "COMPATIBLE_KEYS",
    "DEFAULT_EXCLUDE",
    "DEFAULT_PARTIAL_ALWAYS",
    "DEFAULT_PARTIAL_BRANCHES",
    "Config",
    "load_config",
]

#: coverage.py's default ``exclude_lines``: the ``# pragma: no cover`` comment,
#: bodies that are only ``...`` (stubs, protocols), and ``if TYPE_CHECKING:``.
DEFAULT_EXCLUDE: Final[tuple[str, ...]] = (
    r"#\s*(pragma|PRAGMA)[:\s]?\s*(no|NO)\s*(cover|COVER)",
    r"^\s*(((async )?def .*?)?[\])]+(\s*->.*?)?:\s*)?\.\.\.\s*(#|$)",
    r"^\s*if (typing\.)?TYPE_CHECKING:",
)

#: coverage.py's default ``partial_branches``: the ``# pragma: no branch`` comment.
DEFAULT_PARTIAL_BRANCHES: Final[tuple[str, ...]] = (
    r"#\s*(pragma|PRAGMA)[:\s]?\s*(no|NO)\s*(branch|BRANCH)",
)

#: coverage.py's ``partial_branches_always``: branches that by Python's semantics
#: can never take both ways. Kept apart from ``partial_branches`` because, as in
#: coverage.py, replacing ``partial_branches`` must not drop them.
DEFAULT_PARTIAL_ALWAYS: Final[tuple[str, ...]] = (
    r"^\s*while (True|1|False|0):",
    r"^\s*if (True|1|False|0):",
)

#: Keys coverage.py understands that mpcov accepts and ignores, by section, so
#: that an existing coverage.py configuration loads without warnings. mpcov
#: always measures subprocesses and always writes per-process data, which makes
#: most of these moot; ``plugins`` alone warns when non-empty.
COMPATIBLE_KEYS: Final[Mapping[str, frozenset[str]]] = MappingProxyType(
    {
        "run": frozenset(
            {
                "command_line",
                "concurrency",
                "context",
                "cover_pylib",
                "debug",
                "debug_file",
                "dynamic_context",
                "note",
                "parallel",
                "patch",
                "plugins",
                "relative_files",
                "sigterm",
                "timid",
            }
        ),
        "report": frozenset({"contexts", "format", "include_namespace_packages"}),
        "html": frozenset({"extra_css", "skip_covered", "skip_empty"}),
        "json": frozenset({"show_contexts"}),
        "lcov": frozenset({"line_checksums"}),
        "xml": frozenset({"package_depth"}),
    }
)


class _DataclassFields:
    """``Config.__dataclass_fields__``, made with the dataclasses module at first use.

    It makes :func:`dataclasses.fields`, :func:`~dataclasses.replace` and
    :func:`~dataclasses.asdict` work on Config as on the frozen dataclass it is
    modelled on, without importing dataclasses at every ``mpcov run``.
    """

    def __get__(self, instance: object, owner: type) -> dict[str, Any]:
        cached: dict[str, Any] | None = owner.__dict__.get("_dataclass_fields")
        if cached is None:
            import dataclasses

            specs = [
                (name, owner.__annotations__[name], dataclasses.field(default=getattr(owner, name)))
                for name in _FIELD_NAMES[:-1]
            ]
            specs.append(("origins", "Mapping[str, str]",
                          dataclasses.field(default_factory=dict, compare=False)))
            shadow = dataclasses.make_dataclass(owner.__name__, specs, frozen=True)
            cached = {f.name: f for f in dataclasses.fields(shadow)}
            type.__setattr__(owner, "_dataclass_fields", cached)
        return cached


class Config:
    """mpcov's settings: defaults, then one file, then environment, then command line.

    ``origins`` says where each setting came from; it takes no part in equality.

    A frozen value object that behaves as ``@dataclass(frozen=True)`` would make
    it (keyword construction, equality, hash, repr, ``FrozenInstanceError``,
    ``dataclasses.fields``), written out instead: importing dataclasses (which
    imports inspect and ast) and generating the methods of these 34 fields cost
    ~70 M instructions, a third of what ``mpcov run`` spent on its own start.
    """

    # [run]
    data_file: str = ".mpcov"
    source: tuple[str, ...] = ()
    source_pkgs: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    omit: tuple[str, ...] = ()
    branch: bool = False
    core: str | None = None
    wait_for_children: float = 10.0
    flush_interval: float = 1.0
    disable_warnings: tuple[str, ...] = ()
    # [report]
    exclude_lines: tuple[str, ...] = DEFAULT_EXCLUDE
    exclude_also: tuple[str, ...] = ()
    partial_branches: tuple[str, ...] = DEFAULT_PARTIAL_BRANCHES
    partial_also: tuple[str, ...] = ()
    partial_branches_always: tuple[str, ...] = DEFAULT_PARTIAL_ALWAYS
    show_missing: bool = False
    skip_covered: bool = False
    skip_empty: bool = False
    precision: int = 0
    fail_under: float = 0.0
    sort: str | None = None
    report_include: tuple[str, ...] = ()
    report_omit: tuple[str, ...] = ()
    ignore_errors: bool = False
    show_contexts: bool = False
    # [paths]
    paths: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # [html] [json] [lcov] [xml]
    html_dir: str = "htmlcov"
    html_title: str = "Coverage report"
    json_output: str = "coverage.json"
    json_pretty_print: bool = False
    lcov_output: str = "coverage.lcov"
    xml_output: str = "coverage.xml"
    # Where things came from.
    config_file: str | None = None
    origins: Mapping[str, str] = MappingProxyType({})

    if TYPE_CHECKING:  # what dataclasses.fields() expects
        __dataclass_fields__: ClassVar[dict[str, Field[Any]]]
    else:
        __dataclass_fields__ = _DataclassFields()

    def __init__(self, **values: Any) -> None:
        unknown = [name for name in values if name not in _FIELD_NAMES]
        if unknown:
            raise TypeError(f"Config.__init__() got an unexpected keyword argument {unknown[0]!r}")
        for name in _FIELD_NAMES:
            object.__setattr__(self, name, values.get(name, getattr(Config, name)))
        # Every setting gets an origin, so callers never need a fallback, and
        # the mapping is read-only like the rest of the object.
        full = dict.fromkeys(_SETTING_NAMES, "default")
        full.update(self.origins)
        object.__setattr__(self, "origins", MappingProxyType(full))

    def _compared(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in _FIELD_NAMES[:-1])  # not origins

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Config)
        return self._compared() == other._compared()

    def __hash__(self) -> int:
        return hash(self._compared())

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in _FIELD_NAMES)
        return f"{self.__class__.__qualname__}({shown})"

    def __setattr__(self, name: str, value: object) -> None:
        from dataclasses import FrozenInstanceError

        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        from dataclasses import FrozenInstanceError

        raise FrozenInstanceError(f"cannot delete field {name!r}")

    @property
    def exclude(self) -> tuple[str, ...]:
        """The regexes that exclude a line: ``exclude_lines`` plus ``exclude_also``."""
        return tuple(dict.fromkeys(self.exclude_lines + self.exclude_also))

    @property
    def partial(self) -> tuple[str, ...]:
        """The regexes that mark a branch as partial on purpose.

        ``partial_branches`` plus ``partial_also`` plus ``partial_branches_always``.
        """
        both = self.partial_branches + self.partial_also + self.partial_branches_always
        return tuple(dict.fromkeys(both))

    def replace(self, **overrides: Any) -> Config:
        """Return a copy with `overrides` applied, their origin being "command line".

        Values are used as given: :func:`load_config` is the place that checks
        and normalizes command-line values.
        """
        unknown = sorted(set(overrides) - set(_SETTING_NAMES))
        if unknown:
            raise TypeError(f"Config has no setting {unknown[0]!r}")
        origins = {**self.origins, **dict.fromkeys(overrides, "command line")}
        values = {name: getattr(self, name) for name in _FIELD_NAMES}
        return Config(**{**values, **overrides, "origins": origins})


#: Config's fields, in order (``origins`` last); then those that are settings, as
#: opposed to provenance.
_FIELD_NAMES: Final[tuple[str, ...]] = tuple(Config.__annotations__)
_SETTING_NAMES: Final[tuple[str, ...]] = _FIELD_NAMES[:-2]


# ---------------------------------------------------------------------------
# Converting raw values (ini strings, TOML values, command-line values)


# The private helpers below are plain classes, not dataclasses: creating a
# dataclass runs generated code (~3 M instructions for these small ones), and
# every `mpcov run` imports this module.


class _Ctx:
    """What a converter needs: the directory to resolve against, and where the value is."""

    __slots__ = ("cwd", "where")

    def __init__(self, cwd: str, where: str) -> None:
        self.cwd = cwd
        self.where = where


_BOOLEANS: Final[Mapping[str, bool]] = MappingProxyType(
    {"1": True, "yes": True, "true": True, "on": True}
    | {"0": False, "no": False, "false": False, "off": False}
)
_CORES: Final[Mapping[str, str]] = MappingProxyType(
    # coverage.py's core names map to the mpcov core that works the same way.
    {"monitoring": "monitoring", "sysmon": "monitoring"}
    | {"settrace": "settrace", "ctrace": "settrace", "pytrace": "settrace"}
    | {"probes": "probes"}
)
# Regexes as text, compiled at first use (re caches them): most runs never
# need them, and compiling costs a few ms at every `mpcov run`.
_SORT_PATTERN: Final = r"-?(name|stmts|miss|branch|brpart|cover)"


def _bad(ctx: _Ctx, expected: str, raw: object) -> ConfigError:
    return ConfigError(f"{ctx.where}: expected {expected}, got {raw!r}")


def _to_bool(raw: object, ctx: _Ctx) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in _BOOLEANS:
        return _BOOLEANS[raw.strip().lower()]
    raise _bad(ctx, "a boolean (true/false, yes/no, on/off, 1/0)", raw)


def _to_int(raw: object, ctx: _Ctx) -> int:
    value: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str) and re.fullmatch(r"\s*\d+\s*", raw):
        value = int(raw)
    if value is None or value < 0:
        raise _bad(ctx, "a whole number, 0 or more", raw)
    return value


def _to_float(raw: object, ctx: _Ctx, expected: str) -> float:
    value = math.nan
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        value = float(raw)
    elif isinstance(raw, str):
        try:
            value = float(raw)
        except ValueError:
            pass
    if not math.isfinite(value):
        raise _bad(ctx, expected, raw)
    return value


def _to_percent(raw: object, ctx: _Ctx) -> float:
    value = _to_float(raw, ctx, "a number from 0 to 100")
    if not 0 <= value <= 100:
        raise _bad(ctx, "a number from 0 to 100", raw)
    return value


def _to_seconds(raw: object, ctx: _Ctx) -> float:
    value = _to_float(raw, ctx, "a number of seconds, 0 or more")
    if value < 0:
        raise _bad(ctx, "a number of seconds, 0 or more", raw)
    return value


def _to_interval(raw: object, ctx: _Ctx) -> float:
    value = _to_float(raw, ctx, "a number of seconds, more than 0")
    if value <= 0:
        raise _bad(ctx, "a number of seconds, more than 0", raw)
    return value


def _to_str(raw: object, ctx: _Ctx) -> str:
    if not isinstance(raw, str):
        raise _bad(ctx, "a string", raw)
    return raw.strip()


def _to_file(raw: object, ctx: _Ctx) -> str:
    value = _to_str(raw, ctx)
    if not value:
        raise _bad(ctx, "a file name", raw)
    return os.path.expanduser(value)


def _to_data_file(raw: object, ctx: _Ctx) -> str:
    # Absolute now, so that processes that change directory still agree on it.
    return os.path.normpath(os.path.join(ctx.cwd, _to_file(raw, ctx)))


def _split_items(text: str, *, commas: bool) -> list[str]:
    lines = text.splitlines()
    if commas:
        lines = [item for line in lines for item in line.split(",")]
    return [item.strip() for item in lines if item.strip()]


def _items(raw: object, ctx: _Ctx, *, commas: bool) -> tuple[str, ...]:
    # A string is a list written the ini way, in TOML and on the command line
    # too: newline-separated, and comma-separated unless the items are regexes.
    if isinstance(raw, str):
        return tuple(_split_items(raw, commas=commas))
    if isinstance(raw, list | tuple) and all(isinstance(item, str) for item in raw):
        return tuple(item.strip() for item in raw if item.strip())
    raise _bad(ctx, "a list of strings", raw)


def _to_list(raw: object, ctx: _Ctx) -> tuple[str, ...]:
    return _items(raw, ctx, commas=True)


def _to_regex_list(raw: object, ctx: _Ctx) -> tuple[str, ...]:
    regexes = _items(raw, ctx, commas=False)
    for regex in regexes:
        try:
            re.compile(regex)
        except re.error as err:
            raise ConfigError(f"{ctx.where}: invalid regular expression {regex!r}: {err}") from None
    return regexes


def _resolve_source(entry: str, cwd: str) -> str:
    # As in coverage.py: an entry naming an existing directory is a directory,
    # anything else is an importable package name and is kept as written.
    path = os.path.join(cwd, os.path.expanduser(entry))
    return os.path.normpath(path) if os.path.isdir(path) else entry


def _to_source(raw: object, ctx: _Ctx) -> tuple[str, ...]:
    return tuple(_resolve_source(entry, ctx.cwd) for entry in _to_list(raw, ctx))


def _to_source_dirs(raw: object, ctx: _Ctx) -> tuple[str, ...]:
    dirs = []
    for entry in _to_list(raw, ctx):
        path = os.path.normpath(os.path.join(ctx.cwd, os.path.expanduser(entry)))
        if not os.path.isdir(path):
            raise ConfigError(f"{ctx.where}: {entry!r} is not a directory")
        dirs.append(path)
    return tuple(dirs)


def _to_core(raw: object, ctx: _Ctx) -> str | None:
    value = _to_str(raw, ctx).lower()
    if not value:
        return None
    if value not in _CORES:
        raise _bad(ctx, "one of monitoring, settrace, probes (or coverage.py's sysmon, ctrace)",
                   raw)
    return _CORES[value]


def _to_sort(raw: object, ctx: _Ctx) -> str | None:
    value = _to_str(raw, ctx).lower()
    if not value:
        return None
    if not re.fullmatch(_SORT_PATTERN, value):
        raise _bad(ctx, "one of name, stmts, miss, branch, brpart, cover, optionally after -", raw)
    return value


def _to_paths(raw: object, ctx: _Ctx) -> tuple[tuple[str, tuple[str, ...]], ...]:
    # Only command-line overrides come here whole; files give one entry a key.
    pairs = list(raw.items()) if isinstance(raw, Mapping) else raw
    if not isinstance(pairs, list | tuple) or not all(_is_name_pair(pair) for pair in pairs):
        raise _bad(ctx, "a mapping of names to lists of paths", raw)
    return tuple(_paths_entry(name, patterns, ctx) for name, patterns in pairs)


def _is_name_pair(pair: object) -> bool:
    return isinstance(pair, list | tuple) and len(pair) == 2 and isinstance(pair[0], str)


def _paths_entry(name: str, raw: object, ctx: _Ctx) -> tuple[str, tuple[str, ...]]:
    patterns = tuple(os.path.expanduser(p) for p in _to_list(raw, ctx))
    if not patterns:
        raise _bad(ctx, "at least one path", raw)
    return name, patterns


_Converter = Callable[[object, _Ctx], object]

_CONVERTERS: Final[Mapping[str, _Converter]] = MappingProxyType(
    {
        "bool": _to_bool,
        "core": _to_core,
        "data_file": _to_data_file,
        "file": _to_file,
        "int": _to_int,
        "interval": _to_interval,
        "list": _to_list,
        "paths": _to_paths,
        "percent": _to_percent,
        "regex_list": _to_regex_list,
        "seconds": _to_seconds,
        "sort": _to_sort,
        "source": _to_source,
        "source_dirs": _to_source_dirs,
        "str": _to_str,
    }
)

#: section -> key -> (Config field, converter kind). ``source_dirs`` (coverage.py
#: 7.8+) adds its directories to ``source``.
_OPTIONS: Final[Mapping[str, Mapping[str, tuple[str, str]]]] = {
    "run": {
        "branch": ("branch", "bool"),
        "core": ("core", "core"),
        "data_file": ("data_file", "data_file"),
        "disable_warnings": ("disable_warnings", "list"),
        "flush_interval": ("flush_interval", "interval"),
        "include": ("include", "list"),
        "omit": ("omit", "list"),
        "source": ("source", "source"),
        "source_dirs": ("source", "source_dirs"),
        "source_pkgs": ("source_pkgs", "list"),
        "wait_for_children": ("wait_for_children", "seconds"),
    },
    "report": {
        "exclude_also": ("exclude_also", "regex_list"),
        "exclude_lines": ("exclude_lines", "regex_list"),
        "fail_under": ("fail_under", "percent"),
        "ignore_errors": ("ignore_errors", "bool"),
        "include": ("report_include", "list"),
        "omit": ("report_omit", "list"),
        "partial_also": ("partial_also", "regex_list"),
        "partial_branches": ("partial_branches", "regex_list"),
        "partial_branches_always": ("partial_branches_always", "regex_list"),
        "precision": ("precision", "int"),
        "show_missing": ("show_missing", "bool"),
        "skip_covered": ("skip_covered", "bool"),
        "skip_empty": ("skip_empty", "bool"),
        "sort": ("sort", "sort"),
    },
    "html": {
        "directory": ("html_dir", "file"),
        "show_contexts": ("show_contexts", "bool"),
        "title": ("html_title", "str"),
    },
    "json": {"output": ("json_output", "file"), "pretty_print": ("json_pretty_print", "bool")},
    "lcov": {"output": ("lcov_output", "file")},
    "xml": {"output": ("xml_output", "file")},
}
_SECTIONS: Final[tuple[str, ...]] = (*_OPTIONS, "paths")

#: Config field -> converter kind, for command-line overrides.
_FIELD_KINDS: Final[Mapping[str, str]] = {
    **{fld: kind for keys in _OPTIONS.values() for fld, kind in keys.values()},
    "source": "source",
    "paths": "paths",
}

# ---------------------------------------------------------------------------
# Environment variables in values

_VAR_PATTERN: Final = r"""\$(?:
        (?P<dollar>\$)                     # $$ is a dollar sign
        | (?P<word>\w+)                    # $VAR
        | \{(?P<braced>\w+)               # ${VAR}
          (?: (?P<strict>\?) | -(?P<default>[^}]*) )?  # ${VAR?} ${VAR-default}
        \})"""  # re.VERBOSE


def _expand_text(text: str, environ: Mapping[str, str], ctx: _Ctx) -> str:
    """Replace ``$VAR``, ``${VAR}``, ``${VAR-default}``, ``${VAR?}``, ``$$`` as coverage.py does."""

    def replace(match: re.Match[str]) -> str:
        if match["dollar"]:
            return "$"
        name = match["word"] or match["braced"]
        if name in environ:
            return environ[name]
        if match["strict"]:
            raise ConfigError(f"{ctx.where}: environment variable {name} is not set")
        return match["default"] or ""

    return re.sub(_VAR_PATTERN, replace, text, flags=re.VERBOSE)


def _expand(raw: object, environ: Mapping[str, str], ctx: _Ctx) -> object:
    if isinstance(raw, str):
        return _expand_text(raw, environ, ctx)
    if isinstance(raw, list):
        return [_expand(item, environ, ctx) for item in raw]
    return raw


# ---------------------------------------------------------------------------
# Reading files


class _Section:
    """One section of a file, under the name written in the file."""

    __slots__ = ("label", "values")

    def __init__(self, label: str, values: Mapping[str, object]) -> None:
        self.label = label  # "run", "coverage:run", "tool.mpcov.run", ...
        self.values = values


class _Document:
    """The parts of one file that concern coverage, keyed by mpcov section name."""

    __slots__ = ("ours", "path", "sections", "warnings")

    def __init__(
        self,
        path: str,
        ours: bool,
        sections: Mapping[str, _Section],
        warnings: tuple[str, ...] = (),
    ) -> None:
        self.path = path
        self.ours = ours  # a file that is used even when it sets nothing
        self.sections = sections
        self.warnings = warnings


def _read_text(path: str) -> str | None:
    """The file's text, or None if there is no such file."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except OSError as err:
        raise ConfigError(f"Couldn't read config file {path}: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"Couldn't read config file {path}: not UTF-8 ({err.reason})") from None


def _bad_ini_line(recorded: str) -> str:
    # Before 3.13, configparser records repr() of the line rather than the line.
    if sys.version_info < (3, 13):
        import ast

        recorded = str(ast.literal_eval(recorded))
    return recorded.strip()


def _ini_error(path: str, err: configparser.Error) -> ConfigError:
    # configparser's messages span lines; the brief form keeps them to one.
    import configparser

    if isinstance(err, configparser.DuplicateOptionError):
        reason = f"option {err.option!r} appears twice in [{err.section}]"
    elif isinstance(err, configparser.DuplicateSectionError):
        reason = f"section [{err.section}] appears twice"
    elif isinstance(err, configparser.MissingSectionHeaderError):
        reason = "a setting comes before the first [section] header"
    elif isinstance(err, configparser.ParsingError) and err.errors:
        reason = f"cannot parse {_bad_ini_line(err.errors[0][1])!r}"
    else:
        reason = str(err).splitlines()[0]
    line = getattr(err, "lineno", None)
    if line is None and isinstance(err, configparser.ParsingError) and err.errors:
        line = err.errors[0][0]
    at = f", line {line}" if line else ""
    return ConfigError(f"Couldn't parse config file {path}{at}: {reason}")


def _read_ini(path: str, *, ours: bool) -> _Document | None:
    text = _read_text(path)
    if text is None:
        return None
    import configparser

    # No interpolation, and no special [DEFAULT]: values are taken literally.
    parser = configparser.ConfigParser(interpolation=None, default_section="\0none")
    try:
        parser.read_string(text, source=path)
    except configparser.Error as err:
        raise _ini_error(path, err) from None
    # coverage.py's own files may use [run] or [coverage:run]; others only the latter.
    prefixes = ("coverage:", "") if ours else ("coverage:",)
    sections = {}
    for name in _SECTIONS:
        label = next((p + name for p in prefixes if parser.has_section(p + name)), None)
        if label is not None:
            sections[name] = _Section(label, dict(parser.items(label)))
    return _Document(path, ours, sections)


def _load_toml(path: str) -> dict[str, Any] | None:
    text = _read_text(path)
    if text is None:
        return None
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"Couldn't parse config file {path}: {err}") from None


def _toml_root(data: dict[str, Any], roots: Iterable[str]) -> tuple[str, Any] | None:
    """The first of `roots` ("" is the whole file) present in `data`."""
    for root in roots:
        node: Any = data
        for part in root.split(".") if root else ():
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            return root, node
    return None


def _toml_table(node: object, path: str, label: str) -> dict[str, Any]:
    if not isinstance(node, dict):
        raise ConfigError(f"{path} [{label}]: expected a table, got {node!r}")
    return node


def _read_toml(path: str, roots: tuple[str, ...], *, ours: bool) -> _Document | None:
    data = _load_toml(path)
    found = _toml_root(data, roots) if data is not None else None
    if found is None:
        return None
    root, node = found
    table = _toml_table(node, path, root)
    sections = {}
    for name in _SECTIONS:
        if name in table:
            label = f"{root}.{name}" if root else name
            sections[name] = _Section(label, _toml_table(table[name], path, label))
    # Under [tool.mpcov] everything is ours, so a stray entry is a mistake;
    # elsewhere other tables may belong to coverage.py plugins or other tools.
    strays = [key for key in table if key not in _SECTIONS] if root == "tool.mpcov" else []
    warnings = tuple(_stray_message(path, root, key) for key in strays)
    return _Document(path, ours, sections, warnings)


# ---------------------------------------------------------------------------
# Warnings about keys


def _known_keys(section: str) -> frozenset[str]:
    return frozenset(_OPTIONS[section]) | COMPATIBLE_KEYS[section]


def _suggestion(key: str, section: str) -> str:
    import difflib

    close = difflib.get_close_matches(key, sorted(_known_keys(section)), n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    homes = [name for name in _OPTIONS if key in _known_keys(name)]
    if homes:
        return f"; it belongs in the [{homes[0]}] section"
    return ""


def _unknown_message(doc: _Document, name: str, key: str) -> str:
    label = doc.sections[name].label
    hint = _suggestion(key, name)
    return f"Unrecognized option '[{label}] {key}' in {doc.path} (ignored){hint}"


def _stray_message(path: str, root: str, key: str) -> str:
    import difflib

    close = difflib.get_close_matches(key, _SECTIONS, n=1)
    homes = [name for name in _OPTIONS if key in _known_keys(name)]
    if close:
        hint = f"; did you mean [{root}.{close[0]}]?"
    elif homes:
        hint = f"; it belongs in [{root}.{homes[0]}]"
    else:
        hint = ""
    return f"Unrecognized option '[{root}] {key}' in {path} (ignored){hint}"


def _key_warnings(doc: _Document) -> list[str]:
    warnings = list(doc.warnings)
    for name, section in doc.sections.items():
        if name != "paths":
            known = _known_keys(name)
            warnings += [_unknown_message(doc, name, k) for k in section.values if k not in known]
    return warnings


def _sets_anything(doc: _Document) -> bool:
    """Whether `doc` holds a coverage setting, which makes a shared file count."""
    for name, section in doc.sections.items():
        known = _known_keys(name) if name != "paths" else section.values.keys()
        if any(key in known for key in section.values):
            return True
    return False


# ---------------------------------------------------------------------------
# Choosing the file


def _specified_document(path: str, cwd: str, why: str = "") -> _Document:
    full = os.path.normpath(os.path.join(cwd, os.path.expanduser(path)))
    if full.endswith(".toml"):
        doc = _read_toml(full, ("tool.mpcov", "tool.coverage", ""), ours=True)
    else:
        doc = _read_ini(full, ours=True)
    if doc is None:
        raise ConfigError(f"Couldn't read config file {full}{why}: no such file")
    return doc


def _discovered_documents(cwd: str) -> Iterable[_Document | None]:
    """Candidate files in order of precedence, read lazily so a later one can't break us."""
    pyproject = os.path.join(cwd, "pyproject.toml")
    yield _read_toml(pyproject, ("tool.mpcov",), ours=True)
    yield _read_ini(os.path.join(cwd, ".coveragerc"), ours=True)
    yield _read_toml(os.path.join(cwd, ".coveragerc.toml"), ("tool.coverage", ""), ours=True)
    yield _read_ini(os.path.join(cwd, "setup.cfg"), ours=False)
    yield _read_ini(os.path.join(cwd, "tox.ini"), ours=False)
    yield _read_toml(pyproject, ("tool.coverage",), ours=False)


def _find_document(
    rcfile: str | bool | None, cwd: str, environ: Mapping[str, str], warnings: list[str]
) -> _Document | None:
    if rcfile is False:
        return None
    if isinstance(rcfile, str):
        doc = _specified_document(rcfile, cwd)
        warnings += _key_warnings(doc)
        return doc
    if environ.get("MPCOV_RCFILE"):
        doc = _specified_document(environ["MPCOV_RCFILE"], cwd, " (named by MPCOV_RCFILE)")
        warnings += _key_warnings(doc)
        return doc
    for candidate in _discovered_documents(cwd):
        if candidate is not None:
            # Like coverage.py, a shared file with only misspelled keys still
            # gets its warnings, though the search goes on past it.
            warnings += _key_warnings(candidate)
            if candidate.ours or _sets_anything(candidate):
                return candidate
    return None


# ---------------------------------------------------------------------------
# Applying a file


class _Settings:
    """Values gathered so far, with their origins."""

    __slots__ = ("origins", "values", "warnings")

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.origins: dict[str, str] = {}
        self.warnings: list[str] = []

    def set(self, name: str, value: object, origin: str) -> None:
        self.values[name] = value
        self.origins[name] = origin


def _apply_section(
    doc: _Document, name: str, cwd: str, environ: Mapping[str, str], out: _Settings
) -> None:
    section = doc.sections[name]
    origin = f"{doc.path} [{section.label}]"
    source_dirs: tuple[str, ...] = ()
    for key, raw in section.values.items():
        if name == "run" and key == "plugins":
            out.warnings += _plugins_warning(origin, raw)
        if key not in _OPTIONS[name]:
            continue  # compatible or unknown: warned about already
        fld, kind = _OPTIONS[name][key]
        ctx = _Ctx(cwd, f"{origin} {key}")
        raw = _expand(raw, environ, ctx)
        if kind == "source_dirs":
            source_dirs = _to_source_dirs(raw, ctx)
        else:
            out.set(fld, _CONVERTERS[kind](raw, ctx), origin)
    if source_dirs:
        out.set("source", out.values.get("source", ()) + source_dirs, origin)


def _plugins_warning(origin: str, raw: object) -> list[str]:
    if isinstance(raw, str):
        names = _split_items(raw, commas=True)
    else:
        names = [str(name) for name in raw] if isinstance(raw, list) else [str(raw)]
    if not names:
        return []
    shown = ", ".join(names)
    return [f"mpcov does not support coverage.py plugins: ignoring plugins = {shown} in {origin}"]


def _apply_paths(doc: _Document, cwd: str, environ: Mapping[str, str], out: _Settings) -> None:
    section = doc.sections["paths"]
    origin = f"{doc.path} [{section.label}]"
    entries = []
    for key, raw in section.values.items():
        ctx = _Ctx(cwd, f"{origin} {key}")
        entries.append(_paths_entry(key, _expand(raw, environ, ctx), ctx))
    out.set("paths", tuple(entries), origin)


def _apply_document(doc: _Document, cwd: str, environ: Mapping[str, str], out: _Settings) -> None:
    for name in doc.sections:
        if name == "paths":
            _apply_paths(doc, cwd, environ, out)
        else:
            _apply_section(doc, name, cwd, environ, out)


def _apply_environment(environ: Mapping[str, str], cwd: str, out: _Settings) -> None:
    raw = environ.get("MPCOV_CORE", "")
    if raw.strip():
        origin = "environment MPCOV_CORE"
        out.set("core", _to_core(raw, _Ctx(cwd, origin)), origin)


def _normalized_overrides(overrides: Mapping[str, object], cwd: str) -> dict[str, Any]:
    """Check command-line values like file values; None means "not given"."""
    result: dict[str, Any] = {}
    for name, raw in overrides.items():
        if name not in _FIELD_KINDS:
            raise TypeError(f"load_config() got an override for unknown setting {name!r}")
        if raw is not None:
            ctx = _Ctx(cwd, f"command line setting {name!r}")
            result[name] = _CONVERTERS[_FIELD_KINDS[name]](raw, ctx)
    return result


def load_config(
    rcfile: str | bool | None = None,
    *,
    cwd: str | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> tuple[Config, list[str]]:
    """Read the configuration; return it and a list of warning messages.

    `rcfile` is a file to read (ini-style, or TOML if it ends in ``.toml``),
    ``False`` to read none, or ``None``/``True`` to use ``MPCOV_RCFILE`` or
    search `cwd` (default: the current directory). `environ` (default
    ``os.environ``) supplies ``MPCOV_RCFILE``, ``MPCOV_CORE`` and ``$VAR``
    values. `overrides` maps Config field names to command-line values, which
    win over everything; a value of None is ignored.

    Raises ConfigError for a file that can't be read or parsed, or a bad value.
    """
    cwd = os.path.abspath(cwd if cwd is not None else os.getcwd())
    environ = os.environ if environ is None else environ
    out = _Settings()
    doc = _find_document(rcfile, cwd, environ, out.warnings)
    if doc is not None:
        _apply_document(doc, cwd, environ, out)
    _apply_environment(environ, cwd, out)
    out.values.setdefault("data_file", _to_data_file(Config.data_file, _Ctx(cwd, "default")))
    config = Config(**out.values, config_file=doc.path if doc else None, origins=out.origins)
    if overrides:
        config = config.replace(**_normalized_overrides(overrides, cwd))
    return config, out.warnings
