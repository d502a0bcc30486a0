"""Merging per-process fragments (and other data files) into the data file.

Safe to run at any time and any number of times, even concurrently: it works
under a file lock next to the data file, merges a fragment only once (the
store remembers every fragment it merged), deletes a fragment only after its
data is committed, and leaves alone the fragments of processes that are still
running. A damaged fragment keeps everything before the damage; one that is
unreadable as a whole is renamed ``*.damaged`` so it is reported once, not
lost and not retried forever.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from mpcov.errors import DataError
from mpcov.fragment import SUFFIX, Fragment, FragmentError, read_fragment
from mpcov.store import Store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from mpcov.files import PathAliases

#: Fragments merged per transaction: bounds memory and makes progress durable.
GROUP_SIZE = 200
LOCK_TIMEOUT = 600.0
#: How often a combine waiting for the lock tries again (filelock's default).
LOCK_POLL = 0.05


class CombineResult:
    """What a combine did, for the message users see.

    A plain class (no dataclasses import on the ``mpcov run`` path, see
    ``mpcov.config.Config``), compared and shown as a dataclass would be.
    """

    __slots__ = ("already_merged", "damaged", "data_files", "merged", "running")

    def __init__(
        self,
        merged: int = 0,
        already_merged: int = 0,
        running: int = 0,
        damaged: list[str] | None = None,
        data_files: int = 0,
    ) -> None:
        self.merged = merged
        self.already_merged = already_merged
        self.running = running
        self.damaged: list[str] = [] if damaged is None else damaged
        self.data_files = data_files

    def _fields(self) -> tuple[int, int, int, list[str], int]:
        return self.merged, self.already_merged, self.running, self.damaged, self.data_files

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CombineResult):
            return NotImplemented
        return self._fields() == other._fields()

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass

    def __repr__(self) -> str:
        names = ("merged", "already_merged", "running", "damaged", "data_files")
        shown = ", ".join(f"{n}={v!r}" for n, v in zip(names, self._fields(), strict=True))
        return f"CombineResult({shown})"

    def summary(self) -> str:
        """One line: ``Combined 12 process fragments (2 still running, left for later)``."""
        parts = [f"Combined {self.merged} process fragment{'s' if self.merged != 1 else ''}"]
        if self.data_files:
            parts.append(f"and {self.data_files} data file{'s' if self.data_files != 1 else ''}")
        notes = []
        if self.running:
            notes.append(f"{self.running} still running, left for a later combine")
        if self.already_merged:
            notes.append(f"{self.already_merged} already merged")
        if self.damaged:
            notes.append(f"{len(self.damaged)} damaged")
        text = " ".join(parts)
        return text + (f" ({'; '.join(notes)})" if notes else "")


def list_fragments(directory: str) -> list[str]:
    """Fragment files in `directory`, oldest first.

    A file that vanishes while the directory is read (a concurrent combine
    merged it) is not listed.
    """
    found: list[tuple[float, str, str]] = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if not entry.name.endswith(SUFFIX):
                    continue
                try:
                    if entry.is_file():
                        found.append((entry.stat().st_mtime, entry.name, entry.path))
                except FileNotFoundError:
                    continue
    except FileNotFoundError:
        return []
    found.sort()
    return [path for _mtime, _name, path in found]


def process_is_running(info: dict[str, object]) -> bool:
    """Is the process that wrote a fragment (with no end record) still alive here?"""
    if info.get("host") != os.uname().nodename:
        return False  # measured elsewhere: it is as finished as it will get
    import psutil

    pid = info.get("pid")
    start = info.get("start")
    if not isinstance(pid, int) or not isinstance(start, (int, float)):
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        # A process created after ours started is a reused pid: ours is gone.
        return bool(proc.create_time() <= start + 1.0)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def combine(
    data_file: str,
    *,
    fragment_dirs: Iterable[str] = (),
    data_files: Iterable[str] = (),
    aliases: PathAliases | None = None,
    keep: bool = False,
    warn: Callable[[str], None],
    is_running: Callable[[dict[str, object]], bool] = process_is_running,
    lock_timeout: float = LOCK_TIMEOUT,
    finish: Callable[[Store], None] | None = None,
) -> CombineResult:
    """Merge fragments from `fragment_dirs` and whole `data_files` into `data_file`.

    `finish`, if given, is called with the store after the merge, still under
    the lock, in a transaction of its own.
    """
    result = CombineResult()
    with data_file_lock(data_file, lock_timeout), Store(data_file, create=True) as store:
        for directory in fragment_dirs:
            _combine_dir(store, directory, aliases, keep, warn, is_running, result)
        for path in data_files:
            _combine_data_file(store, path, aliases, keep, result)
        if finish is not None:
            with store.transaction():
                finish(store)
    return result


@contextmanager
def data_file_lock(data_file: str, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold ``<data_file>.lock`` exclusively, waiting up to `timeout` s for it.

    An ``flock`` on the lock file, as filelock takes it on POSIX (so mpcov
    versions that used filelock exclude this one too), without filelock's
    import cost (15-80 ms, paid by every ``mpcov run``). The file stays in
    place on release, so that every waiter locks the same inode. Where
    ``flock`` is missing (no ``fcntl``, or a file system that refuses it),
    filelock does the locking.
    """
    path = data_file + ".lock"
    try:
        import fcntl
    except ImportError:
        fcntl = None  # type: ignore[assignment]
    try:
        if fcntl:
            # As filelock does: the data file's directory may not exist yet.
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644) if fcntl else -1
    except OSError as exc:
        raise DataError(f"Couldn't create lock file {path}: {exc.strerror}") from None
    try:
        if fd < 0 or not _flock(fd, timeout, path):
            with _filelock(path, timeout):
                yield
        else:
            yield
    finally:
        if fd >= 0:
            os.close(fd)  # closing the last descriptor releases the flock


def _flock(fd: int, timeout: float, path: str) -> bool:
    """Lock `fd` within `timeout` s; False when the file system has no flock."""
    import fcntl

    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno in (errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK):
                return False
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise DataError(f"Couldn't lock {path}: {exc.strerror}") from None
        if time.monotonic() >= deadline:
            raise _lock_timeout(path, timeout)
        time.sleep(LOCK_POLL)


@contextmanager
def _filelock(path: str, timeout: float) -> Iterator[None]:
    from filelock import FileLock, Timeout

    lock = FileLock(path)
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise _lock_timeout(path, timeout) from None
    except OSError as exc:
        raise DataError(f"Couldn't create lock file {path}: {exc.strerror}") from None
    try:
        yield
    finally:
        lock.release()


def _lock_timeout(path: str, timeout: float) -> DataError:
    return DataError(
        f"Couldn't lock {path} within {timeout:.0f} s",
        hint="another 'mpcov combine' is running; if none is, delete the lock file",
    )


def _combine_dir(
    store: Store,
    directory: str,
    aliases: PathAliases | None,
    keep: bool,
    warn: Callable[[str], None],
    is_running: Callable[[dict[str, object]], bool],
    result: CombineResult,
) -> None:
    paths = list_fragments(directory)
    canonical: dict[tuple[str, str], str] = {}
    for start in range(0, len(paths), GROUP_SIZE):
        done: list[str] = []
        with store.transaction():
            for path in paths[start : start + GROUP_SIZE]:
                if _merge_one(store, path, aliases, warn, is_running, result, canonical):
                    done.append(path)
        if not keep:
            for path in done:
                _remove(path)


def _merge_one(
    store: Store,
    path: str,
    aliases: PathAliases | None,
    warn: Callable[[str], None],
    is_running: Callable[[dict[str, object]], bool],
    result: CombineResult,
    canonical: dict[tuple[str, str], str],
) -> bool:
    """Merge one fragment; True when the file can go."""
    name = os.path.basename(path)
    if store.has_process(name):
        result.already_merged += 1
        return True
    try:
        frag = read_fragment(path)
    except FileNotFoundError:
        return False  # a concurrent combine took it
    except (FragmentError, OSError) as exc:
        if _writer_is_running(path, is_running):
            # Created but not yet written: its process is between open() and write().
            result.running += 1
        else:
            _set_aside(path, str(exc), warn, result)
        return False
    if frag.end is None and is_running(frag.process):
        result.running += 1
        return False
    if frag.problem:
        message = f"{path}: {frag.problem}; kept the data recorded before it"
        warn(message)
        result.damaged.append(message)
    _store_fragment(store, frag, aliases, canonical)
    result.merged += 1
    return True


def _writer_is_running(path: str, is_running: Callable[[dict[str, object]], bool]) -> bool:
    """Is the process that created the (unreadable) fragment `path` still running?

    Its host and pid come from the file name (see ``fragment_name``); the
    file's modification time stands in for its start time.
    """
    host, _, rest = os.path.basename(path)[: -len(SUFFIX)].rpartition(".")
    host, _, pid = host.rpartition(".")
    try:
        info: dict[str, object] = {"host": host, "pid": int(pid), "start": os.stat(path).st_mtime}
    except (ValueError, OSError):
        return False
    return bool(rest) and is_running(info)


def _canonical(path: str, cwd: str) -> str:
    """The absolute, normalised, symlink-free form of a measured path (as
    coverage.py reports it); relative names are relative to the process's cwd.
    (realpath costs several system calls: callers cache the result.)"""
    return os.path.realpath(os.path.join(cwd, path))


def _store_fragment(
    store: Store, frag: Fragment, aliases: PathAliases | None, seen: dict[tuple[str, str], str]
) -> None:
    info = dict(frag.process)
    cwd = str(info.get("cwd") or "/")
    end = frag.end or {}
    info["end"] = end.get("end")
    info["end_how"] = end.get("how") or ("unknown" if not frag.problem else "damaged")
    info["exit_status"] = end.get("status")
    info["problem"] = frag.problem
    store.set_measurement(bool(info.get("branch")))
    process_id = store.add_process(frag.name, info)
    lines: dict[str, dict[str, set[int]]] = {}
    arcs: dict[str, dict[str, set[tuple[int, int]]]] = {}
    for batch in frag.batches:
        ctx_lines = lines.setdefault(batch.context, {})
        for path, nums in batch.lines.items():
            ctx_lines.setdefault(_local_path(path, cwd, aliases, seen), set()).update(nums)
        ctx_arcs = arcs.setdefault(batch.context, {})
        for path, pairs in batch.arcs.items():
            ctx_arcs.setdefault(_local_path(path, cwd, aliases, seen), set()).update(pairs)
    for context, by_path in lines.items():
        store.add_lines(process_id, context, by_path, new=True)
    for context, arc_paths in arcs.items():
        if arc_paths:
            store.add_arcs(process_id, context, arc_paths)


def _local_path(
    path: str, cwd: str, aliases: PathAliases | None, seen: dict[tuple[str, str], str]
) -> str:
    """The name `path` (as measured in `cwd`) is stored under; cached for the combine."""
    key = (path, cwd)
    found = seen.get(key)
    if found is None:
        found = seen[key] = _resolve(path, cwd, aliases)
    return found


def _resolve(path: str, cwd: str, aliases: PathAliases | None) -> str:
    if aliases:
        mapped = aliases.map(path)
        if mapped != path:
            return mapped
    if os.path.isabs(path) or os.path.exists(cwd):
        return _canonical(path, cwd)
    return path


def _combine_data_file(
    store: Store, path: str, aliases: PathAliases | None, keep: bool, result: CombineResult
) -> None:
    if os.path.abspath(path) == os.path.abspath(store.path):
        return
    with Store(path) as other, store.transaction():
        store.update_from(other, aliases.map if aliases else None)
    result.data_files += 1
    if not keep:
        _remove(path)


def _set_aside(path: str, reason: str, warn: Callable[[str], None], result: CombineResult) -> None:
    aside = path + ".damaged"
    try:
        os.replace(path, aside)
        where = f"renamed to {os.path.basename(aside)}"
    except OSError:
        where = "left in place"
    message = f"Skipped unreadable fragment: {reason} ({where})"
    warn(message)
    result.damaged.append(message)


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def wait_for_running(
    directory: str,
    timeout: float,
    is_running: Callable[[dict[str, object]], bool] = process_is_running,
) -> int:
    """Wait up to `timeout` s for processes still writing fragments in `directory`.

    Returns how many are still running when it gives up (0 when none are).
    """
    deadline = time.monotonic() + timeout
    while True:
        running = 0
        for path in list_fragments(directory):
            try:
                frag = read_fragment(path)
            except (FragmentError, OSError):
                continue
            if frag.end is None and is_running(frag.process):
                running += 1
        if not running or time.monotonic() >= deadline:
            return running
        time.sleep(0.1)
