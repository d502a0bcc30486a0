"""Tests of mpcov.combine: fragments and other data files into the data file.

What users rely on: ``mpcov combine`` can run at any moment, any number of
times, even several at once: it loses nothing, counts nothing twice, leaves
the fragments of processes still running, and a damaged fragment costs only
its damaged part, with a warning naming it.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from filelock import FileLock

from mpcov import combine as combine_module
from mpcov.combine import (
    CombineResult,
    combine,
    data_file_lock,
    list_fragments,
    process_is_running,
    wait_for_running,
)
from mpcov.errors import BranchMismatchError, DataError
from mpcov.files import PathAliases
from mpcov.fragment import SUFFIX, FragmentWriter
from mpcov.manifest import fragment_dir_for
from mpcov.store import Store

HOST = "testhost"  # not this machine: process_is_running would say "finished"


class Warnings(list[str]):
    """Collects warnings; callable as combine's `warn`."""

    def __call__(self, message: str) -> None:
        self.append(message)


@pytest.fixture
def warn() -> Warnings:
    return Warnings()


@pytest.fixture
def frag_dir(tmp_path: Path) -> Path:
    directory = tmp_path / ".mpcov.d"
    directory.mkdir()
    return directory


@pytest.fixture
def data_file(tmp_path: Path) -> str:
    return str(tmp_path / ".mpcov")


_clock = iter(range(1_000_000))


def write_fragment(
    directory: Path,
    pid: int,
    lines: dict[str, set[int]] | None = None,
    *,
    context: str = "",
    arcs: dict[str, set[tuple[int, int]]] | None = None,
    end: bool = True,
    branch: bool = False,
    batches: int = 1,
) -> str:
    """A fragment as a measured process writes it; files are ordered by creation."""
    process = {
        "host": HOST,
        "pid": pid,
        "ppid": 1,
        "argv": ["python", f"p{pid}.py"],
        "start": 1000.0 + pid,
        "branch": branch,
        "run_id": "r",
    }
    writer = FragmentWriter(str(directory), process)
    for _ in range(batches):
        writer.write_data(
            context, lines if lines is not None else {f"/src/m{pid}.py": {pid}}, arcs or {}
        )
    if end:
        writer.write_end("exit", 0, 2000.0 + pid)
    else:
        writer.open()
    writer.close()
    stamp = 1_600_000_000 + next(_clock)
    os.utime(writer.path, (stamp, stamp))
    return writer.path


def never_running(info: dict[str, object]) -> bool:
    return False


def run_combine(
    data_file: str, frag_dir: Path, warn: Callable[[str], None], **kwargs: Any
) -> CombineResult:
    kwargs.setdefault("is_running", never_running)
    return combine(data_file, fragment_dirs=[str(frag_dir)], warn=warn, **kwargs)


def snapshot(data_file: str) -> tuple[list[tuple[str, Any, Any]], dict[str, set[int]]]:
    """Everything a report would see: processes and lines."""
    with Store(data_file) as store:
        procs = [(p["fragment"], p["pid"], p["exit_status"]) for p in store.processes()]
        return sorted(procs, key=lambda p: (p[1], p[0])), store.all_lines()


def fragments_in(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


# --- Merging ------------------------------------------------------------------------------------


def test_merges_finished_fragments_and_deletes_them(
    data_file: str, frag_dir: Path, warn: Warnings
) -> None:
    """Every process's lines reach the data file; merged fragments are removed."""
    for pid in (1, 2, 3):
        write_fragment(frag_dir, pid, {"/src/shared.py": {pid, 10}, f"/src/own{pid}.py": {1}})
    result = run_combine(data_file, frag_dir, warn)
    assert (result.merged, result.running, result.already_merged, result.damaged) == (3, 0, 0, [])
    assert result.summary() == "Combined 3 process fragments"
    assert fragments_in(frag_dir) == []
    procs, lines = snapshot(data_file)
    assert [p[1] for p in procs] == [1, 2, 3]
    assert lines == {
        "/src/shared.py": {1, 2, 3, 10},
        "/src/own1.py": {1},
        "/src/own2.py": {1},
        "/src/own3.py": {1},
    }
    assert warn == []


def test_process_records_say_how_processes_ended(
    data_file: str, frag_dir: Path, warn: Warnings
) -> None:
    """The end record's status and a missing end record both reach the process list."""
    write_fragment(frag_dir, 1)
    write_fragment(frag_dir, 2, end=False)
    run_combine(data_file, frag_dir, warn)
    with Store(data_file) as store:
        by_pid = {p["pid"]: p for p in store.processes()}
    assert (by_pid[1]["end_how"], by_pid[1]["exit_status"], by_pid[1]["end"]) == ("exit", 0, 2001.0)
    assert (by_pid[2]["end_how"], by_pid[2]["exit_status"], by_pid[2]["problem"]) == (
        "unknown",
        None,
        None,
    )


def test_contexts_and_arcs_are_merged(data_file: str, frag_dir: Path, warn: Warnings) -> None:
    """Per-test contexts and branch arcs of every batch are kept."""
    write_fragment(
        frag_dir,
        1,
        {"/a.py": {1, 2}},
        context="test_a",
        arcs={"/a.py": {(1, 2)}},
        branch=True,
        batches=2,
    )
    write_fragment(
        frag_dir, 2, {"/a.py": {3}}, context="test_b", arcs={"/a.py": {(2, 3)}}, branch=True
    )
    run_combine(data_file, frag_dir, warn)
    with Store(data_file) as store:
        assert store.has_arcs()
        assert store.arcs("/a.py") == {(1, 2), (2, 3)}
        assert store.line_contexts("/a.py") == {
            1: ["pid 1: python p1.py test_a"],
            2: ["pid 1: python p1.py test_a"],
            3: ["pid 2: python p2.py test_b"],
        }


def test_leaves_fragments_of_running_processes(
    data_file: str, frag_dir: Path, warn: Warnings
) -> None:
    """A process still writing keeps its fragment until a later combine."""
    write_fragment(frag_dir, 1)
    running = write_fragment(frag_dir, 2, end=False)
    ended_but_alive = write_fragment(frag_dir, 3)  # said goodbye: finished whatever psutil says
    asked: list[object] = []

    def is_running(info: dict[str, object]) -> bool:
        asked.append(info["pid"])
        return info["pid"] in (2, 3)

    result = run_combine(data_file, frag_dir, warn, is_running=is_running)
    assert (result.merged, result.running) == (2, 1)
    assert (
        result.summary()
        == "Combined 2 process fragments (1 still running, left for a later combine)"
    )
    assert asked == [2]
    assert fragments_in(frag_dir) == [os.path.basename(running)]
    assert not os.path.exists(ended_but_alive)

    result = run_combine(data_file, frag_dir, warn)  # the process has ended since
    assert (result.merged, result.running) == (1, 0)
    assert [p[1] for p in snapshot(data_file)[0]] == [1, 2, 3]


def test_second_combine_merges_nothing_and_loses_nothing(
    data_file: str, frag_dir: Path, warn: Warnings
) -> None:
    """Combining again is harmless."""
    for pid in range(1, 6):
        write_fragment(frag_dir, pid)
    run_combine(data_file, frag_dir, warn)
    before = snapshot(data_file)
    result = run_combine(data_file, frag_dir, warn)
    assert (result.merged, result.already_merged) == (0, 0)
    assert result.summary() == "Combined 0 process fragments"
    assert snapshot(data_file) == before


def test_keep_keeps_fragments_and_later_combines_do_not_double_count(
    data_file: str, frag_dir: Path, warn: Warnings
) -> None:
    """--keep leaves the files; combining them again adds nothing, and finally removes them."""
    for pid in range(1, 4):
        write_fragment(frag_dir, pid, {"/a.py": {pid}})
    names = fragments_in(frag_dir)
    first = run_combine(data_file, frag_dir, warn, keep=True)
    assert first.merged == 3
    assert fragments_in(frag_dir) == names
    before = snapshot(data_file)

    again = run_combine(data_file, frag_dir, warn, keep=True)
    assert (again.merged, again.already_merged) == (0, 3)
    assert again.summary() == "Combined 0 process fragments (3 already merged)"
    assert fragments_in(frag_dir) == names

    last = run_combine(data_file, frag_dir, warn)
    assert (last.merged, last.already_merged) == (0, 3)
    assert fragments_in(frag_dir) == []
    assert snapshot(data_file) == before
    with Store(data_file) as store:
        assert store.process_line_counts() == {p["id"]: 1 for p in store.processes()}


def test_same_directory_given_twice_counts_once(
    data_file: str, frag_dir: Path, warn: Warnings
) -> None:
    """`mpcov combine .mpcov.d` names the default directory again: no double count."""
    write_fragment(frag_dir, 1)
    result = combine(data_file, fragment_dirs=[str(frag_dir), str(frag_dir)], warn=warn)
    assert result.merged == 1
    assert len(snapshot(data_file)[0]) == 1


def test_missing_fragment_directory_is_nothing_to_do(
    data_file: str, tmp_path: Path, warn: Warnings
) -> None:
    """No fragments yet is not an error: the data file is created empty."""
    result = combine(data_file, fragment_dirs=[str(tmp_path / "nope")], warn=warn)
    assert result.merged == 0
    assert snapshot(data_file) == ([], {})


# --- Damage -------------------------------------------------------------------------------------


def test_unreadable_fragment_is_set_aside_and_the_rest_kept(
    data_file: str, frag_dir: Path, warn: Warnings
) -> None:
    """A fragment with no usable content is renamed .damaged, once, with a warning naming it."""
    write_fragment(frag_dir, 1)
    bad = frag_dir / ("testhost.99.deadbeef" + SUFFIX)
    bad.write_bytes(b"garbage that is not a fragment")
    write_fragment(frag_dir, 2)
    result = run_combine(data_file, frag_dir, warn)
    assert result.merged == 2
    assert fragments_in(frag_dir) == [bad.name + ".damaged"]
    assert len(warn) == 1
    assert warn[0] == (
        f"Skipped unreadable fragment: {bad}: not an mpcov data fragment (bad header) "
        f"(renamed to {bad.name}.damaged)"
    )
    assert result.damaged == warn
    assert result.summary() == "Combined 2 process fragments (1 damaged)"
    assert [p[1] for p in snapshot(data_file)[0]] == [1, 2]

    again = run_combine(data_file, frag_dir, Warnings())
    assert (again.merged, again.damaged) == (0, [])


def test_truncated_fragment_keeps_its_whole_batches(
    data_file: str, frag_dir: Path, warn: Warnings
) -> None:
    """A process killed mid-write contributes every batch it finished writing."""
    writer = FragmentWriter(str(frag_dir), {"host": HOST, "pid": 5, "start": 1.0, "argv": ["p"]})
    writer.write_data("", {"/a.py": {1, 2}}, {})
    writer.write_data("", {"/b.py": {3}}, {})
    whole = os.path.getsize(writer.path)
    writer.write_data("", {"/c.py": {4}}, {})
    writer.close()
    with open(writer.path, "r+b") as f:
        f.truncate(whole + 11)
    write_fragment(frag_dir, 6, {"/d.py": {5}})

    result = run_combine(data_file, frag_dir, warn, is_running=lambda info: False)
    assert result.merged == 2
    assert warn == [
        f"{writer.path}: truncated record at byte {whole}; kept the data recorded before it"
    ]
    assert result.damaged == warn
    assert fragments_in(frag_dir) == []
    lines = snapshot(data_file)[1]
    assert lines == {"/a.py": {1, 2}, "/b.py": {3}, "/d.py": {5}}
    with Store(data_file) as store:
        damaged = next(p for p in store.processes() if p["pid"] == 5)
    assert (damaged["end_how"], damaged["problem"]) == (
        "damaged",
        f"truncated record at byte {whole}",
    )


def test_fragment_being_created_is_not_set_aside(
    data_file: str, frag_dir: Path, warn: Warnings
) -> None:
    """An empty fragment whose process is alive (between creating and writing the file)
    is left for later, not renamed away from under the process."""
    empty = frag_dir / ("build.example.com.4321.0a1b2c3d" + SUFFIX)
    empty.write_bytes(b"")
    asked: list[dict[str, object]] = []

    def is_running(info: dict[str, object]) -> bool:
        asked.append(info)
        return True

    result = run_combine(data_file, frag_dir, warn, is_running=is_running)
    assert (result.running, result.damaged, warn) == (1, [], [])
    assert fragments_in(frag_dir) == [empty.name]
    assert [(a["host"], a["pid"]) for a in asked] == [("build.example.com", 4321)]
    assert asked[0]["start"] == os.stat(empty).st_mtime

    result = run_combine(data_file, frag_dir, warn)  # the process is gone: it is damage now
    assert len(result.damaged) == 1
    assert fragments_in(frag_dir) == [empty.name + ".damaged"]


def test_branch_and_line_fragments_do_not_mix(
    data_file: str, frag_dir: Path, warn: Warnings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mixed measurement stops the combine with a clear error; committed groups stay merged
    and removed, the failing group's fragments stay on disk for after 'mpcov erase'."""
    monkeypatch.setattr(combine_module, "GROUP_SIZE", 2)
    write_fragment(frag_dir, 1)
    write_fragment(frag_dir, 2)
    left = [write_fragment(frag_dir, 3), write_fragment(frag_dir, 4, branch=True)]
    with pytest.raises(BranchMismatchError, match="Can't combine branch coverage data with line"):
        run_combine(data_file, frag_dir, warn)
    assert fragments_in(frag_dir) == sorted(os.path.basename(p) for p in left)
    assert [p[1] for p in snapshot(data_file)[0]] == [1, 2]


# --- Groups -------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 2, 3, 4, 5, 6, 7])
def test_group_size_boundaries(
    data_file: str, frag_dir: Path, warn: Warnings, monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    """However the fragments fall into groups, each is merged exactly once."""
    monkeypatch.setattr(combine_module, "GROUP_SIZE", 3)
    for pid in range(1, count + 1):
        write_fragment(frag_dir, pid)
    result = run_combine(data_file, frag_dir, warn)
    assert result.merged == count
    assert fragments_in(frag_dir) == []
    procs, lines = snapshot(data_file)
    assert [p[1] for p in procs] == list(range(1, count + 1))
    assert lines == {f"/src/m{pid}.py": {pid} for pid in range(1, count + 1)}


def test_running_and_damaged_fragments_at_group_edges(
    data_file: str, frag_dir: Path, warn: Warnings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fragments skipped within a group do not shift or drop their neighbours."""
    monkeypatch.setattr(combine_module, "GROUP_SIZE", 2)
    write_fragment(frag_dir, 1)
    running = write_fragment(frag_dir, 2, end=False)  # last of group 1
    bad = frag_dir / ("testhost.3.00000000" + SUFFIX)
    bad.write_bytes(b"junk")
    os.utime(bad, (1_700_000_000, 1_700_000_000))  # after everything else
    write_fragment(frag_dir, 4)
    write_fragment(frag_dir, 5)
    result = run_combine(data_file, frag_dir, warn, is_running=lambda info: info["pid"] == 2)
    assert (result.merged, result.running, len(result.damaged)) == (3, 1, 1)
    assert fragments_in(frag_dir) == sorted([os.path.basename(running), bad.name + ".damaged"])
    assert [p[1] for p in snapshot(data_file)[0]] == [1, 4, 5]


# --- Concurrency --------------------------------------------------------------------------------


def _combine_in_child(data_file: str, frag_dir: str, keep: bool, go: Any, out: str) -> None:
    go.wait(30)
    result = combine(
        data_file, fragment_dirs=[frag_dir], keep=keep, warn=print, is_running=never_running
    )
    Path(out).write_text(f"{result.merged} {result.already_merged}")


@pytest.mark.slow
@pytest.mark.parametrize("keep", [False, True])
def test_concurrent_combines_lose_nothing_and_double_nothing(
    data_file: str, frag_dir: Path, tmp_path: Path, keep: bool
) -> None:
    """Two `mpcov combine` processes racing over 200 fragments merge each exactly once."""
    count = 200
    for pid in range(1, count + 1):
        write_fragment(frag_dir, pid, {f"/src/m{pid}.py": {pid}, "/src/shared.py": {pid}})
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    outs = [str(tmp_path / f"out{i}") for i in range(2)]
    children = [
        ctx.Process(target=_combine_in_child, args=(data_file, str(frag_dir), keep, go, out))
        for out in outs
    ]
    for child in children:
        child.start()
    go.set()
    for child in children:
        child.join(120)
    assert [c.exitcode for c in children] == [0, 0]
    merged, already = zip(*(map(int, Path(o).read_text().split()) for o in outs), strict=True)
    assert sum(merged) == count
    assert sum(already) == (count if keep else 0)
    assert len(fragments_in(frag_dir)) == (count if keep else 0)
    procs, lines = snapshot(data_file)
    assert [p[1] for p in procs] == list(range(1, count + 1))
    assert lines["/src/shared.py"] == set(range(1, count + 1))
    assert all(lines[f"/src/m{pid}.py"] == {pid} for pid in range(1, count + 1))
    with Store(data_file) as store:
        assert sorted(store.process_line_counts().values()) == [2] * count


def test_lock_held_elsewhere_times_out_with_a_hint(
    data_file: str, frag_dir: Path, warn: Warnings
) -> None:
    """When another combine holds the lock too long, the error says what to check."""
    with FileLock(data_file + ".lock"), pytest.raises(DataError) as info:
        run_combine(data_file, frag_dir, warn, lock_timeout=0.05)
    assert info.value.message == f"Couldn't lock {data_file}.lock within 0 s"
    assert info.value.hint is not None and "another 'mpcov combine' is running" in info.value.hint


def test_lock_is_an_flock_on_the_lock_file_which_stays(data_file: str) -> None:
    """The lock is the flock filelock takes on POSIX (so each excludes the other),
    released on exit, and its file stays in place so every waiter locks one inode."""
    import fcntl

    def free() -> bool:
        fd = os.open(data_file + ".lock", os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)

    with data_file_lock(data_file):
        assert not free()
    assert os.path.exists(data_file + ".lock")
    assert free()


def test_combine_creates_the_data_files_directory(tmp_path: Path, warn: Warnings) -> None:
    """A data file in a directory that does not exist yet is created, lock and all."""
    data_file = str(tmp_path / "out" / "sub" / ".mpcov")
    result = combine(data_file, fragment_dirs=[str(tmp_path / "none")], warn=warn)
    assert result.merged == 0
    assert os.path.exists(data_file) and os.path.exists(data_file + ".lock")


def test_lock_is_released_when_the_combine_fails(
    data_file: str, frag_dir: Path, warn: Warnings
) -> None:
    """An error inside the locked section does not leave the data file locked."""
    with pytest.raises(RuntimeError), data_file_lock(data_file):
        raise RuntimeError("boom")
    with data_file_lock(data_file, timeout=0.05):
        pass


def test_finish_runs_in_the_combine_session_after_the_merge(
    data_file: str, frag_dir: Path, warn: Warnings
) -> None:
    """`finish` sees the merged data, under the lock, and what it writes is committed."""
    name = os.path.basename(write_fragment(frag_dir, 7))
    seen: list[bool] = []

    def finish(store: Store) -> None:
        seen.append(store.has_process(name))
        with pytest.raises(DataError), data_file_lock(data_file, timeout=0.05):
            pass  # held by the combine
        store.set_meta("finished", "yes")

    assert run_combine(data_file, frag_dir, warn, finish=finish).merged == 1
    assert seen == [True]
    with Store(data_file) as store:
        assert store.get_meta("finished") == "yes"


# --- Other data files ---------------------------------------------------------------------------


def _shard(tmp_path: Path, name: str, pids: range, prefix: str = "/ci/src") -> str:
    """A data file combined on another machine."""
    directory = tmp_path / f"{name}.d"
    directory.mkdir()
    for pid in pids:
        write_fragment(
            directory,
            pid,
            {f"{prefix}/m.py": {pid}},
            arcs={f"{prefix}/m.py": {(pid, pid + 1)}},
            branch=True,
        )
    path = str(tmp_path / name)
    combine(path, fragment_dirs=[str(directory)], warn=print, is_running=never_running)
    return path


def test_combining_data_files(data_file: str, tmp_path: Path, warn: Warnings) -> None:
    """Data files from CI shards merge in, are removed, and keep their branch data."""
    shards = [
        _shard(tmp_path, "one.mpcov", range(1, 3)),
        _shard(tmp_path, "two.mpcov", range(3, 5)),
    ]
    result = combine(data_file, data_files=shards, warn=warn)
    assert (result.data_files, result.merged) == (2, 0)
    assert result.summary() == "Combined 0 process fragments and 2 data files"
    assert not any(os.path.exists(s) for s in shards)
    procs, lines = snapshot(data_file)
    assert [p[1] for p in procs] == [1, 2, 3, 4]
    assert lines == {"/ci/src/m.py": {1, 2, 3, 4}}
    with Store(data_file) as store:
        assert store.has_arcs()
        assert store.arcs("/ci/src/m.py") == {(1, 2), (2, 3), (3, 4), (4, 5)}


def test_combining_data_files_with_keep_does_not_double_count(
    data_file: str, tmp_path: Path, warn: Warnings
) -> None:
    """A data file kept and combined again adds no process twice."""
    shard = _shard(tmp_path, "one.mpcov", range(1, 4))
    combine(data_file, data_files=[shard], keep=True, warn=warn)
    assert os.path.exists(shard)
    before = snapshot(data_file)
    combine(data_file, data_files=[shard], keep=True, warn=warn)
    assert snapshot(data_file) == before
    assert len(before[0]) == 3


def test_data_file_is_not_combined_into_itself(
    data_file: str, tmp_path: Path, warn: Warnings
) -> None:
    """Naming the data file itself as input is harmless: it is neither merged nor deleted."""
    shard = _shard(tmp_path, "one.mpcov", range(1, 3))
    combine(data_file, data_files=[shard], warn=warn)
    result = combine(data_file, data_files=[data_file], warn=warn)
    assert result.data_files == 0
    assert len(snapshot(data_file)[0]) == 2


def test_paths_are_remapped_for_fragments_and_data_files(
    data_file: str, frag_dir: Path, tmp_path: Path, warn: Warnings
) -> None:
    """[paths] applies to everything combined: fragments and other data files alike."""
    write_fragment(frag_dir, 10, {"C:\\ci\\src\\m.py": {10}}, branch=True)
    shard = _shard(tmp_path, "one.mpcov", range(1, 3))
    aliases = PathAliases([("src", ["/here/src", "/ci/src", "C:\\ci\\src"])], cwd="/here")
    combine(
        data_file,
        fragment_dirs=[str(frag_dir)],
        data_files=[shard],
        aliases=aliases,
        warn=warn,
        is_running=never_running,
    )
    assert snapshot(data_file)[1] == {"/here/src/m.py": {1, 2, 10}}


# --- Waiting for running processes --------------------------------------------------------------


def test_wait_for_running_returns_when_processes_end(frag_dir: Path) -> None:
    """Waiting stops as soon as no process is still writing."""
    write_fragment(frag_dir, 1)  # ended
    write_fragment(frag_dir, 2, end=False)
    (frag_dir / ("junk" + SUFFIX)).write_bytes(b"junk")  # unreadable: not waited for
    calls: list[object] = []

    def is_running(info: dict[str, object]) -> bool:
        calls.append(info["pid"])
        return len(calls) < 3

    started = time.monotonic()
    assert wait_for_running(str(frag_dir), timeout=30, is_running=is_running) == 0
    assert calls == [2, 2, 2]
    assert time.monotonic() - started < 10


def test_wait_for_running_gives_up_after_timeout(frag_dir: Path) -> None:
    """Processes that outlive the timeout are counted, not waited for forever."""
    write_fragment(frag_dir, 1, end=False)
    write_fragment(frag_dir, 2, end=False)
    write_fragment(frag_dir, 3)
    started = time.monotonic()
    assert wait_for_running(str(frag_dir), timeout=0.25, is_running=lambda info: True) == 2
    assert 0.2 <= time.monotonic() - started < 10


def test_wait_for_running_without_fragments(tmp_path: Path) -> None:
    """Nothing to wait for when no fragment (or no directory) exists."""
    assert wait_for_running(str(tmp_path / "none"), timeout=5, is_running=lambda info: True) == 0


# --- Listing, liveness, names -------------------------------------------------------------------


def test_list_fragments_oldest_first_and_only_fragments(frag_dir: Path) -> None:
    """Fragments are merged in the order they were written; other files are ignored."""
    paths = [write_fragment(frag_dir, pid) for pid in (3, 1, 2)]
    (frag_dir / "run-abc.manifest").write_bytes(b"m")
    (frag_dir / ("x" + SUFFIX + ".damaged")).write_bytes(b"d")
    (frag_dir / ("dir" + SUFFIX)).mkdir()
    assert list_fragments(str(frag_dir)) == paths
    assert list_fragments(str(frag_dir / "missing")) == []


class _Listing:
    """What os.scandir returns, read before the caller looks at the entries."""

    def __init__(self, entries: list[os.DirEntry[str]]) -> None:
        self.entries = entries

    def __enter__(self) -> _Listing:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def __iter__(self) -> Iterator[os.DirEntry[str]]:
        return iter(self.entries)


def test_list_fragments_skips_files_removed_meanwhile(
    frag_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fragment removed by a concurrent combine between listing and stat is not an error
    (wait_for_running lists fragments without the lock)."""
    keep = write_fragment(frag_dir, 1)
    gone = write_fragment(frag_dir, 2)
    real_scandir = os.scandir

    def racing_scandir(path: str) -> _Listing:
        with real_scandir(path) as it:
            entries = list(it)
        os.remove(gone)
        return _Listing(entries)

    monkeypatch.setattr(os, "scandir", racing_scandir)
    assert list_fragments(str(frag_dir)) == [keep]


def test_process_is_running_on_this_host() -> None:
    """A live process of this host is running; other hosts and reused pids are not."""
    me = psutil.Process()
    here = os.uname().nodename
    assert process_is_running({"host": here, "pid": os.getpid(), "start": me.create_time()})
    assert not process_is_running({"host": "elsewhere", "pid": os.getpid(), "start": time.time()})
    # The pid now belongs to a process created long after ours started: ours is gone.
    assert not process_is_running(
        {"host": here, "pid": os.getpid(), "start": me.create_time() - 3600}
    )
    assert not process_is_running({"host": here, "pid": "12", "start": time.time()})
    assert not process_is_running({"host": here, "pid": os.getpid()})


def test_process_is_running_for_a_pid_that_does_not_exist() -> None:
    """A pid with no process is finished."""
    pid = max(psutil.pids()) + 100_000
    assert not psutil.pid_exists(pid)
    assert not process_is_running({"host": os.uname().nodename, "pid": pid, "start": time.time()})


def test_fragment_dir_for() -> None:
    """Processes write next to the data file, in <data_file>.d."""
    assert fragment_dir_for("/p/.mpcov") == "/p/.mpcov.d"


@pytest.mark.parametrize(
    ("result", "text"),
    [
        (CombineResult(), "Combined 0 process fragments"),
        (CombineResult(merged=1), "Combined 1 process fragment"),
        (CombineResult(merged=2, data_files=1), "Combined 2 process fragments and 1 data file"),
        (
            CombineResult(merged=5, running=1, already_merged=2, damaged=["a", "b"]),
            "Combined 5 process fragments (1 still running, left for a later combine;"
            " 2 already merged; 2 damaged)",
        ),
    ],
)
def test_summary(result: CombineResult, text: str) -> None:
    """The one line users see after a combine."""
    assert result.summary() == text
