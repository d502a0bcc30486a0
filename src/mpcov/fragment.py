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

The writer runs in measured processes and imports only ``os``, ``sys`` and
``marshal`` (``zlib`` lazily, at the first record too big to checksum
cheaply without it); the reader runs in ``mpcov combine``.
"""

from __future__ import annotations

import marshal
import os
import sys

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


#: Records up to this size are checksummed here, bigger ones (and every one,
#: once zlib is loaded) by zlib: importing zlib costs a process 0.64 million
#: instructions (CPython 3.13), the loop below about 200 per byte.
_SMALL_RECORD = 2048


def crc32(body: bytes) -> int:
    """CRC-32 of `body`, as ``zlib.crc32``, for a measured process: without
    importing zlib when `body` is small (the reader always uses zlib)."""
    if len(body) > _SMALL_RECORD or "zlib" in sys.modules:
        import zlib  # lazily: small records (a process that ran little) need none

        return zlib.crc32(body) & 0xFFFFFFFF
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in body:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# The CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320) of each byte value.
_CRC_TABLE = (
    0x00000000, 0x77073096, 0xee0e612c, 0x990951ba, 0x076dc419, 0x706af48f,
    0xe963a535, 0x9e6495a3, 0x0edb8832, 0x79dcb8a4, 0xe0d5e91e, 0x97d2d988,
    0x09b64c2b, 0x7eb17cbd, 0xe7b82d07, 0x90bf1d91, 0x1db71064, 0x6ab020f2,
    0xf3b97148, 0x84be41de, 0x1adad47d, 0x6ddde4eb, 0xf4d4b551, 0x83d385c7,
    0x136c9856, 0x646ba8c0, 0xfd62f97a, 0x8a65c9ec, 0x14015c4f, 0x63066cd9,
    0xfa0f3d63, 0x8d080df5, 0x3b6e20c8, 0x4c69105e, 0xd56041e4, 0xa2677172,
    0x3c03e4d1, 0x4b04d447, 0xd20d85fd, 0xa50ab56b, 0x35b5a8fa, 0x42b2986c,
    0xdbbbc9d6, 0xacbcf940, 0x32d86ce3, 0x45df5c75, 0xdcd60dcf, 0xabd13d59,
    0x26d930ac, 0x51de003a, 0xc8d75180, 0xbfd06116, 0x21b4f4b5, 0x56b3c423,
    0xcfba9599, 0xb8bda50f, 0x2802b89e, 0x5f058808, 0xc60cd9b2, 0xb10be924,
    0x2f6f7c87, 0x58684c11, 0xc1611dab, 0xb6662d3d, 0x76dc4190, 0x01db7106,
    0x98d220bc, 0xefd5102a, 0x71b18589, 0x06b6b51f, 0x9fbfe4a5, 0xe8b8d433,
    0x7807c9a2, 0x0f00f934, 0x9609a88e, 0xe10e9818, 0x7f6a0dbb, 0x086d3d2d,
    0x91646c97, 0xe6635c01, 0x6b6b51f4, 0x1c6c6162, 0x856530d8, 0xf262004e,
    0x6c0695ed, 0x1b01a57b, 0x8208f4c1, 0xf50fc457, 0x65b0d9c6, 0x12b7e950,
    0x8bbeb8ea, 0xfcb9887c, 0x62dd1ddf, 0x15da2d49, 0x8cd37cf3, 0xfbd44c65,
    0x4db26158, 0x3ab551ce, 0xa3bc0074, 0xd4bb30e2, 0x4adfa541, 0x3dd895d7,
    0xa4d1c46d, 0xd3d6f4fb, 0x4369e96a, 0x346ed9fc, 0xad678846, 0xda60b8d0,
    0x44042d73, 0x33031de5, 0xaa0a4c5f, 0xdd0d7cc9, 0x5005713c, 0x270241aa,
    0xbe0b1010, 0xc90c2086, 0x5768b525, 0x206f85b3, 0xb966d409, 0xce61e49f,
    0x5edef90e, 0x29d9c998, 0xb0d09822, 0xc7d7a8b4, 0x59b33d17, 0x2eb40d81,
    0xb7bd5c3b, 0xc0ba6cad, 0xedb88320, 0x9abfb3b6, 0x03b6e20c, 0x74b1d29a,
    0xead54739, 0x9dd277af, 0x04db2615, 0x73dc1683, 0xe3630b12, 0x94643b84,
    0x0d6d6a3e, 0x7a6a5aa8, 0xe40ecf0b, 0x9309ff9d, 0x0a00ae27, 0x7d079eb1,
    0xf00f9344, 0x8708a3d2, 0x1e01f268, 0x6906c2fe, 0xf762575d, 0x806567cb,
    0x196c3671, 0x6e6b06e7, 0xfed41b76, 0x89d32be0, 0x10da7a5a, 0x67dd4acc,
    0xf9b9df6f, 0x8ebeeff9, 0x17b7be43, 0x60b08ed5, 0xd6d6a3e8, 0xa1d1937e,
    0x38d8c2c4, 0x4fdff252, 0xd1bb67f1, 0xa6bc5767, 0x3fb506dd, 0x48b2364b,
    0xd80d2bda, 0xaf0a1b4c, 0x36034af6, 0x41047a60, 0xdf60efc3, 0xa867df55,
    0x316e8eef, 0x4669be79, 0xcb61b38c, 0xbc66831a, 0x256fd2a0, 0x5268e236,
    0xcc0c7795, 0xbb0b4703, 0x220216b9, 0x5505262f, 0xc5ba3bbe, 0xb2bd0b28,
    0x2bb45a92, 0x5cb36a04, 0xc2d7ffa7, 0xb5d0cf31, 0x2cd99e8b, 0x5bdeae1d,
    0x9b64c2b0, 0xec63f226, 0x756aa39c, 0x026d930a, 0x9c0906a9, 0xeb0e363f,
    0x72076785, 0x05005713, 0x95bf4a82, 0xe2b87a14, 0x7bb12bae, 0x0cb61b38,
    0x92d28e9b, 0xe5d5be0d, 0x7cdcefb7, 0x0bdbdf21, 0x86d3d2d4, 0xf1d4e242,
    0x68ddb3f8, 0x1fda836e, 0x81be16cd, 0xf6b9265b, 0x6fb077e1, 0x18b74777,
    0x88085ae6, 0xff0f6a70, 0x66063bca, 0x11010b5c, 0x8f659eff, 0xf862ae69,
    0x616bffd3, 0x166ccf45, 0xa00ae278, 0xd70dd2ee, 0x4e048354, 0x3903b3c2,
    0xa7672661, 0xd06016f7, 0x4969474d, 0x3e6e77db, 0xaed16a4a, 0xd9d65adc,
    0x40df0b66, 0x37d83bf0, 0xa9bcae53, 0xdebb9ec5, 0x47b2cf7f, 0x30b5ffe9,
    0xbdbdf21c, 0xcabac28a, 0x53b39330, 0x24b4a3a6, 0xbad03605, 0xcdd70693,
    0x54de5729, 0x23d967bf, 0xb3667a2e, 0xc4614ab8, 0x5d681b02, 0x2a6f2b94,
    0xb40bbe37, 0xc30c8ea1, 0x5a05df1b, 0x2d02ef8d,
)


def encode_record(record: tuple[Any, ...]) -> bytes:
    """One record, framed with its length and checksum."""
    body = marshal.dumps(record, MARSHAL_VERSION)
    return len(body).to_bytes(4, "little") + crc32(body).to_bytes(4, "little") + body


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
    import zlib

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
        if zlib.crc32(body) != crc:
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
