"""Tests of mpcov.fragment: the per-process files written by measured processes.

What users rely on: whatever a process managed to write whole is combined,
even when it was killed mid-write; a file that is not a fragment, or is from
another mpcov, is reported with its name and what to do, never mis-read.
"""

from __future__ import annotations

import marshal
import os
import zlib
from pathlib import Path
from typing import Any

import pytest

from mpcov.fragment import (
    FORMAT_VERSION,
    MAGIC,
    SUFFIX,
    Batch,
    FragmentError,
    FragmentWriter,
    encode_record,
    fragment_name,
    read_fragment,
)

PROCESS: dict[str, Any] = {
    "host": "testhost",
    "pid": 4242,
    "ppid": 1,
    "parent_fragment": None,
    "argv": ["python", "-m", "app", "--flag"],
    "cwd": "/work",
    "python": "/usr/bin/python3",
    "version": "3.12.1",
    "start": 1700000000.5,
    "run_id": "ab" * 16,
    "branch": True,
}

Written = tuple[str, dict[str, set[int]], dict[str, set[tuple[int, int]]]]
Read = tuple[str, dict[str, tuple[int, ...]], dict[str, tuple[tuple[int, int], ...]]]

# What the writer is given, batch by batch: (context, lines, arcs).
BATCHES: list[Written] = [
    ("", {"/src/a.py": {1, 2, 3}, "/src/b.py": {10}}, {"/src/a.py": {(-1, 1), (1, 2), (3, -1)}}),
    ("test_one", {"/src/a.py": {5, 6}}, {}),
    ("", {"/src/c.py": {100_000, 7}}, {"/src/c.py": {(7, 100_000)}}),
    ("test_two", {"/src/a.py": {1}, "/src/ü/ñ.py": {2}}, {"/src/a.py": {(1, -1)}}),
]


def _expected(batch: Written) -> Read:
    """What the reader gives back for a batch written as `batch`."""
    context, lines, arcs = batch
    return (
        context,
        {p: tuple(sorted(n)) for p, n in lines.items()},
        {p: tuple(sorted(a)) for p, a in arcs.items()},
    )


def _as_tuple(batch: Batch) -> Read:
    return (batch.context, batch.lines, batch.arcs)


def _write_fragment(directory: Path, *, end: bool = True) -> tuple[str, list[int]]:
    """Write a real fragment; returns its path and the offset where each record ends."""
    writer = FragmentWriter(str(directory), dict(PROCESS))
    ends = []
    for context, lines, arcs in BATCHES:
        writer.write_data(context, lines, arcs)
        ends.append(os.path.getsize(writer.path))
    if end:
        writer.write_end("exit", 3, 1700000009.25)
        ends.append(os.path.getsize(writer.path))
    writer.close()
    return writer.path, ends


def _process_record_end(path: str) -> int:
    """Where the header and the process record end (the first batch starts)."""
    with open(path, "rb") as f:
        data = f.read()
    header = len(MAGIC) + 1
    return header + 8 + int.from_bytes(data[header : header + 4], "little")


# --- Round trip ---------------------------------------------------------------------------------


def test_round_trip(tmp_path: Path) -> None:
    """Everything a process writes is read back: process record, batches, contexts, arcs, end."""
    path, _ = _write_fragment(tmp_path)
    frag = read_fragment(path)
    assert frag.process == PROCESS
    assert [_as_tuple(b) for b in frag.batches] == [_expected(b) for b in BATCHES]
    assert frag.end == {"how": "exit", "status": 3, "end": 1700000009.25}
    assert frag.problem is None
    assert frag.path == path
    assert frag.name == os.path.basename(path)


def test_fragment_without_end_record(tmp_path: Path) -> None:
    """A process that never said goodbye (killed) still has its batches read, with no problem."""
    path, _ = _write_fragment(tmp_path, end=False)
    frag = read_fragment(path)
    assert frag.end is None
    assert frag.problem is None
    assert len(frag.batches) == len(BATCHES)


def test_empty_paths_are_left_out_of_a_batch(tmp_path: Path) -> None:
    """Files with nothing new are not written: a batch holds only data."""
    writer = FragmentWriter(str(tmp_path), dict(PROCESS))
    writer.write_data("ctx", {"/a.py": set(), "/b.py": {2, 1}}, {"/a.py": set()})
    writer.close()
    (batch,) = read_fragment(writer.path).batches
    assert _as_tuple(batch) == ("ctx", {"/b.py": (1, 2)}, {})


def test_process_record_only(tmp_path: Path) -> None:
    """A process that ended having measured nothing leaves a valid, empty fragment."""
    writer = FragmentWriter(str(tmp_path), dict(PROCESS))
    writer.write_end("signal", -15, 5.0)
    writer.close()
    frag = read_fragment(writer.path)
    assert (frag.batches, frag.end, frag.problem) == (
        [],
        {"how": "signal", "status": -15, "end": 5.0},
        None,
    )


def test_records_are_marshal_format_4_with_length_and_crc() -> None:
    """The framing other interpreters (3.11-3.14) read: length, CRC-32, marshal v4 body."""
    record = ("data", "", (("/a.py", (1, 2)),), ())
    framed = encode_record(record)
    body = marshal.dumps(record, 4)
    assert framed == len(body).to_bytes(4, "little") + zlib.crc32(body).to_bytes(4, "little") + body


def test_the_checksum_is_zlibs_for_every_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small records are checksummed without zlib (importing it costs every
    measured process); the result must be zlib's, byte for byte."""
    import random
    import sys

    from mpcov import fragment

    rng = random.Random(7)
    bodies = [b"", b"\x00", b"\xff" * 3, bytes(range(256))]
    bodies += [rng.randbytes(n) for n in (1, 7, 100, 2047, 2048, 2049, 10_000)]
    monkeypatch.delitem(sys.modules, "zlib")  # the small path is taken only without zlib
    for body in bodies:
        assert fragment.crc32(body) == zlib.crc32(body), len(body)
    small = [b for b in bodies if len(b) <= fragment._SMALL_RECORD]
    monkeypatch.delitem(sys.modules, "zlib")
    for body in small:
        fragment.crc32(body)
    assert "zlib" not in sys.modules


# --- Damage: truncation -------------------------------------------------------------------------


def test_truncation_at_every_byte(tmp_path: Path) -> None:
    """A process killed mid-write loses at most the record it was writing.

    Every prefix of a real fragment either raises FragmentError (the process
    record is incomplete) or yields exactly the whole batches before the cut,
    with `problem` set unless the cut falls between records.
    """
    path, ends = _write_fragment(tmp_path)
    data = Path(path).read_bytes()
    process_end = _process_record_end(path)
    batch_ends = ends[: len(BATCHES)]
    end_record_end = ends[-1]
    assert end_record_end == len(data)
    expected_batches = [_expected(b) for b in BATCHES]
    cut_path = tmp_path / ("cut" + SUFFIX)
    failures = []
    for size in range(len(data) + 1):
        cut_path.write_bytes(data[:size])
        try:
            frag = read_fragment(str(cut_path))
        except FragmentError as exc:
            if size >= process_end:
                failures.append(f"{size}: FragmentError {exc}")
            elif str(cut_path) not in str(exc):
                failures.append(f"{size}: message does not name the file: {exc}")
            continue
        except Exception as exc:
            failures.append(f"{size}: {type(exc).__name__}: {exc}")
            continue
        if size < process_end:
            failures.append(f"{size}: read a fragment whose process record is cut")
            continue
        whole = sum(1 for e in batch_ends if e <= size)
        at_boundary = size in (process_end, *ends)
        got = [_as_tuple(b) for b in frag.batches]
        if got != expected_batches[:whole]:
            failures.append(f"{size}: batches {got!r}")
        if (frag.problem is None) != at_boundary:
            failures.append(f"{size}: problem={frag.problem!r}")
        if (frag.end is not None) != (size == end_record_end):
            failures.append(f"{size}: end={frag.end!r}")
        if frag.process != PROCESS:
            failures.append(f"{size}: process={frag.process!r}")
    assert failures == []


@pytest.mark.parametrize("size", [0, 3, len(MAGIC), len(MAGIC) + 1])
def test_header_only_or_less_is_not_a_fragment(tmp_path: Path, size: int) -> None:
    """An empty or header-only file has nothing usable: FragmentError names it."""
    path = tmp_path / ("x" + SUFFIX)
    path.write_bytes((MAGIC + bytes([FORMAT_VERSION]))[:size])
    with pytest.raises(FragmentError) as info:
        read_fragment(str(path))
    assert str(path) in str(info.value)


# --- Damage: corruption -------------------------------------------------------------------------


def test_flipped_byte_in_a_batch_keeps_earlier_batches(tmp_path: Path) -> None:
    """A corrupted batch (any byte of frame or body) ends reading there; earlier ones are kept."""
    path, ends = _write_fragment(tmp_path)
    data = Path(path).read_bytes()
    start, stop = ends[0], ends[1]  # the second batch
    damaged = tmp_path / ("damaged" + SUFFIX)
    failures = []
    for offset in range(start, stop):
        for mask in (0x01, 0x80, 0xFF):
            mutated = bytearray(data)
            mutated[offset] ^= mask
            damaged.write_bytes(bytes(mutated))
            frag = read_fragment(str(damaged))
            got = [_as_tuple(b) for b in frag.batches]
            if got != [_expected(BATCHES[0])] or frag.problem is None or frag.end is not None:
                failures.append(f"byte {offset} ^ {mask:#x}: {got!r} problem={frag.problem!r}")
    assert failures == []


def test_checksum_mismatch_is_reported(tmp_path: Path) -> None:
    """The problem says where and why reading stopped."""
    path, ends = _write_fragment(tmp_path)
    data = bytearray(Path(path).read_bytes())
    data[ends[1] + 20] ^= 0x10  # inside the third batch's body
    Path(path).write_bytes(bytes(data))
    frag = read_fragment(path)
    assert len(frag.batches) == 2
    assert frag.problem == f"corrupt record at byte {ends[1]} (checksum mismatch)"


def test_flipped_byte_in_process_record_is_an_error(tmp_path: Path) -> None:
    """Without a trustworthy process record the file cannot be attributed: FragmentError."""
    path, _ = _write_fragment(tmp_path)
    data = bytearray(Path(path).read_bytes())
    data[_process_record_end(path) - 3] ^= 0xFF
    Path(path).write_bytes(bytes(data))
    with pytest.raises(FragmentError, match="before the process record"):
        read_fragment(path)


def test_bad_magic(tmp_path: Path) -> None:
    """A file that is not a fragment is refused by name, not mis-read."""
    path = tmp_path / ("notes" + SUFFIX)
    path.write_bytes(b"hello, this is not coverage data at all")
    with pytest.raises(FragmentError) as info:
        read_fragment(str(path))
    assert str(info.value) == f"{path}: not an mpcov data fragment (bad header)"


def test_unknown_format_version(tmp_path: Path) -> None:
    """A fragment from another mpcov version says which file and what to do about it."""
    path, _ = _write_fragment(tmp_path)
    data = bytearray(Path(path).read_bytes())
    data[len(MAGIC)] = FORMAT_VERSION + 1
    Path(path).write_bytes(bytes(data))
    with pytest.raises(FragmentError) as info:
        read_fragment(path)
    message = str(info.value)
    assert path in message
    assert f"format {FORMAT_VERSION + 1}" in message
    assert "combine with the mpcov version that wrote it" in message


def _frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "little") + zlib.crc32(body).to_bytes(4, "little") + body


def _raw_fragment(tmp_path: Path, *records: tuple[Any, ...], tail: bytes = b"") -> str:
    """A fragment of hand-made records, then `tail` bytes."""
    path = tmp_path / ("raw" + SUFFIX)
    body = b"".join(encode_record(r) for r in records)
    path.write_bytes(MAGIC + bytes([FORMAT_VERSION]) + body + tail)
    return str(path)


def test_first_record_must_be_the_process_record(tmp_path: Path) -> None:
    """Data that cannot be attributed to a process is refused."""
    path = _raw_fragment(tmp_path, ("data", "", (), ()))
    with pytest.raises(FragmentError, match="first record is not a process record"):
        read_fragment(path)


def test_unknown_record_keeps_what_came_before(tmp_path: Path) -> None:
    """A record this mpcov does not know stops reading, keeping earlier batches."""
    path = _raw_fragment(
        tmp_path,
        ("process", dict(PROCESS)),
        ("data", "", (("/a.py", (1,)),), ()),
        ("future-kind", 1, 2),
        ("data", "", (("/b.py", (2,)),), ()),
    )
    frag = read_fragment(path)
    assert [_as_tuple(b) for b in frag.batches] == [("", {"/a.py": (1,)}, {})]
    assert frag.problem == "unknown record 'future-kind'"


@pytest.mark.parametrize("payload", [["data"], (), "text", 12, None])
def test_malformed_record_keeps_what_came_before(tmp_path: Path, payload: Any) -> None:
    """A well-framed record that is not a non-empty tuple is damage, not a crash."""
    path = _raw_fragment(
        tmp_path,
        ("process", dict(PROCESS)),
        ("data", "c", (("/a.py", (1,)),), ()),
        tail=_frame(marshal.dumps(payload, 4)),
    )
    frag = read_fragment(path)
    assert [_as_tuple(b) for b in frag.batches] == [("c", {"/a.py": (1,)}, {})]
    assert frag.problem is not None and frag.problem.startswith("malformed record at byte")


def test_undecodable_record_keeps_what_came_before(tmp_path: Path) -> None:
    """A record with a valid checksum but bytes marshal cannot read is damage, not a crash."""
    path = _raw_fragment(tmp_path, ("process", dict(PROCESS)), tail=_frame(b"\xff\x00garbage"))
    frag = read_fragment(path)
    assert frag.batches == []
    assert frag.problem is not None and frag.problem.startswith("undecodable record")


def test_absurd_record_length_is_truncation(tmp_path: Path) -> None:
    """A length field beyond any real record reads as a damaged tail, not a huge allocation."""
    huge = (0xFFFFFFFF).to_bytes(4, "little") + b"\0\0\0\0" + b"x" * 16
    path = _raw_fragment(tmp_path, ("process", dict(PROCESS)), tail=huge)
    frag = read_fragment(path)
    assert frag.problem is not None and frag.problem.startswith("truncated record at byte")


# --- The writer ---------------------------------------------------------------------------------


def test_writer_creates_the_file_lazily(tmp_path: Path) -> None:
    """A process that measures nothing and is killed leaves nothing behind."""
    directory = tmp_path / "not" / "yet"
    writer = FragmentWriter(str(directory), dict(PROCESS))
    assert not directory.exists()
    assert writer.path == os.path.join(str(directory), writer.name)
    writer.write_data("", {"/a.py": {1}}, {})
    assert os.path.isfile(writer.path)
    assert os.listdir(directory) == [writer.name]
    writer.close()


def test_writer_keeps_one_descriptor(tmp_path: Path) -> None:
    """open() is idempotent: every write goes to the same file."""
    writer = FragmentWriter(str(tmp_path), dict(PROCESS))
    fd = writer.open()
    assert writer.open() == fd
    writer.write_data("", {"/a.py": {1}}, {})
    writer.write_data("", {"/a.py": {2}}, {})
    writer.close()
    writer.close()  # closing twice is harmless
    assert len(read_fragment(writer.path).batches) == 2
    assert os.listdir(tmp_path) == [writer.name]


def test_fragment_names_are_unique_and_say_host_and_pid() -> None:
    """Names carry host and pid (for people) and a random part (pid reuse, many hosts)."""
    names = {fragment_name("build-7.example.com", 123) for _ in range(200)}
    assert len(names) == 200
    for name in names:
        assert name.startswith("build-7.example.com.123.")
        assert name.endswith(SUFFIX)
    writers = [FragmentWriter("/d", dict(PROCESS)) for _ in range(3)]
    assert len({w.path for w in writers}) == 3


def test_forget_drops_the_descriptor_without_closing_it(tmp_path: Path) -> None:
    """After fork the child's copy of the descriptor belongs to the parent's file: the
    child neither closes it nor writes to it."""
    writer = FragmentWriter(str(tmp_path), dict(PROCESS))
    writer.write_data("", {"/a.py": {1}}, {})
    fd = writer.open()
    before = Path(writer.path).read_bytes()
    writer.forget()
    writer.close()  # nothing to close any more
    os.fstat(fd)  # still open: raises OSError if it was closed
    assert Path(writer.path).read_bytes() == before
    os.write(fd, b"")  # still usable by its real owner
    os.close(fd)

