"""Static checks are part of the suite: ruff (lint) and mypy --strict (types)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "mpcov"

pytestmark = pytest.mark.skipif(
    sys.version_info[:2] != (3, 12),
    reason="static checks run once per test run, on Python 3.12 (they do not depend on it)",
)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.mark.skipif(not SRC.is_dir(), reason="needs the source checkout")
def test_ruff_is_clean() -> None:
    """Lint findings fail the suite, like a test failure."""
    res = _run("ruff", "check", "--output-format", "concise", "src", "tools", "tests")
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.skipif(not SRC.is_dir(), reason="needs the source checkout")
def test_mypy_strict_is_clean() -> None:
    """The package type-checks under mypy --strict (settings in pyproject.toml)."""
    res = _run("mypy", str(SRC))
    assert res.returncode == 0, res.stdout + res.stderr
