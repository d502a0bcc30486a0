"""``mpcov debug``: what mpcov would do here, and why."""

from __future__ import annotations

import dataclasses
import os
import sys
from typing import IO

import mpcov
from mpcov.api import hook_dir
from mpcov.combine import list_fragments
from mpcov.config import Config
from mpcov.cores import choose_core
from mpcov.manifest import fragment_dir_for


def write_debug(topic: str, config: Config, cwd: str, out: IO[str]) -> None:
    """Write the sections asked for (`topic`: all, config, sys or data)."""
    if topic in ("all", "sys"):
        _section(out, "sys", _sys_info(config))
    if topic in ("all", "config"):
        _section(out, "config", _config_info(config))
    if topic in ("all", "data"):
        _section(out, "data", _data_info(config, cwd))


def _section(out: IO[str], title: str, rows: list[tuple[str, str]]) -> None:
    out.write(f"-- {title} " + "-" * (60 - len(title)) + "\n")
    width = max((len(k) for k, _ in rows), default=0)
    for key, value in rows:
        out.write(f"{key:>{width}}: {value}\n")


def _sys_info(config: Config) -> list[tuple[str, str]]:
    core, why = choose_core(os.environ.get("MPCOV_CORE") or config.core, config.branch)
    return [
        ("mpcov", f"{mpcov.__version__} at {os.path.dirname(mpcov.__file__)}"),
        ("python", f"{sys.version.split()[0]} ({sys.executable})"),
        ("core", f"{core}: {why}"),
        ("hook dir", hook_dir() or "(not found)"),
        ("MPCOV_RUN", os.environ.get("MPCOV_RUN", "(not set)")),
    ]


def _config_info(config: Config) -> list[tuple[str, str]]:
    rows = [("config file", config.config_file or "(none)")]
    for field in dataclasses.fields(config):
        if field.name in ("origins", "config_file"):
            continue
        value = getattr(config, field.name)
        origin = config.origins.get(field.name, "default")
        rows.append((field.name, f"{value!r}  [{origin}]"))
    return rows


def _data_info(config: Config, cwd: str) -> list[tuple[str, str]]:
    data_file = os.path.abspath(os.path.join(cwd, config.data_file))
    frag_dir = fragment_dir_for(data_file)
    size = os.path.getsize(data_file) if os.path.exists(data_file) else None
    return [
        ("data file", f"{data_file} ({'missing' if size is None else f'{size} bytes'})"),
        ("fragments", f"{len(list_fragments(frag_dir))} in {frag_dir}"),
    ]
