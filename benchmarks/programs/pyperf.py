"""A stand-in for ``pyperf``, so pyperformance's benchmark bodies run a fixed amount of work.

pyperformance's ``bm_*/run_benchmark.py`` files end with a ``pyperf.Runner``
block. The real Runner spawns worker processes, calibrates and times; this one
runs the body a fixed number of times (``--loops N``) in this one process, so
a coverage tool measures the whole program exactly as it would measure any
script. ``run.py`` copies this file next to the benchmark files, where
``import pyperf`` finds it first.
"""

from __future__ import annotations

import argparse
import sys
import time

TYPE_CHECKING = False  # typing is not imported: the shim's start-up is part of every run
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

perf_counter = time.perf_counter


class Runner:
    """Runs each benchmark function ``--loops`` times, once, in-process."""

    def __init__(self, add_cmdline_args: Callable[..., Any] | None = None, **_: Any) -> None:
        """`add_cmdline_args` is accepted and ignored: there are no worker processes."""
        self.metadata: dict[str, Any] = {}
        self.argparser = argparse.ArgumentParser()
        self.argparser.add_argument("--loops", type=int, default=1)
        self._args: argparse.Namespace | None = None
        if "random" in sys.modules:  # bm_go plays random games: make the work repeatable
            sys.modules["random"].seed(0)

    def parse_args(self) -> argparse.Namespace:
        """Parse ``sys.argv`` once: ``--loops`` plus the benchmark's own options."""
        if self._args is None:
            self._args = self.argparser.parse_args()
        return self._args

    def bench_func(self, name: str, func: Callable[..., Any], *args: Any, **_: Any) -> None:
        """Call ``func(*args)`` ``--loops`` times."""
        for _loop in range(self.parse_args().loops):
            func(*args)

    def bench_time_func(self, name: str, func: Callable[..., Any], *args: Any, **_: Any) -> None:
        """Call ``func(loops, *args)`` once: the function loops itself."""
        func(self.parse_args().loops, *args)
