"""The combined data file: one SQLite database per project run.

Processes are first-class: every executed line is stored per file, per
process and per context (a test name, or "" when there is none), so a report
can say which processes ran a line and the data of thousands of processes
stays small (a line set is a bitmap: bit N set = line N ran).

Schema history (bump SCHEMA_VERSION on any change; older files are refused
with a message saying to combine again or erase):
    1  first version.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

from mpcov.errors import BranchMismatchError, DataError, NoDataError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any  # only for the type checker: typing costs ~3 ms to import

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE file (id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL);
CREATE TABLE context (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);
CREATE TABLE process (
    id INTEGER PRIMARY KEY,
    fragment TEXT UNIQUE NOT NULL,   -- the fragment file name: unique per process image
    host TEXT, pid INTEGER, ppid INTEGER, parent_fragment TEXT,
    argv TEXT,                       -- JSON list
    cwd TEXT, python TEXT, version TEXT, core TEXT, run_id TEXT,
    start REAL, end REAL, end_how TEXT, exit_status INTEGER, problem TEXT
);
CREATE TABLE line_bits (
    file_id INTEGER NOT NULL, process_id INTEGER NOT NULL, context_id INTEGER NOT NULL,
    numbits BLOB NOT NULL,
    PRIMARY KEY (file_id, process_id, context_id)
) WITHOUT ROWID;
CREATE TABLE arc (
    file_id INTEGER NOT NULL, process_id INTEGER NOT NULL, context_id INTEGER NOT NULL,
    fromno INTEGER NOT NULL, tono INTEGER NOT NULL,
    PRIMARY KEY (file_id, process_id, context_id, fromno, tono)
) WITHOUT ROWID;
"""


def lines_to_bits(lines: Iterable[int]) -> bytes:
    """Encode line numbers as a little-endian bitmap."""
    nums = [line for line in lines if line > 0]
    if not nums:
        return b""
    bits = bytearray(max(nums) // 8 + 1)
    for line in nums:
        bits[line >> 3] |= 1 << (line & 7)
    return bytes(bits)


def bits_to_lines(bits: bytes) -> set[int]:
    """Decode a bitmap made by :func:`lines_to_bits`."""
    lines: set[int] = set()
    for index, byte in enumerate(bits):
        if byte:
            base = index * 8
            lines.update(base + bit for bit in range(8) if byte >> bit & 1)
    return lines


def _merge_bits(a: bytes, b: bytes) -> bytes:
    value = int.from_bytes(a, "little") | int.from_bytes(b, "little")
    return value.to_bytes((value.bit_length() + 7) // 8, "little")


class Store:
    """Read and write one data file. Use as a context manager, or call close()."""

    def __init__(self, path: str, *, create: bool = False) -> None:
        self.path = path
        if not create and not os.path.exists(path):
            raise NoDataError(
                f"No data to report: {path} does not exist",
                hint="run your program with 'mpcov run', then 'mpcov combine'",
            )
        try:
            self._db = sqlite3.connect(path, timeout=60)
        except sqlite3.DatabaseError as exc:
            raise self._unusable(exc) from None
        try:
            self._init_schema(create)
        except (sqlite3.DatabaseError, DataError) as exc:
            self._db.close()  # not left for the garbage collector (ResourceWarning)
            if isinstance(exc, DataError):
                raise
            raise self._unusable(exc) from None
        self._file_ids: dict[str, int] = {}
        self._context_ids: dict[str, int] = {}

    def _unusable(self, exc: sqlite3.DatabaseError) -> DataError:
        return DataError(
            f"Couldn't use data file {self.path}: {exc}",
            hint="it is damaged or not an mpcov data file; 'mpcov erase' removes it",
        )

    def _init_schema(self, create: bool) -> None:
        db = self._db
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            if not create:
                raise DataError(f"Data file {self.path} is empty", hint="combine again")
            # One transaction: as separate statements, each CREATE would be a
            # commit of its own (a journal written, synced and deleted).
            db.executescript(
                f"BEGIN; {SCHEMA} INSERT INTO meta VALUES ('schema_version', "
                f"'{SCHEMA_VERSION}'); COMMIT;"
            )
            return
        if "meta" not in tables:
            raise DataError(f"{self.path} is not an mpcov data file")
        row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None or row[0] != str(SCHEMA_VERSION):
            found = row[0] if row else "unknown"
            raise DataError(
                f"Data file {self.path} has schema version {found}; "
                f"this mpcov reads version {SCHEMA_VERSION}",
                hint="run 'mpcov erase' and measure again",
            )

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes; everything or nothing reaches the file."""
        with self._db:
            yield

    # -- metadata ---------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        """A metadata value, or None."""
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        """Set a metadata value."""
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def has_arcs(self) -> bool:
        """Was this data measured with branch coverage?"""
        return self.get_meta("has_arcs") == "1"

    def set_measurement(self, branch: bool) -> None:
        """Record (or check) whether the data is line-only or branch data."""
        current = self.get_meta("has_arcs")
        wanted = "1" if branch else "0"
        if current is not None and current != wanted and self._has_any_lines():
            raise BranchMismatchError(
                f"Can't combine {'branch' if branch else 'line'} coverage data with "
                f"{'line' if branch else 'branch'} coverage data in {self.path}",
                hint="measure every process the same way, or 'mpcov erase' first",
            )
        self.set_meta("has_arcs", wanted)

    def _has_any_lines(self) -> bool:
        return self._db.execute("SELECT 1 FROM line_bits LIMIT 1").fetchone() is not None

    # -- writing ------------------------------------------------------------

    def _file_id(self, path: str) -> int:
        fid = self._file_ids.get(path)
        if fid is None:
            self._db.execute("INSERT OR IGNORE INTO file (path) VALUES (?)", (path,))
            fid = self._db.execute("SELECT id FROM file WHERE path=?", (path,)).fetchone()[0]
            self._file_ids[path] = fid
        return fid

    def _context_id(self, name: str) -> int:
        cid = self._context_ids.get(name)
        if cid is None:
            self._db.execute("INSERT OR IGNORE INTO context (name) VALUES (?)", (name,))
            cid = self._db.execute("SELECT id FROM context WHERE name=?", (name,)).fetchone()[0]
            self._context_ids[name] = cid
        return cid

    def has_process(self, fragment: str) -> bool:
        """Has the process that wrote `fragment` been merged already?"""
        row = self._db.execute("SELECT 1 FROM process WHERE fragment=?", (fragment,)).fetchone()
        return row is not None

    def add_process(self, fragment: str, info: dict[str, Any]) -> int:
        """Add a process record; returns its id."""
        cur = self._db.execute(
            "INSERT INTO process (fragment, host, pid, ppid, parent_fragment, argv, cwd, python,"
            " version, core, run_id, start, end, end_how, exit_status, problem)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                fragment,
                info.get("host"),
                info.get("pid"),
                info.get("ppid"),
                info.get("parent_fragment"),
                json.dumps(list(info.get("argv") or [])),
                info.get("cwd"),
                info.get("python"),
                info.get("version"),
                info.get("core"),
                info.get("run_id"),
                info.get("start"),
                info.get("end"),
                info.get("end_how"),
                info.get("exit_status"),
                info.get("problem"),
            ),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def set_exit_status(self, host: str, pid: int, status: int) -> None:
        """Fill in the exit status of the last process image with this pid that
        ended normally without knowing its status."""
        self._db.execute(
            "UPDATE process SET exit_status=? WHERE id=(SELECT id FROM process"
            " WHERE host=? AND pid=? AND end_how='exit' AND exit_status IS NULL"
            " ORDER BY start DESC, id DESC LIMIT 1)",
            (status, host, pid),
        )

    def add_lines(
        self,
        process_id: int,
        context: str,
        lines: Mapping[str, Iterable[int]],
        *,
        new: bool = False,
    ) -> None:
        """Add executed lines of one process under one context.

        `new` says the process has no lines in this context yet (true for a
        process just added): then there is nothing to merge with.
        """
        cid = self._context_id(context)
        if new:
            self._db.executemany(
                "INSERT INTO line_bits VALUES (?, ?, ?, ?)",
                [(self._file_id(p), process_id, cid, lines_to_bits(n)) for p, n in lines.items()],
            )
            return
        for path, nums in lines.items():
            fid = self._file_id(path)
            bits = lines_to_bits(nums)
            row = self._db.execute(
                "SELECT numbits FROM line_bits WHERE file_id=? AND process_id=? AND context_id=?",
                (fid, process_id, cid),
            ).fetchone()
            if row is not None:
                bits = _merge_bits(row[0], bits)
            self._db.execute(
                "INSERT OR REPLACE INTO line_bits VALUES (?, ?, ?, ?)", (fid, process_id, cid, bits)
            )

    def add_arcs(
        self, process_id: int, context: str, arcs: Mapping[str, Iterable[tuple[int, int]]]
    ) -> None:
        """Add executed arcs of one process under one context."""
        cid = self._context_id(context)
        for path, pairs in arcs.items():
            fid = self._file_id(path)
            self._db.executemany(
                "INSERT OR IGNORE INTO arc VALUES (?, ?, ?, ?, ?)",
                ((fid, process_id, cid, a, b) for a, b in pairs),
            )

    def update_from(self, other: Store, map_path: Any = None) -> None:
        """Merge everything in `other` (another data file) into this one.

        `map_path` rewrites each path (``[paths]`` remapping); paths that map
        to the same file are merged, and processes already merged are skipped.
        """
        if other._has_any_lines():  # an empty file measured nothing either way
            self.set_measurement(other.has_arcs())
        remap = map_path or (lambda path: path)
        for proc in other.processes():
            if self.has_process(proc["fragment"]):
                continue
            pid = self.add_process(proc["fragment"], proc)
            for context, by_path in other.lines_of_process(proc["id"]).items():
                lines: dict[str, set[int]] = {}
                for path, nums in by_path.items():
                    lines.setdefault(remap(path), set()).update(nums)
                self.add_lines(pid, context, lines)
            for context, arcs_by_path in other.arcs_of_process(proc["id"]).items():
                arcs: dict[str, set[tuple[int, int]]] = {}
                for path, pairs in arcs_by_path.items():
                    arcs.setdefault(remap(path), set()).update(pairs)
                self.add_arcs(pid, context, arcs)

    # -- reading -------------------------------------------------------------

    def measured_files(self) -> list[str]:
        """Every file with executed lines, sorted."""
        rows = self._db.execute(
            "SELECT DISTINCT path FROM file JOIN line_bits ON line_bits.file_id = file.id"
        )
        return sorted(r[0] for r in rows)

    def lines(self, path: str) -> set[int]:
        """Executed lines of `path`, over every process and context."""
        value = 0
        for (bits,) in self._db.execute(
            "SELECT numbits FROM line_bits JOIN file ON file.id = line_bits.file_id"
            " WHERE file.path=?",
            (path,),
        ):
            value |= int.from_bytes(bits, "little")
        return bits_to_lines(value.to_bytes((value.bit_length() + 7) // 8, "little"))

    def all_lines(self) -> dict[str, set[int]]:
        """Executed lines of every file (one query)."""
        values: dict[str, int] = {}
        for path, bits in self._db.execute(
            "SELECT file.path, numbits FROM line_bits JOIN file ON file.id = line_bits.file_id"
        ):
            values[path] = values.get(path, 0) | int.from_bytes(bits, "little")
        return {
            p: bits_to_lines(v.to_bytes((v.bit_length() + 7) // 8, "little"))
            for p, v in values.items()
        }

    def arcs(self, path: str) -> set[tuple[int, int]]:
        """Executed arcs of `path`, over every process and context."""
        rows = self._db.execute(
            "SELECT DISTINCT fromno, tono FROM arc JOIN file ON file.id = arc.file_id"
            " WHERE file.path=?",
            (path,),
        )
        return {(a, b) for a, b in rows}

    def line_contexts(self, path: str) -> dict[int, list[str]]:
        """For each executed line: labels of the processes (and tests) that ran it."""
        found: dict[int, set[str]] = {}
        for bits, pid, argv, context in self._db.execute(
            "SELECT numbits, process.pid, process.argv, context.name FROM line_bits"
            " JOIN file ON file.id = line_bits.file_id"
            " JOIN process ON process.id = line_bits.process_id"
            " JOIN context ON context.id = line_bits.context_id WHERE file.path=?",
            (path,),
        ):
            label = process_label(pid, json.loads(argv or "[]"))
            if context:
                label = f"{label} {context}"
            for line in bits_to_lines(bits):
                found.setdefault(line, set()).add(label)
        return {line: sorted(labels) for line, labels in found.items()}

    def processes(self) -> list[dict[str, Any]]:
        """Every process record, in start order."""
        cur = self._db.execute("SELECT * FROM process ORDER BY start, id")
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, row, strict=True)) for row in cur]
        for row in rows:
            row["argv"] = json.loads(row["argv"] or "[]")
        return rows

    def process_line_counts(self) -> dict[int, int]:
        """Process id -> number of distinct (file, line) pairs it executed."""
        counts: dict[int, int] = {}
        per: dict[tuple[int, int], int] = {}
        for pid, fid, bits in self._db.execute(
            "SELECT process_id, file_id, numbits FROM line_bits"
        ):
            key = (pid, fid)
            per[key] = per.get(key, 0) | int.from_bytes(bits, "little")
        for (pid, _fid), value in per.items():
            counts[pid] = counts.get(pid, 0) + value.bit_count()
        return counts

    def lines_of_process(self, process_id: int) -> dict[str, dict[str, set[int]]]:
        """Context -> path -> lines, for one process."""
        out: dict[str, dict[str, set[int]]] = {}
        for path, context, bits in self._db.execute(
            "SELECT file.path, context.name, numbits FROM line_bits"
            " JOIN file ON file.id = line_bits.file_id"
            " JOIN context ON context.id = line_bits.context_id WHERE process_id=?",
            (process_id,),
        ):
            out.setdefault(context, {})[path] = bits_to_lines(bits)
        return out

    def arcs_of_process(self, process_id: int) -> dict[str, dict[str, set[tuple[int, int]]]]:
        """Context -> path -> arcs, for one process."""
        out: dict[str, dict[str, set[tuple[int, int]]]] = {}
        for path, context, a, b in self._db.execute(
            "SELECT file.path, context.name, fromno, tono FROM arc"
            " JOIN file ON file.id = arc.file_id"
            " JOIN context ON context.id = arc.context_id WHERE process_id=?",
            (process_id,),
        ):
            out.setdefault(context, {}).setdefault(path, set()).add((a, b))
        return out


def process_label(pid: int | None, argv: list[str]) -> str:
    """A short human label for a process: ``pid 123: python child.py``."""
    shown = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(argv[:4]))
    if len(argv) > 4:
        shown += " ..."
    return f"pid {pid}: {shown}"
