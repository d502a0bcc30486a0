"""Which source files a process measures.

The parent (``mpcov run``, the pytest plugin) builds the rules once with
:func:`compile_rules`; they travel to every child in the run manifest as plain
tuples, and :class:`FileFilter` applies them there. This module runs in every
measured process, so it imports nothing beyond ``os`` and ``sys`` — in
particular not ``re`` (4-5 ms to import): file patterns are matched by the
small glob matcher below, which follows coverage.py's pattern rules:

* a pattern without ``/`` matches a file name in any directory;
* a leading ``*/`` or any ``**/`` matches any number of directories (or none);
* a trailing ``/*`` matches everything below a directory;
* ``*`` matches within one path component, ``?`` one character except ``/``,
  ``[...]`` one character of a set (``[^...]`` negated; as in coverage.py,
  ``!`` is not special);
* a pattern with a ``/`` that does not start with ``*`` or ``?`` is relative
  to the directory the rules were compiled in.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing costs milliseconds to import in every child
if TYPE_CHECKING:
    from collections.abc import Sequence

# A compiled glob is a tuple of tokens; each token is a tuple whose first item
# says what it is. Plain tuples, so that marshal can carry them.
Token = tuple[str, ...]
Glob = tuple[Token, ...]

_DIRS = ("dirs",)  # any directory prefix, possibly empty, ending in "/"
_REST = ("rest",)  # "/" followed by anything
_STAR = ("star",)  # any run of characters except "/"
_ONE = ("one",)  # one character except "/"


def compile_glob(pattern: str, cwd: str) -> Glob:
    """Compile one file pattern (coverage.py syntax) into tokens.

    `cwd` makes absolute a pattern that has a ``/`` and does not start with
    ``*`` or ``?`` (coverage.py's ``prep_patterns`` does the same).
    """
    pattern = pattern.replace("\\", "/")
    if "/" not in pattern:
        # A file name matches in any directory (coverage.py also adds the
        # name made absolute, which this already matches).
        pattern = "**/" + pattern
    elif pattern[0] not in "*?":
        # Made absolute and normalised, as coverage.py's prep_patterns does:
        # "./src/*" and "src/../lib/*" name directories of `cwd`.
        pattern = os.path.normpath(os.path.join(cwd, pattern)).replace("\\", "/")
    tokens: list[Token] = []
    pos, n = 0, len(pattern)
    while pos < n:
        rest = pattern[pos:]
        stars = len(rest) - len(rest.lstrip("*"))
        if stars and pos == 0 and rest[stars : stars + 1] == "/":
            tokens.append(_DIRS)
            pos += stars + 1
        elif rest.startswith("/") and rest.rstrip("*") == "/" and len(rest) > 1:
            tokens.append(_REST)
            pos = n
        elif rest.startswith("**/"):
            tokens.append(_DIRS)
            pos += 3
        elif stars:
            tokens.append(_STAR)
            pos += stars
        elif rest[0] == "?":
            tokens.append(_ONE)
            pos += 1
        elif rest[0] == "[" and "]" in rest[1:]:
            end = rest.index("]", 1)
            body = rest[1:end]
            # As in coverage.py (which hands the set to a regex): "^" negates,
            # "!" is an ordinary member.
            negate = body[:1] == "^"
            tokens.append(("set", body[1:] if negate else body, "!" if negate else ""))
            pos += end + 1
        else:
            _append_literal(tokens, rest[0])
            pos += 1
    return tuple(tokens)


def _append_literal(tokens: list[Token], char: str) -> None:
    if tokens and tokens[-1][0] == "lit":
        tokens[-1] = ("lit", tokens[-1][1] + char)
    else:
        tokens.append(("lit", char))


def _in_set(char: str, body: str) -> bool:
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            if body[i] <= char <= body[i + 2]:
                return True
            i += 3
        else:
            if body[i] == char:
                return True
            i += 1
    return False


def glob_match(glob: Glob, path: str, ti: int = 0, pi: int = 0) -> bool:
    """Does `path` (with ``/`` separators) match the compiled `glob` in full?"""
    while ti < len(glob):
        kind = glob[ti][0]
        if kind == "lit":
            text = glob[ti][1]
            if not path.startswith(text, pi):
                return False
            pi += len(text)
        elif kind == "one":
            if pi >= len(path) or path[pi] == "/":
                return False
            pi += 1
        elif kind == "set":
            # A set matches any one character, "/" included (a regex class does).
            if pi >= len(path):
                return False
            if _in_set(path[pi], glob[ti][1]) == bool(glob[ti][2]):
                return False
            pi += 1
        elif kind == "rest":
            return path.startswith("/", pi)
        elif kind == "star":
            end = path.find("/", pi)
            end = len(path) if end < 0 else end
            return any(glob_match(glob, path, ti + 1, k) for k in range(end, pi - 1, -1))
        else:  # dirs: empty, or up to and including any later "/"
            if glob_match(glob, path, ti + 1, pi):
                return True
            slash = path.find("/", pi)
            while slash >= 0:
                if glob_match(glob, path, ti + 1, slash + 1):
                    return True
                slash = path.find("/", slash + 1)
            return False
        ti += 1
    return pi == len(path)


def glob_match_any(globs: Sequence[Glob], path: str) -> bool:
    """Does `path` match any of `globs`?"""
    path = path.replace("\\", "/")
    return any(glob_match(g, path) for g in globs)


Rules = dict[str, object]


def compile_rules(
    *,
    cwd: str,
    source_dirs: Sequence[str] = (),
    include: Sequence[str] = (),
    omit: Sequence[str] = (),
    never: Sequence[str] = (),
    source_names: Sequence[str] = (),
) -> Rules:
    """Compile file-selection settings into the plain data children receive.

    `source_dirs` are directories (already resolved from package names);
    with any of them, only files under them are measured and `include` is
    ignored, as in coverage.py. `source_names` are packages or modules that
    could not be located when the run started (a program may put them on
    ``sys.path`` itself): files whose path ends in that package or module
    (``.../a/b/...`` or ``.../a/b.py`` for ``a.b``) count as source too.
    Files under `never` directories (mpcov's own hook) are not measured
    whatever the other rules say.
    """
    sep = os.sep
    fragments: list[str] = []
    for name in source_names:
        parts = sep.join(name.split("."))
        fragments += [f"{sep}{parts}{sep}", f"{sep}{parts}.py"]
    return {
        "source_names": tuple(fragments),
        "source": tuple(_dir_prefix(os.path.realpath(os.path.join(cwd, d))) for d in source_dirs),
        "include": tuple(compile_glob(p, cwd) for p in include)
        if not (source_dirs or source_names)
        else (),
        "omit": tuple(compile_glob(p, cwd) for p in omit),
        "never": tuple(os.path.abspath(os.path.join(cwd, p)) for p in never),
    }


def _dir_prefix(path: str) -> str:
    return path if path.endswith(os.sep) else path + os.sep


class FileFilter:
    """Decides, once per file name, whether a process measures that file.

    Without `source` or `include` rules every file is measured except those of
    the standard library, of any site-packages or dist-packages directory, of
    any virtualenv, and of mpcov itself.
    """

    def __init__(self, rules: Rules, mpcov_dir: str | None = None) -> None:
        self._source: tuple[str, ...] = rules.get("source", ())  # type: ignore[assignment]
        self._source_names: tuple[str, ...] = rules.get("source_names", ())  # type: ignore[assignment]
        self._include: tuple[Glob, ...] = rules.get("include", ())  # type: ignore[assignment]
        self._omit: tuple[Glob, ...] = rules.get("omit", ())  # type: ignore[assignment]
        here = mpcov_dir or os.path.dirname(os.path.abspath(__file__))
        never = [here, *rules.get("never", ())]  # type: ignore[misc]
        self._never = tuple(
            {_dir_prefix(p) for p in never} | {_dir_prefix(os.path.realpath(p)) for p in never}
        )
        self._third_party = self._third_party_prefixes()
        self._venv_dirs: dict[str, bool] = {}
        self.cache: dict[str, bool] = {}

    @staticmethod
    def _third_party_prefixes() -> tuple[str, ...]:
        stdlib = os.path.dirname(os.__file__)
        roots = {stdlib, os.path.realpath(stdlib)}
        for prefix in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix):
            roots.add(os.path.join(prefix, "lib"))
            roots.add(os.path.join(prefix, "lib64"))
        return tuple(_dir_prefix(r) for r in roots)

    def wanted(self, filename: str) -> bool:
        """Is `filename` (a code object's ``co_filename``) measured? Cached."""
        found = self.cache.get(filename)
        if found is None:
            found = self.cache[filename] = self._decide(filename)
        return found

    def _decide(self, filename: str) -> bool:
        if not filename or filename[0] == "<":  # <string>, <frozen ...>, <stdin>
            return False
        path = os.path.abspath(filename)
        if path.startswith(self._never):
            return False
        if self._source or self._source_names:
            if not self._in_source(path):
                return False
        elif self._include:
            if not glob_match_any(self._include, path):
                return False
        elif self._is_third_party(path):
            return False
        return not (self._omit and glob_match_any(self._omit, path))

    def _in_source(self, path: str) -> bool:
        real = os.path.realpath(path)
        if self._source and (path.startswith(self._source) or real.startswith(self._source)):
            return True
        for fragment in self._source_names:
            if fragment.endswith(".py") and path.endswith(fragment):
                return True
            if not fragment.endswith(".py") and fragment in path:
                return True
        return False

    def _is_third_party(self, path: str) -> bool:
        if path.startswith(self._third_party):
            return True
        parts = path.split(os.sep)
        if "site-packages" in parts or "dist-packages" in parts:
            return True
        return self._in_virtualenv(os.path.dirname(path))

    def _in_virtualenv(self, directory: str) -> bool:
        """Is `directory` inside a virtualenv (an ancestor holds pyvenv.cfg)?"""
        seen: list[str] = []
        answer = False
        while True:
            known = self._venv_dirs.get(directory)
            if known is not None:
                answer = known
                break
            seen.append(directory)
            if os.path.exists(os.path.join(directory, "pyvenv.cfg")):
                answer = True
                break
            parent = os.path.dirname(directory)
            if parent == directory:
                break
            directory = parent
        for d in seen:
            self._venv_dirs[d] = answer
        return answer
