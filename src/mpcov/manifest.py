"""The run manifest: the resolved settings every measured process reads at start.

``mpcov run`` (or the pytest plugin, or ``mpcov shell-env``) writes it once;
each child finds it through the ``MPCOV_RUN`` environment variable. It is a
``marshal``-ed dict (format 4, readable by every supported interpreter), so
loading it costs one small read and no imports.

Keys (format history: 1 = first version):

    format          1
    run_id          hex string shared by the whole run
    data_file       absolute path of the combined data file
    fragment_dir    absolute directory where processes write fragments
    rules           file-selection rules from mpcov.select.compile_rules
    branch          bool
    core            "monitoring" | "settrace" | None (the child chooses)
    flush_interval  seconds between periodic flushes
    hook_dir        absolute directory holding the sitecustomize hook
    context         label recorded with the data ("" for none)
    child_code      the child-side modules, compiled (mpcov.preload); may be empty
"""

import marshal
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MANIFEST_FORMAT = 1
ENV_VAR = "MPCOV_RUN"


class ManifestError(Exception):
    """The manifest named by MPCOV_RUN cannot be used."""


def fragment_dir_for(data_file: str) -> str:
    """Where processes write fragments for `data_file`: ``<data_file>.d``."""
    return data_file + ".d"


def write_manifest(path: str, manifest: "dict[str, Any]") -> None:
    """Write `manifest` atomically (children may read it at any moment)."""
    data = marshal.dumps({"format": MANIFEST_FORMAT, **manifest}, 4)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def read_manifest(path: str) -> "dict[str, Any]":
    """Read a manifest; ManifestError says what is wrong in one line."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ManifestError(f"cannot read run manifest {path} ({exc.strerror})") from None
    try:
        manifest = marshal.loads(data)
    except (EOFError, ValueError, TypeError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ManifestError(f"run manifest {path} is damaged or from another mpcov version")
    return manifest
