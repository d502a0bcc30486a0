"""Test doubles shared by the unit tests of results and reports."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class FakeAnalysis:
    """The shape of mpcov.analysis.Analysis, with no source behind it: raw lines
    map to statements through `multiline`."""

    path: str
    statements: frozenset[int]
    excluded: frozenset[int] = frozenset()
    multiline: Mapping[int, int] = field(default_factory=dict)

    def executed(self, raw_lines: Iterable[int]) -> frozenset[int]:
        return frozenset(self.multiline.get(n, n) for n in raw_lines) & self.statements

    def missing(self, raw_lines: Iterable[int]) -> frozenset[int]:
        return self.statements - self.executed(raw_lines)
