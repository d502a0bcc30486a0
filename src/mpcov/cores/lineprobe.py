"""The ``probes`` core: self-removing line probes (CPython 3.11).

3.11 has no ``sys.monitoring``, and ``sys.settrace`` calls a Python function
for every function call of the process, which alone makes call-heavy code
about four times slower. This core traces nothing. Measured files are
compiled with a probe before every statement (:mod:`mpcov.lineprobes`,
applied by the probe loader, :mod:`mpcov.rewrite`): ``PUSH_NULL; LOAD_CONST
probe; PRECALL 0; CALL 0; POP_TOP``, on the statement's line. The probe's
first run records ``(file, line)`` from its caller's frame, then writes a
``JUMP_FORWARD`` over the probe's own ``PUSH_NULL`` in the code object's
executable bytecode, so that every later run of the statement jumps over
the probe: one instruction more than without mpcov.

Writing the bytecode: in 3.11 the instructions a code object runs are stored
in the object itself, from ``type(code).__basicsize__`` on (the
``co_code_adaptive`` array, which the interpreter specializes in place).
:func:`unusable` checks the opcode numbers (by the bytecode magic number)
and the probe's shape before the core is chosen; the first probe to run
checks that layout on a fresh code object (loading ``_ctypes``). A probe is
only rewritten after its instructions were checked in ``co_code`` (the
unspecialized copy), including that the constant called is this core's
probe. ``PUSH_NULL`` and ``JUMP_FORWARD`` have no inline caches, so the
interpreter's passes over the instructions (specializing them, or making
``co_code``) stay aligned, and ``co_code`` of a rewritten code object is
valid code (the probe skipped). The argument byte is written before the
opcode: a thread seeing the write half done sees ``PUSH_NULL`` (which
ignores its argument) or the finished jump.

What the probes cannot see is code compiled elsewhere: the script of a
``python script.py`` process (the interpreter compiles it), code given to
``exec`` or ``eval``. For those, the core falls back to the settrace core,
for the rest of the process: at start if the process runs a measured script
file, and when an ``exec`` audit event shows measured code that has no
probes. The fallback traces only such code (probed code objects are
skipped) and gives the main script's functions probed code for their next
calls (``ProbeLoader.adopt``), but pays settrace's cost per call.

After a fork the child puts every probe the parent had removed back (the
child records what it runs itself) and forgets the parent's data.

Branch mode: measured files get branch probes (:mod:`mpcov.probes`: a
``pass`` on a line of its own from 2^29 up on each way out of a branch that
has no location of its own), then line probes, which are also put before
those ``pass`` statements. A probe on a probe line records the probe and
where it starts (copies of a ``finally`` body differ); lines and probes
become arcs at drain time through the file's witness tables, as in the
other cores (``docs/branches.md``). The fallback then is the settrace core
in branch mode, for unprobed code only.
"""

from __future__ import annotations

import sys

from mpcov.cores import PROBE_BASE, drain_lines, drain_probed

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import CodeType
    from typing import Any

    from mpcov.fragment import Arcs, Lines

#: What probed code holds where the probe function goes (code with a function
#: among its constants cannot be marshalled into the probe cache).
PLACEHOLDER = b"\x00mpcov line probe"

# CPython 3.11's opcodes, fixed by its bytecode magic number (3495).
_MAGIC = (3495).to_bytes(2, "little") + b"\r\n"
_POP_TOP = 1
_PUSH_NULL = 2
_RETURN_VALUE = 83
_LOAD_CONST = 100
_JUMP_FORWARD = 110
_MAKE_FUNCTION = 132
_EXTENDED_ARG = 144
_RESUME = 151
_PRECALL = 166
_CALL = 171
_CALL_CACHES = 4  # inline cache entries after CALL (PRECALL has 1)

_byte: Any = None  # a ctypes unsigned char type, once _writer() checked the layout
_OFFSET = 0  # where a code object's executable bytecode starts in it
_checked: str | None = None  # unusable()'s answer, once known


def _sample() -> int:
    """Code of a known shape, for checks (never called; no ``compile()``: the
    first one in a 3.11 process costs milliseconds)."""
    return (lambda: 0)()


def unusable() -> str | None:
    """Why this interpreter cannot run the probes core, or None if it can.

    Cheap: ``_ctypes`` is only looked for here; it is loaded (a shared
    library) when the first probe runs, which a process that runs no
    measured code never pays for."""
    global _checked
    if _checked is not None:
        return _checked or None
    _checked = _unusable() or ""
    return _checked or None


def _unusable() -> str | None:
    if sys.implementation.name != "cpython" or sys.version_info[:2] != (3, 11):
        return "line probes are for CPython 3.11"
    external: Any = sys.modules["_frozen_importlib_external"]
    if external.MAGIC_NUMBER != _MAGIC:
        return f"unknown bytecode (magic {external.MAGIC_NUMBER!r})"
    # The probe's shape: PUSH_NULL, LOAD_CONST, PRECALL, CALL, their caches.
    expected = bytes([_RESUME, 0, _PUSH_NULL, 0, _LOAD_CONST, 1, _MAKE_FUNCTION, 0,
                      _PRECALL, 0, 0, 0, _CALL, 0, *([0] * (2 * _CALL_CACHES)), _RETURN_VALUE, 0])
    if _sample.__code__.co_code != expected:
        return "unexpected bytecode"
    if "_ctypes" not in sys.modules and external.PathFinder.find_spec("_ctypes") is None:
        return "no _ctypes module"
    return None


def _writer() -> Any:
    """The byte type that writes bytecode, after checking where a code object
    keeps it; None if that cannot be done (the probes then stay: slower, as
    correct)."""
    global _byte, _OFFSET
    if _byte is None:
        _byte = False
        try:
            import _ctypes

            class _Byte(_ctypes._SimpleCData):  # type: ignore[type-arg]  # ctypes.c_ubyte
                _type_ = "B"

            sample = _sample.__code__  # never run, so never specialized
            offset = type(sample).__basicsize__
            raw = sample.co_code
            if bytes((_Byte * len(raw)).from_address(id(sample) + offset)) == raw:
                _byte, _OFFSET = _Byte, offset
        except Exception:
            pass
    return _byte or None


def _remove(code: CodeType, lasti: int, probe: object) -> int:
    """Turn the probe whose call is at `lasti` in `code` into a jump over it;
    return where the probe starts, or -1 if the instructions there are not
    a call of `probe` as the rewrite makes it (then it stays)."""
    raw = code.co_code
    if raw[lasti] != _CALL:  # a Python callee: the frame points at CALL's last cache
        lasti -= 2 * _CALL_CACHES
    end = lasti + 2 + 2 * _CALL_CACHES
    at = lasti - 6
    if (
        at < 2
        or end >= len(raw)
        or raw[lasti] != _CALL
        or raw[lasti - 4] != _PRECALL
        or raw[at] != _LOAD_CONST
        or raw[end] != _POP_TOP
    ):
        return -1
    index = raw[at + 1]
    shift = 8
    at -= 2
    while at >= 0 and raw[at] == _EXTENDED_ARG:
        index |= raw[at + 1] << shift
        shift += 8
        at -= 2
    consts = code.co_consts
    if at < 0 or raw[at] != _PUSH_NULL or index >= len(consts) or consts[index] is not probe:
        return -1
    byte = _byte or _writer()
    if byte is None:
        return -1
    where = id(code) + _OFFSET + at
    byte.from_address(where + 1).value = (end - at) // 2  # the jump's length, in units
    byte.from_address(where).value = _JUMP_FORWARD
    return at


def _restore(code: CodeType, at: int) -> None:
    """Put back the probe :func:`_remove` turned into a jump at `at`."""
    where = id(code) + _OFFSET + at
    _byte.from_address(where).value = _PUSH_NULL
    _byte.from_address(where + 1).value = 0


_current: LineProbeCore | None = None  # the started core, for the audit hook
_hooked = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "exec":
        core = _current
        if core is not None:
            try:
                core.on_exec(args[0])
            except Exception:
                pass  # an error here would be the audited exec's: never the program's problem


class LineProbeCore:
    """Records executed lines through self-removing probes (CPython 3.11).

    `probes` is the ``mpcov.rewrite.ProbeLoader`` (kind ``lines``, or
    ``branch+lines`` with `branch`) that compiles measured modules with
    probes; the core gives it its probe function (``finish``), and uses its
    ``install()``/``uninstall()``, ``code_ids``, ``adopt()`` and ``tables``.
    """

    name = "probes"

    def __init__(self, wanted: Callable[[str], bool], notify: Callable[[], None],
                 probes: Any, branch: bool = False) -> None:
        why = unusable()
        if why is not None:
            raise RuntimeError(f"the probes core cannot run here: {why}")
        self._wanted = wanted
        self._notify = notify
        self.probes = probes
        self._branch = branch
        self._pending: list[tuple[str, int]] = []
        # Branch mode: (file, probe line, where the probe starts) of probes run.
        self._probe_hits: list[tuple[str, int, int]] = []
        self._seen: set[tuple[str, int, int]] = set()
        self._patched: list[tuple[CodeType, int]] = []
        self._recording = [False]
        self._fallback: Any = None
        self._probe = self._make_probe()
        probes.finish = self.finish

    def _make_probe(self) -> Callable[[], None]:
        getframe = sys._getframe
        pending = self._pending
        hits = self._probe_hits
        seen = self._seen
        patched = self._patched
        recording = self._recording
        notify = self._notify

        def probe() -> None:
            try:
                record(getframe(1))
            except Exception:
                pass  # never the program's problem (a probe that stays only costs time)

        def record(frame: Any) -> None:
            code = frame.f_code
            at = _remove(code, frame.f_lasti, probe)
            if at >= 0:
                patched.append((code, at))
            if not recording[0]:
                return
            filename = code.co_filename
            line = frame.f_lineno
            if line >= PROBE_BASE:  # a branch probe: which copy matters
                key = (filename, line, at)
                if key in seen:
                    return
                seen.add(key)
                hits.append(key)
                line = PROBE_BASE  # a marker: `pending` is what notify() watches
            else:
                key = (filename, line, 0)
                if key in seen:
                    return
                seen.add(key)
            pending.append((filename, line))
            if len(pending) == 1:
                notify()

        return probe

    def finish(self, code: CodeType) -> CodeType:
        """`code` (probed module code, as cached) with this core's probe
        function in place of :data:`PLACEHOLDER`, in every nested code object."""
        probe = self._probe
        code_type = type(code)

        def swap(one: CodeType) -> CodeType:
            consts = tuple(
                probe if type(c) is bytes and c == PLACEHOLDER
                else swap(c) if type(c) is code_type
                else c
                for c in one.co_consts
            )
            return one.replace(co_consts=consts)

        return swap(code)

    # -- the core interface ------------------------------------------------

    def start(self) -> None:
        """Record from now on: load measured modules with probes; fall back to
        settrace for a measured script the interpreter compiles itself."""
        global _current, _hooked
        self._recording[0] = True
        _current = self
        self.probes.install()
        if not _hooked:
            sys.addaudithook(_audit)  # for good: audit hooks cannot be removed
            _hooked = True
        if self._fallback is not None:
            self._fallback.start()
        elif self._runs_measured_script():
            self._fall_back()

    def _runs_measured_script(self) -> bool:
        argv = getattr(sys, "argv", None)
        if not argv or argv[0] in ("", "-c", "-m"):
            return False
        import os  # (loaded already)

        return bool(self._wanted(os.path.abspath(argv[0])))

    def _fall_back(self) -> None:
        from mpcov.cores.settrace import SettraceCore

        fallback = SettraceCore(self._wanted, self._notify, self._branch,
                                self.probes if self._branch else None)
        fallback.skip_ids = self.probes.code_ids
        fallback.adopt = self.probes.adopt
        self._fallback = fallback
        if self._recording[0]:
            fallback.start()

    def on_exec(self, code: object) -> None:
        """An ``exec`` audit event: measured code without probes falls back."""
        if (
            self._fallback is None
            and self._recording[0]
            and type(code) is type(self.on_exec.__code__)
            and id(code) not in self.probes.code_ids
            and self._wanted(code.co_filename)
        ):
            self._fall_back()

    def stop(self) -> None:
        """Stop recording (probes still run once each, recording nothing)."""
        global _current
        self._recording[0] = False
        if _current is self:
            _current = None
        self.probes.uninstall()
        if self._fallback is not None:
            self._fallback.stop()

    def pending(self) -> bool:
        """Is there data a drain would return?"""
        return (
            bool(self._pending)
            or bool(self._probe_hits)
            or (self._fallback is not None and self._fallback.pending())
        )

    def drain(self) -> tuple[Lines, Arcs]:
        """New lines since the last drain; in branch mode, new arcs too."""
        if self._branch:
            lines, arcs = drain_probed(self._pending, [], self._probe_hits, self.probes.tables)
        else:
            lines, arcs = drain_lines(self._pending), {}
        if self._fallback is not None:
            more_lines, more_arcs = self._fallback.drain()
            for filename, found in more_lines.items():
                lines.setdefault(filename, set()).update(found)
            for filename, pairs in more_arcs.items():
                arcs.setdefault(filename, set()).update(pairs)
        return lines, arcs

    def after_fork_in_child(self) -> None:
        """Forget what the parent saw, and put back the probes it removed:
        the child records every line it runs from here on."""
        patched = self._patched
        for code, at in patched:
            _restore(code, at)
        del patched[:]
        self._seen.clear()
        del self._pending[:]
        del self._probe_hits[:]
        if self._fallback is not None:
            self._fallback.after_fork_in_child()
