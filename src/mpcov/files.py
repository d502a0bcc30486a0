"""File names: remapping paths measured elsewhere, and naming files in reports.

``[paths]`` works as in coverage.py: each entry lists equivalent locations;
the first is where the files are here, the others are patterns (globs, as in
``omit``) for where they were measured (another machine, a container, a CI
shard). A measured path that starts with any of the patterns is rewritten to
start with the first location instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence

# Any number of directories, or none; the fewest that make the rest match, so
# that the prefix replaced is the outermost one ("*/src" in /a/src/b/src/m.py
# is /a/src, not /a/src/b/src).
_ANY_DIRS = r"(?:.*?[/\\])?"


def _prefix_regex(pattern: str) -> re.Pattern[str]:
    """A regex matching `pattern` (a glob) at the start of a path, up to a separator.

    As in coverage.py, a leading ``*/`` and any ``**/`` match any number of
    directories (or none), and case is ignored: the files may have been
    measured on a case-insensitive file system.
    """
    pattern = pattern.rstrip("/\\")
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        stars = len(pattern) - i - len(pattern[i:].lstrip("*"))
        if stars and (i == 0 or stars > 1) and pattern[i + stars : i + stars + 1] in ("/", "\\"):
            out.append(_ANY_DIRS)
            i += stars + 1
            continue
        if stars > 1:
            out.append(".*")
            i += stars
            continue
        if c == "*":
            out.append(r"[^/\\]*")
        elif c == "?":
            out.append(r"[^/\\]")
        elif c in "/\\":
            out.append(r"[/\\]")
        else:
            out.append(re.escape(c))
        i += 1
    if not pattern.startswith(("*", "/", "\\")) and not re.match(r"[A-Za-z]:", pattern):
        out.insert(0, _ANY_DIRS)  # a relative pattern matches at any depth
    return re.compile("".join(out) + r"(?=[/\\])", re.IGNORECASE)


class PathAliases:
    """Rewrites measured paths according to ``[paths]`` settings.

    `exists` is how to check that a rewritten path is there; tests hand in
    their own.
    """

    def __init__(
        self,
        paths: Sequence[tuple[str, Sequence[str]]],
        *,
        cwd: str,
        exists: Callable[[str], bool] = os.path.exists,
    ) -> None:
        self._rules: list[tuple[re.Pattern[str], str]] = []
        self._exists = exists
        for _name, locations in paths:
            if not locations:
                continue
            canonical = locations[0]
            if not os.path.isabs(canonical):
                canonical = os.path.join(cwd, canonical)
            canonical = canonical.rstrip("/\\")
            for pattern in locations:
                self._rules.append((_prefix_regex(pattern), canonical))

    def map(self, path: str) -> str:
        """The local path for a measured `path`.

        The first rule whose result exists wins; when none exists, `path` itself
        if it exists here (a project directory named like the package it holds
        must not be remapped into itself), else the first rule that matched;
        when none matched, `path` unchanged.
        """
        first = None
        for regex, canonical in self._rules:
            match = regex.match(path)
            if match:
                rest = path[match.end() :].lstrip("/\\").replace("\\", "/")
                new = os.path.normpath(os.path.join(canonical, *rest.split("/")))
                if new == path or self._exists(new):
                    return new
                first = first or new
        if first is None or self._exists(path):
            return path
        return first

    def __bool__(self) -> bool:
        return bool(self._rules)


def relative_name(path: str, cwd: str) -> str:
    """How a report names `path`: relative to `cwd` when under it."""
    try:
        rel = os.path.relpath(path, cwd)
    except ValueError:
        return path
    outside = rel == os.pardir or rel.startswith(os.pardir + os.sep)
    return path if outside else rel
