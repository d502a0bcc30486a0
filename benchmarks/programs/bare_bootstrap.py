"""The floor of mpcov's design at start-up: the smallest ``sys.monitoring``
line recorder a ``.pth`` file can start, for the start-up workload's
``bare-active`` case (Python 3.12+).

With ``BARE_COVERAGE_OUT`` set to a directory, ``bare_bootstrap.pth`` calls
:func:`start`: one tool id, ``PY_START`` turning ``LINE`` on per code object,
each line recorded once and disabled, and at exit the lines written with
``marshal`` to ``BARE_COVERAGE_OUT/bare.<pid>.marshal``. No file selection,
no fork, signal or subprocess handling, no fragment format: what is left is
what any such collector pays, which puts the machine's speed of the day next
to mpcov's own start-up numbers.
"""

import os
import sys


def start() -> None:
    out = os.environ.get("BARE_COVERAGE_OUT")
    if not out or not hasattr(sys, "monitoring"):
        return
    mon = sys.monitoring
    if mon.get_tool(mon.COVERAGE_ID) == "bare":
        return  # a venv's site-packages can be on sys.path twice (lib and lib64)
    events = mon.events
    tool = mon.COVERAGE_ID
    mon.use_tool_id(tool, "bare")
    seen: set[tuple[str, int]] = set()
    disable = mon.DISABLE

    def on_start(code, offset):  # type: ignore[no-untyped-def]
        mon.set_local_events(tool, code, events.LINE)
        return disable

    def on_line(code, line):  # type: ignore[no-untyped-def]
        seen.add((code.co_filename, line))
        return disable

    mon.register_callback(tool, events.PY_START, on_start)
    mon.register_callback(tool, events.LINE, on_line)
    mon.set_events(tool, events.PY_START)

    import atexit
    import marshal

    def save() -> None:
        mon.set_events(tool, 0)
        with open(os.path.join(out, f"bare.{os.getpid()}.marshal"), "wb") as f:
            marshal.dump(sorted(seen), f)

    atexit.register(save)
