#!/usr/bin/env python3
"""Stress: run Pool.terminate() on busy workers N times under mpcov; report hangs and losses.

    python tools/stress_pool_terminate.py [-n 100] [--start-method fork|spawn|forkserver]

Not part of the test suite (it takes minutes). Each iteration runs a small
program under ``mpcov run`` whose two pool workers are busy when the parent
calls ``pool.terminate()``; a hang is a run that does not finish within the
timeout, a loss is a run whose report misses a line the workers ran before
they signalled they were busy. Use the interpreter that has mpcov installed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap

PROGRAM = textwrap.dedent(
    """
    import multiprocessing, sys, time

    def busy(args):
        ready, i = args
        value = i * 2          # LINE-A
        ready.put(value)       # LINE-B
        time.sleep(60)
        return value

    if __name__ == "__main__":
        ctx = multiprocessing.get_context(sys.argv[1])
        manager = ctx.Manager()
        ready = manager.Queue()
        pool = ctx.Pool(2)
        pool.map_async(busy, [(ready, 0), (ready, 1)], chunksize=1)
        for _ in range(2):
            ready.get(timeout=30)
        time.sleep(1.5)        # let the periodic flush run at least once
        pool.terminate()
        pool.join()
        manager.shutdown()
        print("terminated")
    """
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=100, help="iterations (default 100)")
    ap.add_argument("--start-method", default="fork", choices=["fork", "spawn", "forkserver"])
    ap.add_argument("--timeout", type=float, default=60.0)
    opts = ap.parse_args()
    hangs = losses = 0
    with tempfile.TemporaryDirectory() as tmp:
        prog = os.path.join(tmp, "prog.py")
        with open(prog, "w") as f:
            f.write(PROGRAM)
        lines = PROGRAM.splitlines()
        wanted = {i for i, text in enumerate(lines, 1) if "# LINE-" in text}
        for i in range(opts.n):
            cmd = [sys.executable, "-m", "mpcov", "run", "prog.py", opts.start_method]
            try:
                res = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True,
                                     timeout=opts.timeout)
            except subprocess.TimeoutExpired:
                hangs += 1
                print(f"{i + 1}: HANG", flush=True)
                continue
            subprocess.run([sys.executable, "-m", "mpcov", "json", "-o", "r.json"], cwd=tmp,
                           capture_output=True, check=True)
            with open(os.path.join(tmp, "r.json")) as f:
                report = json.load(f)
            ran = set(report["files"].get("prog.py", {}).get("executed_lines", []))
            if res.returncode != 0 or not wanted <= ran:
                losses += 1
                print(f"{i + 1}: LOSS rc={res.returncode} missing={sorted(wanted - ran)}",
                      flush=True)
    print(f"{opts.n} runs ({opts.start_method}): {hangs} hangs, {losses} losses")
    return 1 if hangs or losses else 0


if __name__ == "__main__":
    sys.exit(main())
