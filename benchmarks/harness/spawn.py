"""Run one command and write what its process tree cost.

    python -I -S spawn.py RESULT TIMEOUT -- ARGV...

The harness starts every measured command through this small launcher
(builtin modules only) because Linux charges a child the peak RSS of the
process it was spawned from: started from the harness, every command would
report at least the harness's own size. From here the floor is this
launcher's size (about 9 MB, below any Python process that imports ``site``).

The command runs in a new session; after TIMEOUT seconds its whole process
group is killed (a hung pool worker must not stall the benchmark). Writes
``user sys maxrss_kb wall_s exit_code timed_out`` to RESULT.
"""

import _signal
import os
import sys
import time


def main() -> None:
    """Spawn argv, wait for it with wait4, write the numbers."""
    result, timeout, argv = sys.argv[1], int(sys.argv[2]), sys.argv[4:]
    timed_out = []

    def kill_group(signum: int, frame: object) -> None:
        timed_out.append(1)
        try:
            os.killpg(pid, _signal.SIGKILL)
        except OSError:
            pass

    start = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, os.environ, setsid=True)
    _signal.signal(_signal.SIGALRM, kill_group)
    _signal.alarm(timeout)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    _signal.alarm(0)
    if not timed_out:  # the program's leftovers (a detached child) go too
        try:
            os.killpg(pid, _signal.SIGKILL)
        except OSError:
            pass
    with open(result, "w") as f:
        f.write(f"{usage.ru_utime} {usage.ru_stime} {usage.ru_maxrss} {wall} "
                f"{os.waitstatus_to_exitcode(status)} {len(timed_out)}\n")


main()
