"""Generate a synthetic project and mpcov fragments for the combine and report workloads.

    python make_data.py project DIR N_FILES
    python make_data.py fragments DIR OUT_DIR N_FRAGMENTS [SEED]

``project`` writes ``DIR/pkg/mod_NNNN.py``: ``N_FILES`` modules of the same
shape (a dozen small functions, about 90 statements each). ``fragments``
writes ``N_FRAGMENTS`` fragment files into ``OUT_DIR`` with mpcov's own
``mpcov.fragment.FragmentWriter``, as measured processes would: each says it
ran a random 20 % of the project's files (at least one), and in each of those
a random 60 % of the statements, in one data batch, then ends normally. Run it
with the interpreter of an environment where mpcov is installed.
"""

from __future__ import annotations

import ast
import os
import random
import sys
import time

from mpcov.fragment import FragmentWriter

FUNCTIONS_PER_FILE = 12
FILES_PER_PROCESS = 0.20
LINES_PER_FILE = 0.60


def module_text(index: int) -> str:
    """The source of module `index`: small functions with branches and loops."""
    parts = [f'"""Generated module {index}."""\n\nCONSTANT = {index}\n']
    for f in range(FUNCTIONS_PER_FILE):
        parts.append(
            f"\n\ndef func_{f}(x, y=CONSTANT):\n"
            f"    total = x + {f}\n"
            f"    if total % 2:\n"
            f"        total += y\n"
            f"    else:\n"
            f"        total -= y\n"
            f"    for i in range(3):\n"
            f"        total += i\n"
            f"    return total\n"
        )
    return "".join(parts)


def write_project(root: str, n_files: int) -> None:
    """Write the package `root/pkg` with `n_files` modules."""
    pkg = os.path.join(root, "pkg")
    os.makedirs(pkg, exist_ok=True)
    with open(os.path.join(pkg, "__init__.py"), "w") as f:
        f.write("")
    for i in range(n_files):
        with open(os.path.join(pkg, f"mod_{i:04d}.py"), "w") as f:
            f.write(module_text(i))


def statement_lines(path: str) -> list[int]:
    """Line numbers of the statements in `path` (what a tracer could report)."""
    with open(path) as f:
        tree = ast.parse(f.read())
    return sorted({n.lineno for n in ast.walk(tree) if isinstance(n, ast.stmt)})


def write_fragments(root: str, out_dir: str, count: int, seed: int) -> None:
    """Write `count` fragments of processes that ran parts of the project in `root`."""
    pkg = os.path.join(os.path.abspath(root), "pkg")
    files = sorted(os.path.join(pkg, n) for n in os.listdir(pkg) if n.startswith("mod_"))
    lines = {path: statement_lines(path) for path in files}
    rng = random.Random(seed)
    per_process = max(1, int(len(files) * FILES_PER_PROCESS))
    host = os.uname().nodename
    os.makedirs(out_dir, exist_ok=True)
    for i in range(count):
        writer = FragmentWriter(out_dir, {
            "host": host, "pid": 100000 + i, "ppid": 99999, "parent_fragment": None,
            "argv": [sys.executable, "prog.py", str(i)], "cwd": os.path.abspath(root),
            "python": sys.executable, "version": ".".join(map(str, sys.version_info[:3])),
            "start": time.time(), "run_id": "bench", "core": "monitoring", "branch": False,
        })
        ran = {
            path: set(rng.sample(lines[path], max(1, int(len(lines[path]) * LINES_PER_FILE))))
            for path in rng.sample(files, per_process)
        }
        writer.write_data("", ran, {})
        writer.write_end("exit", 0, time.time())
        writer.close()


def main(argv: list[str]) -> int:
    """Dispatch ``project`` or ``fragments``."""
    if argv[:1] == ["project"] and len(argv) == 3:
        write_project(argv[1], int(argv[2]))
    elif argv[:1] == ["fragments"] and len(argv) in (4, 5):
        write_fragments(argv[1], argv[2], int(argv[3]), int(argv[4]) if len(argv) == 5 else 0)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
