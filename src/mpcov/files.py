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


def _prefix_regex(pattern: str) -> re.Pattern[str]:
    """A regex matching `pattern` (a glob) at the start of a path, up to a separator."""
    pattern = pattern.rstrip("/\\")
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
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
        out.insert(0, r"(?:.*[/\\])?")  # a relative pattern matches at any depth
    return re.compile("".join(out) + r"(?=[/\\])", re.IGNORECASE if os.name == "nt" else 0)


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

        The first rule whose result exists wins; when none exists, the first
        rule that matched; when none matched, `path` unchanged.
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
        return first or path

    def __bool__(self) -> bool:
        return bool(self._rules)


def relative_name(path: str, cwd: str) -> str:
    """How a report names `path`: relative to `cwd` when under it."""
    try:
        rel = os.path.relpath(path, cwd)
    except ValueError:
        return path
    return path if rel.startswith(os.pardir) else rel
