"""Run a script as ``python SCRIPT ARGS`` does, compiled with probes.

The interpreter compiles the script it is given itself, without the import
system, so in branch mode (and on 3.11 with the line-probes core) a script
run that way would be measured the slow way (see ``docs/branches.md``).
``mpcov run --branch script.py`` (and ``mpcov run script.py`` on 3.11)
therefore starts ``python -c <RUNNER> script.py ARGS``: the runner sets up
``sys.argv``, ``sys.path[0]`` and the ``__main__`` module as the interpreter
would, compiles the script with its probes, and runs it.

What differs from ``python script.py``: an uncaught exception's traceback is
printed without the runner's frames, by ``sys.excepthook``, then the process
exits with status 1 (as the interpreter does); ``sys.orig_argv`` shows the
runner; ``traceback.print_stack()`` shows two frames more.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from types import CodeType

#: What ``python -c`` runs; it binds no name in ``__main__``.
RUNNER = "__import__('mpcov.runscript').runscript.main()"


def launch_command(argv: Sequence[str], *, module: bool, env: Mapping[str, str]) -> list[str]:
    """The command that runs `argv` (``[-m] target args...``) under measurement.

    Scripts go through the runner when the run compiles probes (branch
    mode, or the probes core of 3.11); everything
    else runs as ``python [-m] ...``.
    """
    plain = [sys.executable, *(["-m"] if module else []), *argv]
    if module or not _probes_needed(env):
        return plain
    return [sys.executable, "-c", RUNNER, *argv]


def _probes_needed(env: Mapping[str, str]) -> bool:
    from mpcov.manifest import ENV_VAR, ManifestError, read_manifest

    path = env.get(ENV_VAR)
    if not path:
        return False
    try:
        manifest = read_manifest(path)
    except ManifestError:
        return False
    if manifest.get("branch"):
        return True
    from mpcov.cores import choose_core

    return choose_core(env.get("MPCOV_CORE") or manifest.get("core"), False)[0] == "probes"


def main() -> None:
    """Run ``sys.argv[1]`` as the main script with ``sys.argv[2:]`` as its arguments."""
    if len(sys.argv) < 2:
        sys.exit("mpcov: no script to run")
    script = sys.argv[1]
    sys.argv[:] = sys.argv[1:]
    if not sys.flags.safe_path:
        sys.path[0] = os.path.dirname(os.path.realpath(script))
    try:
        with open(script, "rb") as f:
            source = f.read()
    except OSError as exc:
        # The interpreter's own message, and its exit status.
        print(
            f"{sys.executable}: can't open file {script!r}: [Errno {exc.errno}] {exc.strerror}",
            file=sys.stderr,
        )
        sys.exit(2)
    import importlib.machinery

    # Like the interpreter (3.9+), the script's file name is absolute.
    path = os.path.abspath(script)
    namespace = sys.modules["__main__"].__dict__
    namespace["__file__"] = path
    namespace["__cached__"] = None
    namespace["__loader__"] = importlib.machinery.SourceFileLoader("__main__", path)
    code = _probed(path) or compile(source, path, "exec", dont_inherit=True)
    _run(code, namespace)


def _probed(path: str) -> CodeType | None:
    """`path` compiled with probes by this process's core, if it measures it."""
    from mpcov import bootstrap

    recorder = bootstrap.recorder
    probes = getattr(getattr(recorder, "core", None), "probes", None)
    if probes is None:
        return None
    code: CodeType | None = probes.probed_code(path)
    return code


def _run(code: CodeType, namespace: dict[str, object]) -> None:
    """Run `code`; report an uncaught exception as the interpreter would."""
    try:
        exec(code, namespace)
    except SystemExit:
        raise
    except BaseException as exc:
        tb = exc.__traceback__
        # Leave out this frame: the program's own frames start below it.
        if tb is not None:
            tb = tb.tb_next
        exc.__traceback__ = tb
        # What the interpreter sets for an uncaught exception.
        sys.last_exc = exc
        sys.last_type, sys.last_value, sys.last_traceback = type(exc), exc, tb
        sys.excepthook(type(exc), exc, tb)
        if isinstance(exc, KeyboardInterrupt):
            _die_of_sigint()
        sys.exit(1)


def _die_of_sigint() -> None:
    """End as the interpreter does after an uncaught KeyboardInterrupt: clean
    up (atexit handlers, mpcov's own save among them), then die of SIGINT."""
    import atexit
    import signal

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
