"""Making sure a SIGTERM that mpcov handles still ends the process promptly.

mpcov catches SIGTERM and SIGHUP (when the program leaves them at their
default) to save its data before the process dies. A Python-level handler,
though, only runs when the *main thread* next executes bytecode. If the
signal lands just before the main thread blocks in a system call (a pool
worker entering ``sem_wait``), or is taken by another thread while the main
thread is blocked, the handler never runs and the process lives on — where
without mpcov the default action would have killed it at once. That turned
``with Pool() as pool:`` into an occasional hang.

The fix: mpcov sets the signal wakeup fd (Python's C-level handler writes the
signal number to it, whichever thread takes the signal) and a small watcher
thread reads it. When mpcov's own handler has not run 10 ms after the
signal, the watcher sends the signal again to the main thread with
``pthread_kill``, which interrupts whatever system call it is blocked in, so
the handler runs: data saved, then death by the same signal.

A program that installs its own wakeup fd (asyncio does) gets it: its main
thread then waits on that fd, so the race cannot happen, and the watcher
steps aside until the program sets ``-1`` again. ``signal.set_wakeup_fd``
returns what the program would have seen without mpcov.

This module runs in every measured process: builtin modules only.
"""

from __future__ import annotations

import _signal
import _thread
import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_real_set_wakeup_fd = _signal.set_wakeup_fd
_start_joinable = getattr(_thread, "start_joinable_thread", None)  # 3.13+
_start_new_thread = _thread.start_new_thread
FIRST_NUDGE = 0.01  # seconds to let the handler run on its own
RESCUE_DELAY = 0.1  # seconds between further nudges
RESCUE_FOR = 5.0  # seconds to keep nudging the main thread

# Signals that report a fault of the thread itself: never blocked.
_SYNCHRONOUS = {
    getattr(_signal, name)
    for name in ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGTRAP", "SIGABRT", "SIGSYS")
    if hasattr(_signal, name)
}


def block_async_signals() -> None:
    """Block asynchronous signals in the calling (mpcov) thread, so that the
    kernel delivers process-directed signals to the program's own threads."""
    try:
        _signal.pthread_sigmask(_signal.SIG_BLOCK, set(_signal.valid_signals()) - _SYNCHRONOUS)
    except (AttributeError, OSError, ValueError):
        pass


class Worker:
    """A background thread mpcov can stop and wait for, until its OS thread is gone.

    Python 3.12+ warns about forking a process that has other OS threads, so
    mpcov's threads are stopped before every fork and must really be gone.
    """

    def __init__(self, target: Callable[[], None]) -> None:
        self._target = target
        self._handle: Any = None
        self._tid: int | None = None
        self.running = False

    def start(self) -> None:
        """Start the thread."""
        self.running = True
        self._tid = None
        if _start_joinable is not None:
            self._handle = _start_joinable(self._run, daemon=True)
        else:
            self._handle = None
            _start_new_thread(self._run, ())

    def _run(self) -> None:
        self._tid = _thread.get_native_id()
        try:
            self._target()
        finally:
            self.running = False

    def wait_gone(self, timeout: float = 0.5) -> None:
        """Wait until the (already told to stop) thread has exited."""
        if self._handle is not None:
            self._handle.join()
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tid = self._tid
            if tid is not None and not self.running:
                if not os.path.exists(f"/proc/self/task/{tid}"):
                    return
            elif tid is None and not os.path.isdir("/proc/self/task"):
                return
            time.sleep(0.0005)


class SignalWatcher:
    """Reads the signal wakeup fd and rescues handlers stuck behind a blocked main thread.

    `needs_rescue(signum)` says whether mpcov's flush-and-die handler is the
    one installed for `signum` and has not run yet.
    """

    def __init__(self, needs_rescue: Callable[[int], bool]) -> None:
        self._needs_rescue = needs_rescue
        self._main = _thread.get_ident()
        self._read = self._write = -1
        self._program_fd = -1  # the program's own wakeup fd, when it set one
        self._worker: Worker | None = None

    def install(self) -> bool:
        """Take the wakeup fd (main thread only); False if someone already has it."""
        read, write = os.pipe()
        os.set_blocking(write, False)
        try:
            previous = _real_set_wakeup_fd(write, warn_on_full_buffer=False)
        except ValueError:  # not the main thread
            os.close(read)
            os.close(write)
            return False
        if previous != -1:  # a sitecustomize or .pth got there first: leave it
            _real_set_wakeup_fd(previous)
            os.close(read)
            os.close(write)
            return False
        self._read, self._write = read, write
        _signal.set_wakeup_fd = self.set_wakeup_fd
        self.ensure_running()
        return True

    def ensure_running(self) -> None:
        """Start the watcher thread if it should run and does not."""
        if self._read < 0 or self._program_fd != -1:
            return
        if self._worker is None or not self._worker.running:
            self._worker = Worker(self._loop)
            self._worker.start()

    def stop(self) -> None:
        """Stop the watcher thread and wait until it is gone (before fork)."""
        worker, self._worker = self._worker, None
        if worker is None or not worker.running:
            return
        try:
            os.write(self._write, b"\0")  # 0 is no signal number: the stop marker
        except OSError:
            return
        worker.wait_gone()

    def after_fork_in_child(self) -> None:
        """The pipe is shared with the parent: make the child its own."""
        self._worker = None
        self._main = _thread.get_ident()
        if self._read < 0:
            return
        for fd in (self._read, self._write):
            try:
                os.close(fd)
            except OSError:
                pass
        self._read = self._write = -1
        read, write = os.pipe()
        os.set_blocking(write, False)
        self._read, self._write = read, write
        if self._program_fd == -1:
            _real_set_wakeup_fd(write, warn_on_full_buffer=False)
            self.ensure_running()

    def set_wakeup_fd(self, fd: int, /, *, warn_on_full_buffer: bool = True) -> int:
        """``signal.set_wakeup_fd`` as the program sees it."""
        if _thread.get_ident() != self._main:
            raise ValueError("set_wakeup_fd only works in main thread of the main interpreter")
        previous = self._program_fd
        if fd == -1:
            if self._read >= 0:
                _real_set_wakeup_fd(self._write, warn_on_full_buffer=False)
            self._program_fd = -1
            self.ensure_running()
        else:
            _real_set_wakeup_fd(fd, warn_on_full_buffer=warn_on_full_buffer)
            self._program_fd = fd
        return previous

    def _loop(self) -> None:
        block_async_signals()
        while True:
            try:
                data = os.read(self._read, 64)
            except OSError:
                return
            if not data:
                return
            for signum in set(data) - {0}:
                if self._needs_rescue(signum):
                    self._rescue(signum)
            if 0 in data:
                return

    def _rescue(self, signum: int) -> None:
        deadline = time.monotonic() + RESCUE_FOR
        delay = FIRST_NUDGE
        while time.monotonic() < deadline:
            time.sleep(delay)
            delay = RESCUE_DELAY
            if not self._needs_rescue(signum):
                return
            try:
                _signal.pthread_kill(self._main, signum)
            except (OSError, ValueError):
                return
