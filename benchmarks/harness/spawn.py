"""Run one command and write what its process tree cost: ``spawn.py RESULT -- ARGV…``.

The harness starts every measured command through this small launcher
(``python -I -S``, builtin modules only) because Linux charges a child the
peak RSS of the process it was spawned from: started from the harness, every
command would report at least the harness's own size. From here the floor is
this launcher's size (about 9 MB, below any Python process that imports
``site``). Writes ``user sys maxrss_kb wall_s exit_code`` to RESULT.
"""

import os
import sys
import time


def main() -> None:
    """Spawn argv, wait for it with wait4, write the numbers."""
    result, argv = sys.argv[1], sys.argv[3:]
    start = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, os.environ)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    with open(result, "w") as f:
        f.write(f"{usage.ru_utime} {usage.ru_stime} {usage.ru_maxrss} {wall} "
                f"{os.waitstatus_to_exitcode(status)}\n")


main()
