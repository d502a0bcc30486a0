"""mpcov's facade: what the command line and the pytest plugin call.

Everything here runs in the controlling process (never in measured
children): preparing a run (manifest + environment), running a program under
measurement, combining, and turning the data file into results.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence

import mpcov
from mpcov.config import Config
from mpcov.cores import choose_core
from mpcov.errors import MpcovError, NoDataError
from mpcov.manifest import (
    ENV_VAR,
    ManifestError,
    fragment_dir_for,
    read_manifest,
    write_manifest,
)
from mpcov.preload import child_code
from mpcov.select import compile_glob, compile_rules, glob_match_any

# Modules needed only after the program has run (combine, reports), or only
# by some commands (shutil, json, datetime, importlib.util), are imported
# where they are used: `mpcov run` starts the program sooner, and a short
# program's run costs less CPU in total.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO

    from mpcov.analysis import Analysis
    from mpcov.arcs import ArcAnalysis
    from mpcov.combine import CombineResult
    from mpcov.results import FileResult
    from mpcov.store import Store

Warn = Callable[[str], None]


def hook_dir() -> str | None:
    """The directory holding mpcov's sitecustomize hook (installed or checkout)."""
    package = os.path.dirname(os.path.abspath(mpcov.__file__))
    for candidate in (
        os.path.join(package, "_hook"),
        os.path.join(os.path.dirname(os.path.dirname(package)), "sitecustomize_hook"),
    ):
        if os.path.isfile(os.path.join(candidate, "sitecustomize.py")):
            return candidate
    return None


def resolve_source(config: Config, cwd: str) -> tuple[list[str], list[str]]:
    """Where `source` and `source_pkgs` point: (directories, package names not found).

    A package that cannot be imported now may still be importable by the
    program (it may extend ``sys.path`` itself): it is measured by name.
    """
    dirs: list[str] = []
    names: list[str] = []
    for entry in (*config.source, *config.source_pkgs):
        path = os.path.join(cwd, entry)
        if entry not in config.source_pkgs and os.path.isdir(path):
            dirs.append(os.path.abspath(path))
            continue
        found = _package_dir(entry, cwd)
        if found:
            dirs.append(found)
        elif all(part.isidentifier() for part in entry.split(".")):
            names.append(entry)
        else:
            raise MpcovError(f"source '{entry}' is neither a directory nor a package name")
    return dirs, names


def _package_dir(name: str, cwd: str) -> str | None:
    import importlib.util

    sys.path.insert(0, cwd)
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    finally:
        sys.path.remove(cwd)
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return os.path.abspath(next(iter(spec.submodule_search_locations)))
    if spec.origin and os.path.isfile(spec.origin):
        return os.path.dirname(os.path.abspath(spec.origin))
    return None


class PreparedRun:
    """A run ready to start processes: where data goes, and the environment.

    A plain class: no dataclasses import on the ``mpcov run`` path (see
    ``mpcov.config.Config``).
    """

    __slots__ = ("data_file", "env", "fragment_dir", "manifest_path")

    def __init__(
        self, manifest_path: str, data_file: str, fragment_dir: str, env: dict[str, str]
    ) -> None:
        self.manifest_path = manifest_path
        self.data_file = data_file
        self.fragment_dir = fragment_dir
        self.env = env

    def __repr__(self) -> str:
        return (f"PreparedRun(manifest_path={self.manifest_path!r}, "
                f"data_file={self.data_file!r}, fragment_dir={self.fragment_dir!r}, env=...)")


def prepare_run(
    config: Config,
    *,
    cwd: str,
    environ: Mapping[str, str],
    warn: Warn,
    context: str = "",
) -> PreparedRun:
    """Write a run manifest and build the environment that activates measurement."""
    data_file = os.path.abspath(os.path.join(cwd, config.data_file))
    fragment_dir = fragment_dir_for(data_file)
    try:
        os.makedirs(fragment_dir, exist_ok=True)
    except OSError as exc:
        raise MpcovError(
            f"Couldn't create the data directory {fragment_dir}: {exc.strerror}",
            hint="set [run] data_file to a writable location",
        ) from None
    run_id = os.urandom(16).hex()  # as unique as uuid4().hex, without importing uuid
    hooks = hook_dir()
    source_dirs, source_names = resolve_source(config, cwd)
    manifest = {
        "run_id": run_id,
        "data_file": data_file,
        "fragment_dir": fragment_dir,
        "source_dirs": source_dirs,
        "source_names": source_names,
        "rules": compile_rules(
            cwd=cwd,
            source_dirs=source_dirs,
            source_names=source_names,
            include=config.include,
            omit=config.omit,
            never=[hooks] if hooks else [],
        ),
        "branch": config.branch,
        "core": config.core,
        "flush_interval": config.flush_interval,
        "hook_dir": hooks,
        "context": context,
        "disable_warnings": list(config.disable_warnings),
        "child_code": child_code(choose_core(config.core, config.branch)[0], config.branch),
    }
    manifest_path = os.path.join(fragment_dir, f"run-{run_id[:12]}.manifest")
    try:
        write_manifest(manifest_path, manifest)
    except OSError as exc:
        raise MpcovError(
            f"Couldn't write the run manifest {manifest_path}: {exc.strerror}",
            hint="set [run] data_file to a writable location",
        ) from None
    env = dict(environ)
    env[ENV_VAR] = manifest_path
    if hooks:
        parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != hooks]
        env["PYTHONPATH"] = os.pathsep.join([hooks, *parts])
    return PreparedRun(manifest_path, data_file, fragment_dir, env)


def erase(config: Config, cwd: str) -> None:
    """Delete the data file and every fragment."""
    data_file = os.path.abspath(os.path.join(cwd, config.data_file))
    for path in (data_file, data_file + ".lock", data_file + "-journal"):
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise MpcovError(f"Couldn't erase {path}: {exc.strerror}",
                             hint="set [run] data_file to a writable location") from None
    _remove_tree(fragment_dir_for(data_file))


def _remove_tree(directory: str) -> None:
    """Delete `directory` and everything in it, ignoring errors (as
    ``shutil.rmtree(ignore_errors=True)``; shutil is imported only for
    subdirectories, which mpcov itself never makes)."""
    if os.path.islink(directory):
        return  # rmtree refuses a symbolic link, and so nothing is removed
    try:
        with os.scandir(directory) as entries:
            names = [(e.path, e.is_dir(follow_symlinks=False)) for e in entries]
    except OSError:
        return
    for path, is_dir in names:
        if is_dir:
            import shutil

            shutil.rmtree(path, ignore_errors=True)
            continue
        try:
            os.remove(path)
        except OSError:
            pass
    try:
        os.rmdir(directory)
    except OSError:
        pass


# Signals `mpcov run` passes on to the program instead of acting on them.
_FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def run_program(
    argv: Sequence[str],
    *,
    module: bool,
    env: Mapping[str, str],
    started: Callable[[int], None] = lambda pid: None,
) -> int:
    """Run `argv` with this interpreter, as ``python [-m] ...`` would, and wait.

    Returns the exit status as ``subprocess`` reports it (negative: killed by
    that signal). stdin, stdout and stderr are the program's own. SIGINT from
    the terminal reaches the program directly (same process group), so this
    process ignores it meanwhile; other termination signals sent to this
    process are forwarded. `started` is called with the program's pid.
    """
    from mpcov.runscript import launch_command

    command = launch_command(argv, module=module, env=env)
    try:
        proc = subprocess.Popen(command, env=dict(env))
    except OSError as exc:
        raise MpcovError(f"Couldn't run {argv[0]!r}: {exc.strerror}") from None
    started(proc.pid)
    previous = {}

    def forward(signum: int, _frame: object) -> None:
        try:
            proc.send_signal(signum)
        except OSError:
            pass

    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)
    for signum in _FORWARDED:
        previous[signum] = signal.signal(signum, forward)
    try:
        return proc.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def exit_like(status: int) -> int:
    """Make this process end the way the program did: die of the same signal,
    or return its exit code."""
    if status < 0:
        signum = -status
        signal.signal(signum, signal.SIG_DFL)
        sys.stdout.flush()
        sys.stderr.flush()
        os.kill(os.getpid(), signum)
        return 128 + signum  # only if the signal did not end us
    return status


def combine_data(
    config: Config,
    *,
    cwd: str,
    inputs: Sequence[str] = (),
    keep: bool = False,
    warn: Warn,
    exit_status: tuple[int, int] | None = None,
) -> CombineResult:
    """Merge this run's fragments (and any given data files or fragment dirs).

    `exit_status` is ``(pid, status)`` of the program ``mpcov run`` ran, recorded
    as :func:`record_exit_status` does, in the same transaction as the runs'
    `source` settings (one data file session, not three).
    """
    data_file = os.path.abspath(os.path.join(cwd, config.data_file))
    fragment_dirs = [fragment_dir_for(data_file)]
    data_files = []
    for entry in inputs:
        path = os.path.abspath(os.path.join(cwd, entry))
        if os.path.isdir(path):
            fragment_dirs.append(path)
        elif os.path.isfile(path):
            data_files.append(path)
        else:
            raise NoDataError(f"Couldn't combine from non-existent path '{entry}'")
    from mpcov.combine import combine
    from mpcov.files import PathAliases

    aliases = PathAliases(config.paths, cwd=cwd)
    dirs, names = _run_sources(fragment_dirs[0])

    def finish(store: Store) -> None:
        if dirs or names:
            _remember_source(store, dirs, names)
        if exit_status is not None:
            store.set_exit_status(os.uname().nodename, *exit_status)

    return combine(
        data_file,
        fragment_dirs=fragment_dirs,
        data_files=data_files,
        aliases=aliases or None,
        keep=keep,
        warn=warn,
        finish=finish if dirs or names or exit_status is not None else None,
    )


def _run_sources(fragment_dir: str) -> tuple[set[str], set[str]]:
    """The `source` directories and package names of the runs whose manifests
    are in `fragment_dir`."""
    dirs: set[str] = set()
    names: set[str] = set()
    try:
        with os.scandir(fragment_dir) as entries:
            manifests = [e.path for e in entries
                         if e.name.startswith("run-") and e.name.endswith(".manifest")]
    except OSError:
        return dirs, names
    for entry in sorted(manifests):
        try:
            manifest = read_manifest(entry)
        except ManifestError:
            continue
        dirs.update(manifest.get("source_dirs") or ())
        names.update(manifest.get("source_names") or ())
    return dirs, names


def _remember_source(store: Store, dirs: set[str], names: set[str]) -> None:
    """Keep the runs' `source` settings in the data file, so a later report lists
    never-executed source files even when `source` was given on the command line."""
    import json

    dirs = dirs | set(json.loads(store.get_meta("source_dirs") or "[]"))
    names = names | set(json.loads(store.get_meta("source_names") or "[]"))
    store.set_meta("source_dirs", json.dumps(sorted(dirs)))
    store.set_meta("source_names", json.dumps(sorted(names)))


def wait_for_processes(config: Config, cwd: str) -> int:
    """Wait (up to ``wait_for_children`` s) for measured processes still running."""
    data_file = os.path.abspath(os.path.join(cwd, config.data_file))
    from mpcov.combine import wait_for_running

    return wait_for_running(fragment_dir_for(data_file), config.wait_for_children)


# -- results ------------------------------------------------------------------


def _file_selector(config: Config, cwd: str) -> Callable[[str], bool]:
    include = [compile_glob(p, cwd) for p in config.report_include]
    omit = [compile_glob(p, cwd) for p in config.report_omit]

    def wanted(path: str) -> bool:
        if include and not glob_match_any(include, path):
            return False
        return not (omit and glob_match_any(omit, path))

    return wanted


def _source_dirs(config: Config, cwd: str, store: Store, measured: set[str]) -> list[str]:
    """The source directories of the data: from the configuration, else those
    the runs recorded; packages measured by name are found from measured files."""
    if config.source or config.source_pkgs:
        dirs, names = resolve_source(config, cwd)
    else:
        import json

        dirs = json.loads(store.get_meta("source_dirs") or "[]")
        names = json.loads(store.get_meta("source_names") or "[]")
    for name in names:
        segment = os.sep + os.sep.join(name.split(".")) + os.sep
        for path in measured:
            at = path.find(segment)
            if at >= 0:
                dirs.append(path[: at + len(segment) - 1])
                break
    return sorted(set(dirs))


def _unexecuted_files(config: Config, cwd: str, dirs: list[str], measured: set[str]
                      ) -> Iterator[str]:
    """Python files under source directories that never ran (coverage.py
    reports them as entirely missing)."""
    rules = compile_rules(cwd=cwd, omit=config.omit)
    omit = rules["omit"]
    for top in (os.path.realpath(d) for d in dirs):
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if _importable_dir(dirpath, d))
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                if (
                    name.endswith(".py")
                    and name[:-3].isidentifier()
                    and path not in measured
                    and not (omit and glob_match_any(omit, path))  # type: ignore[arg-type]
                ):
                    yield path


def _importable_dir(parent: str, name: str) -> bool:
    return name.isidentifier() and os.path.isfile(os.path.join(parent, name, "__init__.py"))


def load_results(
    config: Config,
    *,
    cwd: str,
    warn: Warn,
    with_contexts: bool = False,
) -> tuple[list[FileResult], bool]:
    """Read the data file and analyse every measured file: (results, has_arcs)."""
    data_file = os.path.abspath(os.path.join(cwd, config.data_file))
    from mpcov.analysis import AnalysisCache
    from mpcov.arcs import ArcAnalysisCache
    from mpcov.results import build_results
    from mpcov.store import Store

    cache = AnalysisCache()
    arc_cache = ArcAnalysisCache()

    def analyze(path: str) -> Analysis:
        return cache.analyze(path, tuple(config.exclude))

    def analyze_arcs(path: str) -> ArcAnalysis:
        return arc_cache.analyze(path, exclude=config.exclude, partial=config.partial)

    with Store(data_file) as store:
        branch = store.has_arcs()
        measured = set(store.measured_files())
        results = build_results(
            store,
            analyze=analyze,
            cwd=cwd,
            include_file=_file_selector(config, cwd),
            unexecuted_files=list(
                _unexecuted_files(config, cwd, _source_dirs(config, cwd, store, measured), measured)
            ),
            ignore_errors=config.ignore_errors,
            warn=warn,
            with_contexts=with_contexts,
            analyze_arcs=analyze_arcs if branch else None,
        )
        return results, branch


def record_exit_status(config: Config, cwd: str, pid: int, status: int) -> None:
    """Note the exit status of the program `mpcov run` ran (a measured process
    cannot see its own status when it ends normally)."""
    data_file = os.path.abspath(os.path.join(cwd, config.data_file))
    if not os.path.exists(data_file):
        return
    from mpcov.store import Store

    with Store(data_file) as store, store.transaction():
        store.set_exit_status(os.uname().nodename, pid, status)


def write_process_tree(config: Config, *, cwd: str, out: IO[str]) -> None:
    """Write the tree of measured processes with their executed-line counts."""
    from mpcov.report.processes import render_processes

    data_file = os.path.abspath(os.path.join(cwd, config.data_file))
    from mpcov.store import Store

    with Store(data_file) as store:
        procs = store.processes()
        if not procs:
            raise NoDataError("No data to report.")
        render_processes(procs, store.process_line_counts(), out)


def timestamp() -> str:
    """Now, as coverage.py writes it in report metadata."""
    import datetime

    return datetime.datetime.now().isoformat()
