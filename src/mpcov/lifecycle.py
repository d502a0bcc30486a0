"""Keeping a measured process's data safe, however the process ends.

The :class:`Recorder` owns one process's core and fragment writer and makes
sure pending data reaches the fragment:

* periodically, from a lazy background thread (so a process later killed with
  SIGKILL has lost at most about one flush interval of new lines);
* at ``atexit``, in ``os._exit``, before ``os.exec*``;
* on SIGTERM and SIGHUP: data saved, then the process dies of the same
  signal (or the program's own handler runs, when it has one);
* around ``fork``: the parent flushes and stops its flush thread first (3.12+
  warns about forking a multi-threaded process, and mpcov must not make the
  program warn); the child drops the parent's unflushed data, opens its own
  fragment and records its own run.

It also puts ``MPCOV_RUN`` back into environments that programs build for
their children (``env=`` dicts, ``os.execve``, ``os.posix_spawn``), so a
child started with a scrubbed environment is measured too.

This module runs in every measured process: it imports only builtin modules.
"""

from __future__ import annotations

import _signal
import _thread
import atexit
import os
import sys
import time

from mpcov.fragment import FragmentWriter
from mpcov.sigwatch import SignalWatcher, Worker, block_async_signals

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn

    from mpcov.fragment import Arcs, Lines

_SIGNALS = tuple(
    s for s in (getattr(_signal, "SIGTERM", None), getattr(_signal, "SIGHUP", None)) if s
)


def process_record(manifest: dict[str, Any], parent_fragment: str | None) -> dict[str, Any]:
    """What a fragment says about the process that wrote it."""
    argv = list(getattr(sys, "orig_argv", None) or sys.argv)
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = ""
    return {
        "host": os.uname().nodename,
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "parent_fragment": parent_fragment,
        "argv": argv,
        "cwd": cwd,
        "python": sys.executable,
        "version": ".".join(str(n) for n in sys.version_info[:3]),
        "start": time.time(),
        "run_id": manifest.get("run_id", ""),
    }


class Recorder:
    """One measured process: its core, its fragment, and the hooks that save data."""

    def __init__(
        self,
        manifest: dict[str, Any],
        make_core: Callable[[Callable[[], None]], Any],
        warn: Callable[[str], None],
    ) -> None:
        """`make_core(notify)` creates the tracer core; the core calls `notify`
        when new data becomes pending."""
        self.manifest = manifest
        self.core = make_core(self.on_pending)
        self.warn = warn
        self.context: str = manifest.get("context") or ""
        self.interval = float(manifest.get("flush_interval") or 1.0)
        self.writer = FragmentWriter(manifest["fragment_dir"], self._record(None))
        self._pid = os.getpid()
        self._lock = _thread.RLock()
        self._unsaved: Lines = {}
        self._unsaved_arcs: Arcs = {}
        self._write_failed = False
        self._flusher = 0  # thread id of the thread flushing right now
        self._deferred_signal = 0
        self._finished = False
        self._timer: Worker | None = None
        self._last_timer: Worker | None = None  # may still be exiting
        self._timer_stop = _thread.allocate_lock()
        self._timer_lock = _thread.RLock()
        self._user_handlers: dict[int, Any] = {}
        self._dying = 0  # the signal mpcov's handler is ending the process with
        self._watcher = SignalWatcher(self._needs_rescue)

    def _record(self, parent_fragment: str | None) -> dict[str, Any]:
        record = process_record(self.manifest, parent_fragment)
        record["core"] = self.core.name
        record["branch"] = bool(self.manifest.get("branch"))
        return record

    # -- saving data -------------------------------------------------------

    def flush(self) -> bool:
        """Write pending data to the fragment; True if anything was written."""
        with self._lock:
            self._flusher = _thread.get_ident()
            try:
                wrote = self._flush_locked()
            finally:
                self._flusher = 0
            signum, self._deferred_signal = self._deferred_signal, 0
        if signum:
            self._die_of(signum)
        return wrote

    def _flush_locked(self) -> bool:
        lines, arcs = self.core.drain()
        if self._unsaved:
            for path, nums in self._unsaved.items():
                lines.setdefault(path, set()).update(nums)
            self._unsaved = {}
        if self._unsaved_arcs:
            for path, pairs in self._unsaved_arcs.items():
                arcs.setdefault(path, set()).update(pairs)
            self._unsaved_arcs = {}
        if not lines and not arcs:
            return False
        try:
            self.writer.write_data(self.context, lines, arcs)
        except OSError as exc:
            # Keep it: the next flush tries again.
            self._unsaved, self._unsaved_arcs = lines, arcs
            if not self._write_failed:
                self._write_failed = True
                self.warn(
                    f"cannot write coverage data to {self.writer.path} ({exc.strerror}); "
                    "keeping it in memory and retrying"
                )
            return False
        return True

    def finish(self, how: str, status: int | None) -> None:
        """Save everything and write the end record (idempotent per process)."""
        self._stop_timer()
        with self._lock:
            self._flush_locked()
            if self._finished:
                return
            self._finished = True
            try:
                self.writer.write_end(how, status, time.time())
            except OSError as exc:
                self.warn(f"cannot write coverage data to {self.writer.path} ({exc.strerror})")

    def set_context(self, context: str) -> None:
        """Record future lines under `context` (flushing what came before)."""
        self.flush()
        self.context = context

    # -- the lazy flush thread ---------------------------------------------

    def on_pending(self) -> None:
        """Called by the core when new data becomes pending: make sure a flush
        thread is running (and, after a fork, the signal watcher)."""
        if self._timer is None and not self._finished and os.getpid() == self._pid:
            with self._timer_lock:
                if self._timer is None:
                    self._start_timer()
            self._watcher.ensure_running()

    def _start_timer(self) -> None:
        stop = _thread.allocate_lock()
        stop.acquire()
        self._timer_stop = stop
        worker = Worker(lambda: self._timer_loop(worker, stop))
        self._timer = self._last_timer = worker
        worker.start()

    def _timer_loop(self, worker: Worker, stop: Any) -> None:
        block_async_signals()
        while not stop.acquire(timeout=self.interval):
            try:
                wrote = self.flush()
            except Exception:  # never let the thread die noisily
                wrote = False
            if not wrote:
                # Idle: leave, unless data arrived meanwhile. Decided under the
                # lock that on_pending() takes, so that exactly one of us
                # keeps a flush thread alive.
                with self._timer_lock:
                    if not self.core.pending():
                        if self._timer is worker:
                            self._timer = None
                        return

    def _stop_timer(self) -> None:
        """Stop the flush thread and wait until its OS thread is gone."""
        with self._timer_lock:
            timer, self._timer = self._timer, None
            if timer is not None:
                self._timer_stop.release()
        last, self._last_timer = self._last_timer, None
        if last is not None:
            last.wait_gone()

    # -- process events ----------------------------------------------------

    def before_fork(self) -> None:
        """In the parent, just before fork: save data, stop the flush thread."""
        if os.getpid() != self._pid:
            return
        self._stop_timer()
        self._watcher.stop()
        self.flush()

    def after_fork_in_child(self) -> None:
        """In the child: a new process with its own record and fragment."""
        parent = self.writer.name
        self.writer.forget()
        self._pid = os.getpid()
        self._lock = _thread.RLock()
        self._timer_lock = _thread.RLock()
        self._timer = self._last_timer = None
        self._unsaved = {}
        self._unsaved_arcs = {}
        self._finished = False
        self._flusher = 0
        self._dying = 0
        self._watcher.after_fork_in_child()
        self.core.after_fork_in_child()
        self.writer = FragmentWriter(self.manifest["fragment_dir"], self._record(parent))
        self.writer.open()

    def _at_exit(self) -> None:
        if os.getpid() == self._pid:
            self.finish("exit", None)

    def _die_of(self, signum: int) -> None:
        self.finish("signal", -signum)
        _real_signal(signum, _signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    def _needs_rescue(self, signum: int) -> bool:
        """Is mpcov's own handler installed for `signum`, and has it not run?"""
        return signum in _SIGNALS and not self._dying and (
            _real_getsignal(signum) == self._on_signal
        )

    def _on_signal(self, signum: int, frame: object) -> None:
        self._dying = signum
        if self._flusher == _thread.get_ident():
            # The signal interrupted this thread's own flush: let it finish
            # writing, then die (flush() checks _deferred_signal).
            self._deferred_signal = signum
            return
        self._die_of(signum)

    def _chained_handler(self, signum: int, frame: object) -> Any:
        handler = self._user_handlers.get(signum)
        if self._flusher != _thread.get_ident():
            self.flush()
        if callable(handler):
            return handler(signum, frame)
        return None

    # -- installing hooks ----------------------------------------------------

    def install(self) -> None:
        """Start measuring and hook every way the process can end or change."""
        atexit.register(self._at_exit)
        os.register_at_fork(before=self.before_fork, after_in_child=self.after_fork_in_child)
        _patch_exit(self)
        _patch_exec(self)
        _patch_spawn_env(self.manifest)
        self._install_signals()
        self.core.start()
        # Create the fragment now: a fragment without an end record tells
        # `mpcov run` and `mpcov combine` that this process is still running.
        self.writer.open()

    def _install_signals(self) -> None:
        if _thread.get_ident() != _main_thread_id:
            return  # signal handlers can only be set from the main thread
        for signum in _SIGNALS:
            try:
                if _real_getsignal(signum) == _signal.SIG_DFL:
                    _real_signal(signum, self._on_signal)
            except (OSError, ValueError):
                pass
        _signal.signal = self._patched_signal
        _signal.getsignal = self._patched_getsignal
        self._watcher.install()

    def _patched_signal(self, signum: int, handler: Any) -> Any:
        if signum not in _SIGNALS:
            return _real_signal(signum, handler)
        previous = self._patched_getsignal(signum)
        if handler == _signal.SIG_DFL:
            _real_signal(signum, self._on_signal)
            self._user_handlers.pop(signum, None)
        elif callable(handler):
            _real_signal(signum, self._chained_handler)
            self._user_handlers[signum] = handler
        else:
            _real_signal(signum, handler)
            self._user_handlers.pop(signum, None)
        return previous

    def _patched_getsignal(self, signum: int) -> Any:
        current = _real_getsignal(signum)
        if current == self._on_signal:
            return _signal.SIG_DFL
        if current == self._chained_handler:
            return self._user_handlers.get(signum)
        return current


_real_signal = _signal.signal
_real_getsignal = _signal.getsignal
_main_thread_id = _thread.get_ident()


def _patch_exit(rec: Recorder) -> None:
    real_exit = os._exit

    def _exit(status: int) -> NoReturn:
        try:
            rec.finish("_exit", status)
        except BaseException:
            pass
        real_exit(status)

    os._exit = _exit


def _patch_exec(rec: Recorder) -> None:
    env_fixer = _EnvFixer(rec.manifest)
    for name in ("execv", "execve"):
        real = getattr(os, name, None)
        if real is not None:
            setattr(os, name, _exec_wrapper(rec, real, env_fixer if name == "execve" else None))


def _exec_wrapper(rec: Recorder, real: Any, env_fixer: _EnvFixer | None) -> Any:
    def wrapper(path: Any, args: Any, *rest: Any) -> Any:
        if env_fixer is not None and rest:
            rest = (env_fixer.mapping(rest[0]), *rest[1:])
        rec.finish("exec", None)
        try:
            return real(path, args, *rest)
        except BaseException:
            # The exec failed and this program goes on: continue in a new fragment.
            rec.writer = FragmentWriter(rec.writer.directory, dict(rec.writer.process))
            rec._finished = False
            raise

    wrapper.__name__ = real.__name__
    wrapper.__doc__ = real.__doc__
    return wrapper


class _EnvFixer:
    """Puts MPCOV_RUN (and the hook directory on PYTHONPATH, for other
    interpreters) back into environments built for child processes."""

    def __init__(self, manifest: dict[str, Any]) -> None:
        self.value = os.environ.get("MPCOV_RUN", "")
        self.hook_dir = manifest.get("hook_dir") or ""

    def mapping(self, env: Any) -> Any:
        if not self.value or env is None:
            return env
        try:
            if "MPCOV_RUN" in env or b"MPCOV_RUN" in env:
                return env
            fixed = dict(env)
        except TypeError:
            return env
        binary = any(isinstance(k, bytes) for k in fixed)
        key, value = ("MPCOV_RUN", self.value)
        if binary:
            fixed[key.encode()] = os.fsencode(value)
        else:
            fixed[key] = value
        if self.hook_dir and not any(k in ("PYTHONPATH", b"PYTHONPATH") for k in fixed):
            if binary:
                fixed[b"PYTHONPATH"] = os.fsencode(self.hook_dir)
            else:
                fixed["PYTHONPATH"] = self.hook_dir
        return fixed

    def env_list(self, env_list: Any) -> Any:
        if not self.value or env_list is None:
            return env_list
        if any(e.startswith(b"MPCOV_RUN=") for e in env_list):
            return env_list
        fixed = [*env_list, b"MPCOV_RUN=" + os.fsencode(self.value)]
        if self.hook_dir and not any(e.startswith(b"PYTHONPATH=") for e in env_list):
            fixed.append(b"PYTHONPATH=" + os.fsencode(self.hook_dir))
        return fixed


def _patch_spawn_env(manifest: dict[str, Any]) -> None:
    fixer = _EnvFixer(manifest)
    if not fixer.value:
        return
    for name in ("posix_spawn", "posix_spawnp"):
        real = getattr(os, name, None)
        if real is not None:
            setattr(os, name, _spawn_wrapper(real, fixer))
    # subprocess and multiprocessing start children through _posixsubprocess;
    # it is an extension module (0.4 ms to load), so a process that starts
    # none never loads it for mpcov's sake: it is patched once imported.
    if "_posixsubprocess" in sys.modules or "_posixsubprocess" in sys.builtin_module_names:
        try:
            import _posixsubprocess
        except ImportError:
            return
        _patch_fork_exec(_posixsubprocess, fixer)
    else:
        after_import("_posixsubprocess", lambda module: _patch_fork_exec(module, fixer))


def _patch_fork_exec(_posixsubprocess: Any, fixer: _EnvFixer) -> None:
    real_fork_exec = _posixsubprocess.fork_exec

    def fork_exec(*args: Any, **kwargs: Any) -> Any:
        if len(args) > 5:
            args = (*args[:5], fixer.env_list(args[5]), *args[6:])
        return real_fork_exec(*args, **kwargs)

    _posixsubprocess.fork_exec = fork_exec
    subprocess = sys.modules.get("subprocess")
    if subprocess is not None and getattr(subprocess, "_fork_exec", None) is real_fork_exec:
        subprocess._fork_exec = fork_exec  # type: ignore[attr-defined]


def _spawn_wrapper(real: Any, fixer: _EnvFixer) -> Any:
    # Same calling convention as the real function: env is positional-only.
    def wrapper(path: Any, argv: Any, env: Any, /, *args: Any, **kwargs: Any) -> Any:
        return real(path, argv, fixer.mapping(env), *args, **kwargs)

    wrapper.__name__ = real.__name__
    wrapper.__doc__ = real.__doc__
    return wrapper


# -- running code right after a module is imported ------------------------------------


class _ImportWatch:
    """A ``sys.meta_path`` finder that finds nothing of its own: for a module
    it watches, it lets the path finder find it and runs the callbacks right
    after the module's code has run. A module the interpreter has frozen in
    (``runpy``, ``os``...) is left to its frozen importer, which comes first:
    watching it would load it from source instead, so it is never seen. It
    leaves ``sys.meta_path`` once it watches nothing."""

    def __init__(self) -> None:
        self.waiting: dict[str, list[Callable[[Any], None]]] = {}

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in self.waiting or _imp.find_frozen(fullname) is not None:
            return None
        spec = _external.PathFinder.find_spec(fullname, path, target)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return None  # the finders after this one look for it as usual
        real = loader.exec_module

        def exec_module(module: Any) -> None:
            real(module)
            for then in self.waiting.pop(fullname, ()):
                then(module)
            self._leave_if_idle()

        loader.exec_module = exec_module
        return spec

    def cancel(self, name: str, then: Callable[[Any], None]) -> None:
        thens = self.waiting.get(name, [])
        if then in thens:
            thens.remove(then)
        if not thens:
            self.waiting.pop(name, None)
        self._leave_if_idle()

    def _leave_if_idle(self) -> None:
        if not self.waiting:
            try:
                sys.meta_path.remove(self)
            except ValueError:
                pass


_external: Any = sys.modules["_frozen_importlib_external"]
_imp: Any = sys.modules["_imp"]  # (the import system's own, always loaded)
_watch = _ImportWatch()


def after_import(name: str, then: Callable[[Any], None]) -> Callable[[], None]:
    """Call `then(module)` once module `name` (not imported yet) has been
    imported from the path (never for a frozen module); returns the function
    that cancels it."""
    _watch.waiting.setdefault(name, []).append(then)
    if _watch not in sys.meta_path:
        sys.meta_path.insert(0, _watch)
    return lambda: _watch.cancel(name, then)
