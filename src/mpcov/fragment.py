"""Per-process data files ("fragments"): written by measured processes, read by combine.

A fragment is append-only, so a process killed mid-write loses at most the
batch it was writing, never what it wrote before::

    b"MPCOVFRG" + one byte format version
    record*   each: 4-byte little-endian length, 4-byte CRC-32 of the body, body

Each body is ``marshal`` (format 4, readable by every supported interpreter,
even when the reader is a different Python version than the writer) of a
tuple whose first item names the record:

    ("process", {...})                 first record: host, pid, ppid, argv, ...
    ("data", context, lines, arcs)     a batch; lines: ((path, (line, ...)), ...),
                                       arcs: ((path, ((from, to), ...)), ...)
    ("end", {...})                     the process ended: how, status, end time

Batches are self-contained (they carry paths, not ids into earlier records),
so any batch that arrives whole is usable on its own.

Format history (bump FORMAT_VERSION when the layout changes):
    1  first version.

The writer runs in measured processes and imports only ``os`` and
``marshal`` (``zlib`` lazily, at the first write); the reader runs in
``mpcov combine``.
"""

from __future__ import annotations

import marshal
import os

TYPE_CHECKING = False  # typing costs milliseconds to import in every child
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

MAGIC = b"MPCOVFRG"
FORMAT_VERSION = 1
MARSHAL_VERSION = 4
SUFFIX = ".frag"
_HEADER = MAGIC + bytes([FORMAT_VERSION])
_MAX_RECORD = 1 << 30

Lines = dict[str, set[int]]
Arcs = dict[str, set[tuple[int, int]]]


def _crc32(body: bytes) -> int:
    import zlib  # lazily: not every measured process writes

    return zlib.crc32(body) & 0xFFFFFFFF


def encode_record(record: tuple[Any, ...]) -> bytes:
    """One record, framed with its length and checksum."""
    body = marshal.dumps(record, MARSHAL_VERSION)
    return len(body).to_bytes(4, "little") + _crc32(body).to_bytes(4, "little") + body


def fragment_name(host: str, pid: int) -> str:
    """A fragment file name unique across hosts, pids and pid reuse."""
    return f"{host}.{pid}.{os.urandom(4).hex()}{SUFFIX}"


class FragmentWriter:
    """Appends one process's records to its own fragment file.

    The file is created at the first write, so a process that measures
    nothing and is killed leaves nothing behind. Writes are single
    ``os.write`` calls on an ``O_APPEND`` descriptor.
    """

    def __init__(self, directory: str, process: dict[str, Any]) -> None:
        self.directory = directory
        self.process = process
        self.name = fragment_name(str(process["host"]), int(process["pid"]))
        self.path = os.path.join(directory, self.name)
        self._fd = -1

    def open(self) -> int:
        """Create the file (header and process record) if not done yet."""
        if self._fd < 0:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
            except FileNotFoundError:
                os.makedirs(self.directory, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
            self._write_all(fd, _HEADER + encode_record(("process", self.process)))
            self._fd = fd
        return self._fd

    @staticmethod
    def _write_all(fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]

    def write_data(self, context: str, lines: Lines, arcs: Arcs) -> None:
        """Append one batch of newly executed lines and arcs."""
        record = (
            "data",
            context,
            tuple((path, tuple(sorted(nums))) for path, nums in lines.items() if nums),
            tuple((path, tuple(sorted(pairs))) for path, pairs in arcs.items() if pairs),
        )
        self._write_all(self.open(), encode_record(record))

    def write_end(self, how: str, status: int | None, end_time: float) -> None:
        """Append the end record: the process ended cleanly enough to say so."""
        info = {"how": how, "status": status, "end": end_time}
        self._write_all(self.open(), encode_record(("end", info)))

    def close(self) -> None:
        """Close the file descriptor (the file stays)."""
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1

    def forget(self) -> None:
        """Drop the descriptor without closing it: used in a forked child,
        whose copy of the parent's descriptor must neither be written nor
        closed by code that believes it owns it."""
        self._fd = -1


# ---------------------------------------------------------------------------
# Reading


class Batch:
    """Executed lines and arcs recorded under one context."""

    __slots__ = ("arcs", "context", "lines")

    def __init__(
        self,
        context: str,
        lines: dict[str, tuple[int, ...]],
        arcs: dict[str, tuple[tuple[int, int], ...]],
    ) -> None:
        self.context = context
        self.lines = lines
        self.arcs = arcs


class Fragment:
    """Everything readable from one fragment file.

    `problem` says why reading stopped before the end of the file, if it did.
    """

    def __init__(self, path: str, process: dict[str, Any]) -> None:
        self.path = path
        self.process = process
        self.batches: list[Batch] = []
        self.end: dict[str, Any] | None = None
        self.problem: str | None = None

    @property
    def name(self) -> str:
        """The file name, which identifies the process record."""
        return os.path.basename(self.path)


class FragmentError(Exception):
    """The file is not a readable fragment at all (bad header, unknown version)."""


def _records(data: bytes, path: str) -> Iterator[tuple[Any, ...] | str]:
    """Yield decoded records; yield a string describing damage, then stop."""
    if not data.startswith(MAGIC):
        raise FragmentError(f"{path}: not an mpcov data fragment (bad header)")
    if len(data) < len(_HEADER):
        raise FragmentError(f"{path}: fragment header is truncated")
    if data[len(MAGIC)] != FORMAT_VERSION:
        raise FragmentError(
            f"{path}: fragment format {data[len(MAGIC)]} is not supported by this "
            f"mpcov (format {FORMAT_VERSION}); combine with the mpcov version that wrote it"
        )
    pos = len(_HEADER)
    while pos < len(data):
        if pos + 8 > len(data):
            yield f"truncated record header at byte {pos}"
            return
        size = int.from_bytes(data[pos : pos + 4], "little")
        crc = int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = data[pos + 8 : pos + 8 + size]
        if size > _MAX_RECORD or len(body) < size:
            yield f"truncated record at byte {pos}"
            return
        if _crc32(body) != crc:
            yield f"corrupt record at byte {pos} (checksum mismatch)"
            return
        try:
            record = marshal.loads(body)
        except (EOFError, ValueError, TypeError) as exc:
            yield f"undecodable record at byte {pos} ({exc})"
            return
        if not isinstance(record, tuple) or not record:
            yield f"malformed record at byte {pos}"
            return
        yield record
        pos += 8 + size


def read_fragment(path: str) -> Fragment:
    """Read a fragment, keeping every whole record before any damage.

    Raises FragmentError when nothing usable is there (no header, no process
    record); a damaged tail is reported in ``Fragment.problem``.
    """
    with open(path, "rb") as f:
        data = f.read()
    frag: Fragment | None = None
    for rec in _records(data, path):
        if isinstance(rec, str):
            if frag is None:
                raise FragmentError(f"{path}: {rec}, before the process record")
            frag.problem = rec
            break
        kind = rec[0]
        if frag is None:
            if kind != "process" or len(rec) != 2 or not isinstance(rec[1], dict):
                raise FragmentError(f"{path}: first record is not a process record")
            frag = Fragment(path=path, process=rec[1])
        elif kind == "data" and len(rec) == 4:
            try:
                batch = Batch(str(rec[1]), dict(rec[2]), dict(rec[3]))
            except (TypeError, ValueError):
                frag.problem = "malformed data record"
                break
            frag.batches.append(batch)
        elif kind == "end" and len(rec) == 2 and isinstance(rec[1], dict):
            frag.end = rec[1]
        else:
            frag.problem = f"unknown record {kind!r}"
            break
    if frag is None:
        raise FragmentError(f"{path}: fragment has no process record (empty or truncated)")
    return frag
