"""Fixtures shared by every test: a clean environment for each test."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _restore_process_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests never see (or leak) measurement settings of an outer run."""
    for var in ("MPCOV_RUN", "MPCOV_CORE", "MPCOV_RCFILE", "COVERAGE_PROCESS_START"):
        monkeypatch.delenv(var, raising=False)
    saved_path = list(sys.path)
    saved_cwd = os.getcwd()
    yield
    sys.path[:] = saved_path
    os.chdir(saved_cwd)
