"""Tests of mpcov.store: the combined SQLite data file.

What users rely on: every executed line is kept per process and per context,
reports get the union, merging data files loses and doubles nothing, and a
file that is not (or no longer) readable is refused by name with a way out.
"""

from __future__ import annotations

import gc
import random
import sqlite3
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mpcov.errors import BranchMismatchError, DataError, NoDataError
from mpcov.store import SCHEMA_VERSION, Store, bits_to_lines, lines_to_bits, process_label


def _info(pid: int, *argv: str, start: float = 0.0, **more: Any) -> dict[str, Any]:
    return {
        "host": "h",
        "pid": pid,
        "argv": list(argv) or ["python", f"p{pid}.py"],
        "start": start,
        **more,
    }


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(str(tmp_path / ".mpcov"), create=True)
    yield s
    s.close()


# --- Bitmaps ------------------------------------------------------------------------------------


def test_bitmap_round_trip_on_random_sets() -> None:
    """Any set of line numbers, small or huge, comes back exactly."""
    rng = random.Random(20231124)
    for trial in range(300):
        top = rng.choice([8, 64, 1000, 70_000, 2_000_000])
        lines = {rng.randint(1, top) for _ in range(rng.randint(0, 60))}
        assert bits_to_lines(lines_to_bits(lines)) == lines, trial


@pytest.mark.parametrize(
    "lines",
    [
        set(),
        {1},
        {7},
        {8},
        {1, 2, 3, 4, 5, 6, 7, 8, 9},
        {255, 256, 257},
        {10**6},
        set(range(1, 500)),
    ],
)
def test_bitmap_round_trip_edges(lines: set[int]) -> None:
    """Byte boundaries and very large line numbers survive encoding."""
    assert bits_to_lines(lines_to_bits(lines)) == lines


def test_bitmap_is_compact_and_deterministic() -> None:
    """Bit N set means line N ran; no trailing zero bytes; order of input is irrelevant."""
    assert lines_to_bits([]) == b""
    assert lines_to_bits([1]) == b"\x02"
    assert lines_to_bits([3, 1]) == lines_to_bits([1, 3, 3]) == b"\x0a"
    assert lines_to_bits([8]) == b"\x00\x01"
    assert len(lines_to_bits([80_000])) == 80_000 // 8 + 1


# --- Writing and reading lines ------------------------------------------------------------------


def test_lines_per_process_and_context_and_their_union(store: Store) -> None:
    """Reports see the union of every process and context; nothing is lost or invented."""
    with store.transaction():
        p1 = store.add_process("f1", _info(1))
        p2 = store.add_process("f2", _info(2))
        store.add_lines(p1, "", {"/a.py": [1, 2], "/b.py": [5]})
        store.add_lines(p1, "test_x", {"/a.py": [3]})
        store.add_lines(p2, "", {"/a.py": [2, 40], "/c.py": []})
    assert store.lines("/a.py") == {1, 2, 3, 40}
    assert store.lines("/b.py") == {5}
    assert store.lines("/nowhere.py") == set()
    assert store.all_lines() == {"/a.py": {1, 2, 3, 40}, "/b.py": {5}, "/c.py": set()}
    assert store.lines_of_process(p1) == {
        "": {"/a.py": {1, 2}, "/b.py": {5}},
        "test_x": {"/a.py": {3}},
    }
    assert store.lines_of_process(p2) == {"": {"/a.py": {2, 40}, "/c.py": set()}}


def test_adding_lines_again_merges(store: Store) -> None:
    """Several batches of the same process, file and context accumulate."""
    p = store.add_process("f", _info(1))
    store.add_lines(p, "", {"/a.py": {1, 2}})
    store.add_lines(p, "", {"/a.py": {2, 300}})
    assert store.lines_of_process(p) == {"": {"/a.py": {1, 2, 300}}}


def test_measured_files_are_sorted_and_only_those_with_lines(store: Store) -> None:
    """Files with executed lines are listed once each, sorted."""
    p1 = store.add_process("f1", _info(1))
    p2 = store.add_process("f2", _info(2))
    store.add_lines(p1, "", {"/z.py": [1], "/a.py": [1]})
    store.add_lines(p2, "ctx", {"/a.py": [2], "/m.py": [3]})
    store.add_arcs(p2, "", {"/arcs_only.py": [(1, 2)]})
    assert store.measured_files() == ["/a.py", "/m.py", "/z.py"]


def test_data_is_on_disk_after_commit(tmp_path: Path) -> None:
    """What a transaction wrote is there for the next reader."""
    path = str(tmp_path / "d.mpcov")
    with Store(path, create=True) as s, s.transaction():
        p = s.add_process("f", _info(1))
        s.add_lines(p, "", {"/a.py": [4]})
    with Store(path) as s:
        assert s.lines("/a.py") == {4}


def test_transaction_is_all_or_nothing(tmp_path: Path) -> None:
    """A failure inside a transaction leaves the file as it was."""
    path = str(tmp_path / "d.mpcov")
    with Store(path, create=True) as s:
        with pytest.raises(RuntimeError), s.transaction():
            p = s.add_process("f", _info(1))
            s.add_lines(p, "", {"/a.py": [4]})
            raise RuntimeError("boom")
        assert s.processes() == []
    with Store(path) as s:
        assert s.lines("/a.py") == set()


def test_arcs_per_process_and_union(store: Store) -> None:
    """Arcs are kept per process and context, duplicates once."""
    p1 = store.add_process("f1", _info(1))
    p2 = store.add_process("f2", _info(2))
    store.add_arcs(p1, "", {"/a.py": [(-1, 1), (1, 2)]})
    store.add_arcs(p1, "", {"/a.py": [(1, 2), (2, -1)]})
    store.add_arcs(p2, "t", {"/a.py": [(1, 3)], "/b.py": [(5, 6)]})
    assert store.arcs("/a.py") == {(-1, 1), (1, 2), (2, -1), (1, 3)}
    assert store.arcs("/none.py") == set()
    assert store.arcs_of_process(p1) == {"": {"/a.py": {(-1, 1), (1, 2), (2, -1)}}}
    assert store.arcs_of_process(p2) == {"t": {"/a.py": {(1, 3)}, "/b.py": {(5, 6)}}}


# --- Processes ----------------------------------------------------------------------------------


def test_processes_keep_their_record_in_start_order(store: Store) -> None:
    """Every process record field survives; processes come in start order."""
    store.add_process(
        "late.frag",
        _info(
            20,
            "python",
            "-c",
            "pass",
            start=200.0,
            ppid=10,
            parent_fragment="early.frag",
            cwd="/w",
            python="/usr/bin/python3",
            version="3.12.1",
            core="monitoring",
            run_id="r1",
            end=201.5,
            end_how="exit",
            exit_status=3,
            problem=None,
        ),
    )
    store.add_process("early.frag", _info(10, "pytest", start=100.0))
    procs = store.processes()
    assert [p["fragment"] for p in procs] == ["early.frag", "late.frag"]
    late = procs[1]
    assert late["argv"] == ["python", "-c", "pass"]
    assert (late["pid"], late["ppid"], late["parent_fragment"]) == (20, 10, "early.frag")
    assert (late["cwd"], late["python"], late["version"], late["core"]) == (
        "/w",
        "/usr/bin/python3",
        "3.12.1",
        "monitoring",
    )
    assert (late["run_id"], late["start"], late["end"], late["end_how"], late["exit_status"]) == (
        "r1",
        200.0,
        201.5,
        "exit",
        3,
    )
    assert procs[0]["exit_status"] is None


def test_has_process_remembers_merged_fragments(store: Store) -> None:
    """A fragment is merged once: the store knows which ones it has."""
    assert not store.has_process("a.frag")
    store.add_process("a.frag", _info(1))
    assert store.has_process("a.frag")
    with pytest.raises(sqlite3.IntegrityError):
        store.add_process("a.frag", _info(1))


def test_process_line_counts_are_distinct_lines_per_process(store: Store) -> None:
    """The process tree shows how many distinct lines each process ran (contexts overlap)."""
    p1 = store.add_process("f1", _info(1))
    p2 = store.add_process("f2", _info(2))
    store.add_process("f3", _info(3))
    store.add_lines(p1, "", {"/a.py": [1, 2, 3], "/b.py": [1]})
    store.add_lines(p1, "t1", {"/a.py": [3, 4]})
    store.add_lines(p2, "", {"/a.py": [1]})
    assert store.process_line_counts() == {p1: 5, p2: 1}


def test_line_contexts_name_the_processes_and_tests(store: Store) -> None:
    """Each line lists who ran it: process label, plus the test when there is one."""
    p1 = store.add_process("f1", _info(11, "/usr/bin/python3", "app.py", "--x"))
    p2 = store.add_process("f2", _info(22, "python", "-m", "pytest", "-q", "tests"))
    store.add_lines(p1, "", {"/a.py": [1, 2]})
    store.add_lines(p2, "test_one", {"/a.py": [2]})
    store.add_lines(p2, "", {"/b.py": [9]})
    assert store.line_contexts("/a.py") == {
        1: ["pid 11: python3 app.py --x"],
        2: ["pid 11: python3 app.py --x", "pid 22: python -m pytest -q ... test_one"],
    }
    assert store.line_contexts("/missing.py") == {}


def test_process_label() -> None:
    """Labels are short: program base name and at most three arguments."""
    assert process_label(5, ["/opt/bin/python3.12", "-m", "x"]) == "pid 5: python3.12 -m x"
    assert process_label(5, ["a", "b", "c", "d", "e"]) == "pid 5: a b c d ..."
    assert process_label(None, []) == "pid None: "


# --- Metadata and branch/line mismatch ----------------------------------------------------------


def test_meta_values(store: Store) -> None:
    """Metadata round-trips and can be replaced."""
    assert store.get_meta("x") is None
    store.set_meta("x", "1")
    store.set_meta("x", "2")
    assert store.get_meta("x") == "2"
    assert store.get_meta("schema_version") == str(SCHEMA_VERSION)


def test_measurement_kind_is_recorded(store: Store) -> None:
    """has_arcs says whether the data is branch data."""
    assert not store.has_arcs()
    store.set_measurement(True)
    assert store.has_arcs()
    store.set_measurement(True)
    assert store.has_arcs()


def test_measurement_kind_may_change_while_empty(store: Store) -> None:
    """Before any line is stored, the kind is not yet committed to."""
    store.set_measurement(True)
    store.set_measurement(False)
    assert not store.has_arcs()


@pytest.mark.parametrize("first", [True, False])
def test_mixing_branch_and_line_data_is_refused(store: Store, first: bool) -> None:
    """Branch data and line-only data cannot be combined; the message says how to fix it."""
    store.set_measurement(first)
    p = store.add_process("f", _info(1))
    store.add_lines(p, "", {"/a.py": [1]})
    with pytest.raises(BranchMismatchError) as info:
        store.set_measurement(not first)
    kinds = ("branch", "line") if not first else ("line", "branch")
    assert info.value.message == (
        f"Can't combine {kinds[0]} coverage data with {kinds[1]} coverage data in {store.path}"
    )
    assert info.value.hint is not None and "mpcov erase" in info.value.hint
    assert isinstance(info.value, DataError)
    assert store.has_arcs() == first


# --- Merging another data file ------------------------------------------------------------------


def _other(tmp_path: Path, name: str, *, branch: bool = False) -> str:
    path = str(tmp_path / name)
    with Store(path, create=True) as s, s.transaction():
        s.set_measurement(branch)
        p1 = s.add_process(f"{name}-1.frag", _info(1, start=1.0, exit_status=0))
        p2 = s.add_process(f"{name}-2.frag", _info(2, start=2.0))
        s.add_lines(p1, "", {"/ci/src/a.py": [1, 2], "/ci/src/b.py": [3]})
        s.add_lines(p1, "t", {"/ci/src/a.py": [7]})
        s.add_lines(p2, "", {"/ci/src/a.py": [9]})
        if branch:
            s.add_arcs(p1, "", {"/ci/src/a.py": [(1, 2), (2, -1)]})
            s.add_arcs(p2, "t", {"/ci/src/b.py": [(3, 4)]})
    return path


def test_update_from_merges_processes_lines_and_contexts(store: Store, tmp_path: Path) -> None:
    """Another data file's processes come over with their lines per context."""
    with Store(_other(tmp_path, "shard1"), create=False) as other:
        store.update_from(other)
    assert sorted(p["fragment"] for p in store.processes()) == ["shard1-1.frag", "shard1-2.frag"]
    assert store.lines("/ci/src/a.py") == {1, 2, 7, 9}
    assert store.lines("/ci/src/b.py") == {3}
    first = next(p for p in store.processes() if p["fragment"] == "shard1-1.frag")
    assert first["exit_status"] == 0
    assert store.lines_of_process(first["id"]) == {
        "": {"/ci/src/a.py": {1, 2}, "/ci/src/b.py": {3}},
        "t": {"/ci/src/a.py": {7}},
    }


def test_update_from_keeps_branch_data(store: Store, tmp_path: Path) -> None:
    """Arcs of a merged branch-data file are not lost."""
    with Store(_other(tmp_path, "shard", branch=True)) as other:
        store.update_from(other)
    assert store.has_arcs()
    assert store.arcs("/ci/src/a.py") == {(1, 2), (2, -1)}
    assert store.arcs("/ci/src/b.py") == {(3, 4)}


def test_update_from_twice_doubles_nothing(store: Store, tmp_path: Path) -> None:
    """Merging the same file again adds no process and no line."""
    path = _other(tmp_path, "shard", branch=True)
    for _ in range(2):
        with Store(path) as other:
            store.update_from(other)
    assert len(store.processes()) == 2
    assert store.process_line_counts() == {
        p["id"]: n for p, n in zip(store.processes(), (4, 1), strict=True)
    }


def test_update_from_remaps_and_merges_paths(store: Store, tmp_path: Path) -> None:
    """Paths are rewritten; two measured paths mapping to one local file are merged."""
    with Store(_other(tmp_path, "shard", branch=True)) as other:
        store.update_from(other, lambda path: "/local/src/all.py")
    assert store.measured_files() == ["/local/src/all.py"]
    assert store.lines("/local/src/all.py") == {1, 2, 3, 7, 9}
    assert store.arcs("/local/src/all.py") == {(1, 2), (2, -1), (3, 4)}


def test_update_from_mismatched_kind_is_refused(store: Store, tmp_path: Path) -> None:
    """A line-data file cannot be merged into branch data."""
    with Store(_other(tmp_path, "branchy", branch=True)) as other:
        store.update_from(other)
    with (
        Store(_other(tmp_path, "liney", branch=False)) as other,
        pytest.raises(BranchMismatchError),
    ):
        store.update_from(other)


def test_update_from_an_empty_data_file_is_harmless(store: Store, tmp_path: Path) -> None:
    """A data file that recorded nothing (no kind decided) merges into any data."""
    with Store(_other(tmp_path, "branchy", branch=True)) as other:
        store.update_from(other)
    with Store(str(tmp_path / "empty.mpcov"), create=True) as empty:
        store.update_from(empty)
    assert store.has_arcs()
    assert len(store.processes()) == 2


# --- Files that cannot be used ------------------------------------------------------------------


def test_missing_file_is_no_data(tmp_path: Path) -> None:
    """Reporting before combining says what to run."""
    path = str(tmp_path / ".mpcov")
    with pytest.raises(NoDataError) as info:
        Store(path)
    assert info.value.message == f"No data to report: {path} does not exist"
    assert info.value.hint is not None and "mpcov combine" in info.value.hint
    assert not Path(path).exists()


def _no_unclosed_connection_warning() -> None:
    """The failed Store closed its database (3.13+ warns about unclosed ones)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_non_sqlite_file_is_a_data_error_naming_it(tmp_path: Path) -> None:
    """A damaged or foreign file is refused by name, with a way out."""
    path = tmp_path / ".mpcov"
    path.write_bytes(b"this is not a database, it is a text file " * 100)
    with pytest.raises(DataError) as info:
        Store(str(path))
    assert info.value.message.startswith(f"Couldn't use data file {path}: ")
    assert info.value.hint is not None and "mpcov erase" in info.value.hint
    _no_unclosed_connection_warning()


def test_foreign_sqlite_file_is_a_data_error(tmp_path: Path) -> None:
    """An SQLite file of another program is not taken for mpcov data."""
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x)")
    db.close()
    with pytest.raises(DataError) as info:
        Store(str(path))
    assert info.value.message == f"{path} is not an mpcov data file"
    _no_unclosed_connection_warning()


@pytest.mark.parametrize("version", [str(SCHEMA_VERSION + 1), "0", None])
def test_wrong_schema_version_is_a_data_error(tmp_path: Path, version: str | None) -> None:
    """Data from another mpcov version is refused with the versions and what to do."""
    path = str(tmp_path / ".mpcov")
    Store(path, create=True).close()
    with sqlite3.connect(path) as db:
        if version is None:
            db.execute("DELETE FROM meta WHERE key='schema_version'")
        else:
            db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (version,))
    db.close()
    with pytest.raises(DataError) as info:
        Store(path)
    assert info.value.message == (
        f"Data file {path} has schema version {version or 'unknown'}; "
        f"this mpcov reads version {SCHEMA_VERSION}"
    )
    assert info.value.hint == "run 'mpcov erase' and measure again"
    _no_unclosed_connection_warning()


def test_empty_file_is_refused_unless_creating(tmp_path: Path) -> None:
    """An empty file is not data to report; combine (create=True) turns it into a data file."""
    path = tmp_path / ".mpcov"
    path.write_bytes(b"")
    with pytest.raises(DataError, match="is empty"):
        Store(str(path))
    with Store(str(path), create=True) as s:
        assert s.processes() == []
    with Store(str(path)) as s:
        assert s.measured_files() == []


def test_unwritable_location_is_a_data_error(tmp_path: Path) -> None:
    """A data file in a directory that does not exist is reported by name."""
    path = tmp_path / "no" / "such" / "dir" / ".mpcov"
    with pytest.raises(DataError) as info:
        Store(str(path), create=True)
    assert info.value.message.startswith(f"Couldn't use data file {path}: ")
