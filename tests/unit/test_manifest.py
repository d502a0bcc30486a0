"""Tests of mpcov.manifest: the settings file every measured process reads at start.

What users rely on: a child gets exactly the settings of its run, and when the
manifest is gone or unusable the one-line warning says which file and why.
"""

from __future__ import annotations

import marshal
import os
from pathlib import Path
from typing import Any

import pytest

from mpcov.manifest import MANIFEST_FORMAT, ManifestError, read_manifest, write_manifest
from mpcov.select import compile_rules


def _settings(tmp_path: Path) -> dict[str, Any]:
    return {
        "run_id": "0123456789abcdef" * 2,
        "data_file": str(tmp_path / ".mpcov"),
        "fragment_dir": str(tmp_path / ".mpcov.d"),
        "rules": compile_rules(
            cwd=str(tmp_path), source_dirs=["src"], omit=["*/test_*.py", "[ab]?.py"], never=["hook"]
        ),
        "branch": True,
        "core": None,
        "flush_interval": 0.5,
        "hook_dir": str(tmp_path / "hook"),
        "context": "",
        "disable_warnings": ["no-data-collected"],
    }


def test_round_trip(tmp_path: Path) -> None:
    """A child reads back exactly what the parent wrote, plus the format number."""
    settings = _settings(tmp_path)
    path = str(tmp_path / "run.manifest")
    write_manifest(path, settings)
    assert read_manifest(path) == {"format": MANIFEST_FORMAT, **settings}


def test_write_replaces_atomically_and_leaves_no_temp_file(tmp_path: Path) -> None:
    """Rewriting a manifest never exposes a half-written file, nor leaves litter."""
    path = str(tmp_path / "run.manifest")
    write_manifest(path, {"run_id": "first"})
    write_manifest(path, {"run_id": "second"})
    assert read_manifest(path)["run_id"] == "second"
    assert os.listdir(tmp_path) == ["run.manifest"]


def test_missing_manifest_names_the_file_and_the_reason(tmp_path: Path) -> None:
    """MPCOV_RUN pointing at a removed manifest is reported, not a traceback."""
    path = str(tmp_path / "gone.manifest")
    with pytest.raises(ManifestError) as info:
        read_manifest(path)
    assert str(info.value) == f"cannot read run manifest {path} (No such file or directory)"


def test_unreadable_manifest_path(tmp_path: Path) -> None:
    """A directory where the manifest should be is reported the same way."""
    with pytest.raises(ManifestError) as info:
        read_manifest(str(tmp_path))
    assert str(info.value) == f"cannot read run manifest {tmp_path} (Is a directory)"


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00\x01garbage",
        marshal.dumps({"format": MANIFEST_FORMAT, "run_id": "x"}, 4)[:-3],
        marshal.dumps(["format", 1], 4),
        marshal.dumps({"run_id": "x"}, 4),
        marshal.dumps({"format": MANIFEST_FORMAT + 1, "run_id": "x"}, 4),
        b"format = 1\n",
    ],
    ids=["empty", "garbage", "truncated", "not-a-dict", "no-format", "newer-format", "text"],
)
def test_damaged_or_foreign_manifest(tmp_path: Path, content: bytes) -> None:
    """Anything but a manifest of this format is refused with the file named."""
    path = tmp_path / "run.manifest"
    path.write_bytes(content)
    with pytest.raises(ManifestError) as info:
        read_manifest(str(path))
    assert str(info.value) == f"run manifest {path} is damaged or from another mpcov version"

