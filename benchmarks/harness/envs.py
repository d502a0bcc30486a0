"""Interpreters, virtual environments and downloaded sources for the benchmarks.

Everything lives under ``benchmarks/.work`` and is reused between runs while
the pinned versions stay the same; mpcov itself is rebuilt from the checkout
and reinstalled on every run, so the numbers are always for the code at hand.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: Variables that would change what a measured interpreter does.
_SCRUBBED_PREFIXES = ("PYTHON", "MPCOV_", "COVERAGE_", "SLIPCOVER_", "PYTEST_", "PIP_")
_SCRUBBED = {"VIRTUAL_ENV", "PYENV_VERSION"}


class SetupError(Exception):
    """A venv, a download or an install failed: the message says which."""


def clean_environ() -> dict[str, str]:
    """This process's environment without anything that steers Python or a coverage tool."""
    return {
        k: v for k, v in os.environ.items()
        if k not in _SCRUBBED and not k.startswith(_SCRUBBED_PREFIXES)
    }


def pyenv_root() -> str:
    """``$(pyenv root)``, else ``$PYENV_ROOT``, else ``~/.pyenv``."""
    try:
        out = subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=20)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")


def find_python(version: str) -> str | None:
    """The newest ``$(pyenv root)/versions/<version>.*`` interpreter, or None."""
    found = []
    pattern = os.path.join(pyenv_root(), "versions", f"{version}.*", "bin", f"python{version}")
    for path in glob.glob(pattern):
        m = re.search(r"/versions/(\d+)\.(\d+)\.(\d+)/bin/", path)
        if m and os.access(path, os.X_OK):
            found.append((tuple(int(x) for x in m.groups()), path))
    return max(found)[1] if found else None


def full_version(python: str) -> str:
    """``3.12.1`` for the interpreter `python`."""
    out = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def _run(cmd: Sequence[str], what: str) -> None:
    env = dict(clean_environ(), PIP_DISABLE_PIP_VERSION_CHECK="1")
    out = subprocess.run(list(cmd), capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise SetupError(f"{what} failed:\n$ {' '.join(cmd)}\n{(out.stdout + out.stderr)[-3000:]}")


@dataclass(frozen=True)
class Venv:
    """A virtual environment: its directory and its interpreter."""

    path: str

    @property
    def python(self) -> str:
        """The environment's ``bin/python``."""
        return os.path.join(self.path, "bin", "python")

    @property
    def bin(self) -> str:
        """The environment's ``bin`` directory."""
        return os.path.join(self.path, "bin")


def make_venv(base_python: str, path: str, requirements: Sequence[str],
              constraints: str | None, stamp: Mapping[str, object], with_pip: bool = True) -> Venv:
    """A venv at `path` with `requirements` installed, rebuilt when `stamp` changes.

    `stamp` (the pinned versions) is kept in the venv; a venv whose stamp or
    interpreter differs is deleted and made again.
    """
    venv = Venv(path)
    stamp_path = os.path.join(path, "bench-stamp.json")
    wanted = json.dumps({"python": base_python, **stamp}, sort_keys=True)
    try:
        with open(stamp_path) as f:
            if f.read() == wanted and os.path.exists(venv.python):
                return venv
    except FileNotFoundError:
        pass
    shutil.rmtree(path, ignore_errors=True)
    _run([base_python, "-m", "venv", *([] if with_pip else ["--without-pip"]), path],
         f"creating {path}")
    if requirements:
        cmd = [venv.python, "-m", "pip", "install", "-q", *requirements]
        if constraints:
            cmd += ["-c", constraints]
        _run(cmd, f"installing {', '.join(requirements)} into {path}")
    with open(stamp_path, "w") as f:
        f.write(wanted)
    return venv


def build_wheel(python: str, source: str, outdir: str) -> str:
    """Build the wheel of the project at `source` into an emptied `outdir`."""
    shutil.rmtree(outdir, ignore_errors=True)
    _run([python, "-m", "pip", "wheel", "-q", "--no-deps", "-w", outdir, source],
         f"building the wheel of {source}")
    wheels = glob.glob(os.path.join(outdir, "*.whl"))
    if len(wheels) != 1:
        raise SetupError(f"expected one wheel in {outdir}, found {wheels}")
    return wheels[0]


def _git(root: str, *args: str) -> str:
    out = subprocess.run(["git", "-C", root, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SetupError(f"git {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout


def export_rev(root: str, rev: str, workdir: str) -> str:
    """The files of the git repository `root` at revision `rev`, unpacked under
    `workdir`; returns that source tree."""
    tree = os.path.join(workdir, "src")
    shutil.rmtree(tree, ignore_errors=True)
    os.makedirs(tree)
    archive = os.path.join(workdir, "src.tar")
    _git(root, "archive", "--format=tar", "-o", archive, rev)
    with tarfile.open(archive) as tar:
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(tree, **kwargs)  # type: ignore[arg-type]
    return tree


def describe_source(root: str, rev: str | None) -> str:
    """Which mpcov is benchmarked: a revision, or the working tree and its state."""
    try:
        if rev:
            return f"git revision {rev} ({_git(root, 'rev-parse', '--short', rev).strip()})"
        head = _git(root, "rev-parse", "--short", "HEAD").strip()
        changed = _git(root, "status", "--porcelain", "--untracked-files=no").splitlines()
    except (SetupError, OSError):
        return f"the working tree of {root} (not a git checkout?)"
    state = f", {len(changed)} modified files" if changed else ", clean"
    return f"the working tree of {root} at {head}{state}"


def install_wheel(venv: Venv, wheel: str, constraints: str | None) -> None:
    """(Re)install `wheel` and its dependencies into `venv`."""
    cmd = [venv.python, "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", wheel]
    _run(cmd, f"installing {os.path.basename(wheel)} into {venv.path}")
    cmd = [venv.python, "-m", "pip", "install", "-q", wheel]
    _run(cmd + (["-c", constraints] if constraints else []),
         f"installing the dependencies of {wheel}")


def fetch_sdist(python: str, name: str, version: str, workdir: str) -> str:
    """Download and unpack the sdist of ``name==version``; returns its source tree."""
    downloads = os.path.join(workdir, "sdist")
    trees = os.path.join(workdir, "src")
    pattern = os.path.join(trees, f"{name.replace('-', '?')}-{version}")
    found = [p for p in glob.glob(pattern) if os.path.isdir(p)]
    if found:
        return found[0]
    _run([python, "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps",
          "-d", downloads, f"{name}=={version}"], f"downloading the sdist of {name}=={version}")
    archives = glob.glob(os.path.join(downloads, f"{name.replace('-', '?')}-{version}.tar.gz"))
    if not archives:
        raise SetupError(f"no sdist of {name}=={version} in {downloads}")
    os.makedirs(trees, exist_ok=True)
    with tarfile.open(archives[0]) as tar:
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(trees, **kwargs)  # type: ignore[arg-type]
    found = [p for p in glob.glob(pattern) if os.path.isdir(p)]
    if not found:
        raise SetupError(f"unpacking {archives[0]} made no {pattern}")
    return found[0]
