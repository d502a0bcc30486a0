"""Every way a measured Python process can start and end: subprocesses, exec,
spawn functions, exits, uncaught exceptions and signals.

Each test writes a small program whose statements all carry a trailing
``# hit`` or ``# miss`` comment, runs it under ``mpcov run`` and checks that
the combined data says exactly that, file by file, and that the program's
output and exit status are what plain ``python`` would give. Children report
back through pipes and exit statuses, never through timing, except where the
timing is the feature (the periodic flush before a SIGKILL).

The multiprocessing, fork and thread cases are in ``test_proc_multiprocessing.py``;
processes that outlive their parent, other interpreters and many children in
``test_proc_lifetimes.py``. Both use the helpers defined here.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mpcov.store import Store

from .helpers import Result, json_report, marked_lines, mpcov, run, write

# -- helpers shared by the test_proc_* modules ----------------------------------


def measure(
    cwd: Path,
    main: str = "main.py",
    *args: str,
    status: int = 0,
    timeout: float = 90,
    env: dict[str, str] | None = None,
) -> Result:
    """``mpcov run MAIN ARGS`` in `cwd`; asserts the exit status it returns.

    Output is unbuffered so that what parent and children print interleaves
    in the order it happens (children inherit the setting unless their
    environment is scrubbed).
    """
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    res = mpcov("run", main, *args, cwd=cwd, env=full_env, timeout=timeout)
    assert res.returncode == status, (
        f"mpcov run exited {res.returncode}, expected {status}\n"
        f"--- stdout\n{res.stdout}--- stderr\n{res.stderr}"
    )
    return res


def plain(cwd: Path, main: str = "main.py", *args: str, timeout: float = 90) -> Result:
    """The same program under plain ``python``, for comparison."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return run([sys.executable, main, *args], cwd, env=env, timeout=timeout)


def assert_lines(cwd: Path, *names: str, report: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report holds exactly the files `names`, and each one executed exactly
    its ``# hit`` lines and missed exactly its ``# miss`` lines."""
    if report is None:
        report = dict(json_report(cwd))
    assert sorted(report) == sorted(names)
    for name in names:
        entry = report[name]
        got = {
            "file": name,
            "executed": sorted(entry["executed_lines"]),
            "missing": sorted(entry["missing_lines"]),
        }
        want = {
            "file": name,
            "executed": sorted(marked_lines(cwd / name, "hit")),
            "missing": sorted(marked_lines(cwd / name, "miss")),
        }
        assert got == want
    return report


_LABEL = re.compile(r"pid (\d+):")


def line_pids(cwd: Path, name: str) -> dict[int, set[int]]:
    """For each executed line of `name`: the pids of the processes that ran it
    (from ``mpcov json --show-contexts``)."""
    entry: dict[str, Any] = dict(json_report(cwd, "--show-contexts")[name])
    contexts: dict[str, list[str]] = entry["contexts"]
    out: dict[int, set[int]] = {}
    for line, labels in contexts.items():
        pids = set()
        for label in labels:
            match = _LABEL.match(label)
            assert match, f"unexpected context label {label!r}"
            pids.add(int(match.group(1)))
        out[int(line)] = pids
    return out


def pids_of(cwd: Path, name: str, marker: str) -> set[int]:
    """The pids that ran the lines of `name` tagged with `marker`: an extra
    comment before ``# hit``, as in ``x = 1  # child  # hit``."""
    text = (cwd / name).read_text().splitlines()
    wanted = {i for i, line in enumerate(text, 1) if f"# {marker}  #" in line}
    assert wanted, f"no line of {name} is marked {marker!r}"
    by_line = line_pids(cwd, name)
    return set().union(*(by_line.get(line, set()) for line in wanted))


def processes(cwd: Path) -> list[dict[str, Any]]:
    """The process records of the combined data file, in start order."""
    with Store(str(cwd / ".mpcov")) as store:
        return store.processes()


# -- subprocess ---------------------------------------------------------------

CHILD_ARGS = """\
    import sys  # hit


    def shout(words):  # hit
        return " ".join(w.upper() for w in words)  # hit


    def whisper(words):  # hit
        return " ".join(w.lower() for w in words)  # miss


    print(shout(sys.argv[1:]))  # hit
    sys.exit(4)  # hit
    print("unreachable")  # miss
"""


def test_subprocess_script(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.py": """\
            import subprocess  # hit
            import sys  # hit

            done = subprocess.run([sys.executable, "child.py", "a", "b"])  # hit
            print("child status", done.returncode)  # hit
        """,
        "child.py": CHILD_ARGS,
    })
    res = measure(tmp_path)
    assert (res.stdout, res.stderr) == ("A B\nchild status 4\n", "")
    assert_lines(tmp_path, "main.py", "child.py")


def test_subprocess_python_dash_m(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.py": """\
            import subprocess  # hit
            import sys  # hit

            subprocess.run([sys.executable, "-m", "pkg.tool", "x"], check=True)  # hit
        """,
        "pkg/__init__.py": """\
            VERSION = "1.0"  # hit
        """,
        "pkg/tool.py": """\
            import sys  # hit

            from pkg import VERSION  # hit


            def main(args):  # hit
                print("tool", VERSION, __name__, args)  # hit


            if __name__ == "__main__":  # hit
                main(sys.argv[1:])  # hit
            else:
                print("imported")  # miss
        """,
    })
    res = measure(tmp_path)
    assert (res.stdout, res.stderr) == ("tool 1.0 __main__ ['x']\n", "")
    assert_lines(tmp_path, "main.py", "pkg/__init__.py", "pkg/tool.py")


def test_subprocess_shell(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.py": """\
            import shlex  # hit
            import subprocess  # hit
            import sys  # hit

            python = shlex.quote(sys.executable)  # hit
            command = f"{python} child.py 'two words' | tr A-Z a-z; exit 9"  # hit
            done = subprocess.run(command, shell=True)  # hit
            print("shell status", done.returncode)  # hit
        """,
        "child.py": CHILD_ARGS,
    })
    res = measure(tmp_path)
    assert (res.stdout, res.stderr) == ("two words\nshell status 9\n", "")
    assert_lines(tmp_path, "main.py", "child.py")


@pytest.mark.parametrize(
    "env_expr",
    [
        'dict(os.environ, GREETING="hello")',
        '{"GREETING": "hello"}',  # scrubbed: no MPCOV_RUN, no PYTHONPATH, no PATH
        '{b"GREETING": b"hello"}',
    ],
    ids=["added", "scrubbed", "scrubbed-bytes"],
)
def test_subprocess_env(tmp_path: Path, env_expr: str) -> None:
    write(tmp_path, {
        "main.py": """\
            import os  # hit
            import subprocess  # hit
            import sys  # hit

            env = ENV  # hit
            done = subprocess.run([sys.executable, "child.py"], env=env)  # hit
            print("child status", done.returncode)  # hit
        """.replace("ENV", env_expr),
        "child.py": """\
            import os  # hit

            greeting = os.environ.get("GREETING")  # hit
            if greeting:  # hit
                print(greeting, "from child")  # hit
            else:
                print("no greeting")  # miss
        """,
    })
    res = measure(tmp_path)
    assert (res.stdout, res.stderr) == ("hello from child\nchild status 0\n", "")
    assert_lines(tmp_path, "main.py", "child.py")


def test_subprocess_cwd_removed_afterwards(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.py": """\
            import os  # hit
            import shutil  # hit
            import subprocess  # hit
            import sys  # hit
            import tempfile  # hit

            here = os.path.dirname(os.path.abspath(__file__))  # hit
            scratch = tempfile.mkdtemp(prefix="mpcov-cwd-")  # hit
            child = os.path.join(here, "child.py")  # hit
            subprocess.run([sys.executable, child], cwd=scratch, check=True)  # hit
            shutil.rmtree(scratch)  # hit
            print("scratch removed", not os.path.exists(scratch))  # hit
        """,
        "child.py": """\
            import os  # hit

            open("made-here.txt", "w").close()  # hit
            print("child sees", sorted(os.listdir(".")))  # hit
        """,
    })
    res = measure(tmp_path)
    assert (res.stdout, res.stderr) == ("child sees ['made-here.txt']\nscratch removed True\n", "")
    assert_lines(tmp_path, "main.py", "child.py")


def test_os_system(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.py": """\
            import os  # hit
            import shlex  # hit
            import sys  # hit

            status = os.system(f"{shlex.quote(sys.executable)} child.py via system")  # hit
            print("system status", os.waitstatus_to_exitcode(status))  # hit
        """,
        "child.py": CHILD_ARGS,
    })
    res = measure(tmp_path)
    assert (res.stdout, res.stderr) == ("VIA SYSTEM\nsystem status 4\n", "")
    assert_lines(tmp_path, "main.py", "child.py")


EXEC_CALLS = {
    "execv": 'os.execv(sys.executable, [sys.executable, "after.py", "execv"])',
    "execve": 'os.execve(sys.executable, [sys.executable, "after.py", "execve"], {"X": "1"})',
}


@pytest.mark.parametrize("how", sorted(EXEC_CALLS))
def test_exec_keeps_lines_before_and_measures_new_program(tmp_path: Path, how: str) -> None:
    write(tmp_path, {
        "main.py": """\
            import os  # hit
            import sys  # hit


            def prepare():  # hit
                print("before exec", flush=True)  # hit


            prepare()  # hit
            CALL  # hit
            print("still the old program")  # miss
        """.replace("CALL", EXEC_CALLS[how]),
        "after.py": """\
            import os  # hit
            import sys  # hit

            print("after", sys.argv[1], os.environ.get("X"))  # hit
            sys.exit(6)  # hit
        """,
    })
    res = measure(tmp_path, status=6)
    x_value = "1" if how == "execve" else "None"
    assert (res.stdout, res.stderr) == (f"before exec\nafter {how} {x_value}\n", "")
    assert_lines(tmp_path, "main.py", "after.py")
    procs = processes(tmp_path)
    assert [p["end_how"] for p in procs] == ["exec", "exit"]
    assert procs[0]["pid"] == procs[1]["pid"]  # one process, two programs, two records


SPAWN_CALLS = {
    "posix_spawn": "os.waitpid(os.posix_spawn(sys.executable, ARGV, ENV), 0)[1]",
    "posix_spawnp": "os.waitpid(os.posix_spawnp(sys.executable, ARGV, ENV), 0)[1]",
    "spawnve": "os.spawnve(os.P_WAIT, sys.executable, ARGV, ENV) << 8",
}


@pytest.mark.parametrize("how", sorted(SPAWN_CALLS))
def test_spawn_functions_with_scrubbed_env(tmp_path: Path, how: str) -> None:
    write(tmp_path, {
        "main.py": """\
            import os  # hit
            import sys  # hit

            ARGV = [sys.executable, "child.py", "spawned"]  # hit
            ENV = {"GREETING": "hi"}  # hit
            status = os.waitstatus_to_exitcode(CALL)  # hit
            print("spawned status", status)  # hit
        """.replace("CALL", SPAWN_CALLS[how]),
        "child.py": CHILD_ARGS,
    })
    res = measure(tmp_path)
    assert (res.stdout, res.stderr) == ("SPAWNED\nspawned status 4\n", "")
    assert_lines(tmp_path, "main.py", "child.py")


def test_posix_spawn_signature_unchanged(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.py": """\
            import os  # hit
            import sys  # hit

            argv = [sys.executable, "-c", "pass"]  # hit
            for spawn in (os.posix_spawn, os.posix_spawnp):  # hit
                try:  # hit
                    pid = spawn(sys.executable, argv, env={})  # hit
                    print("accepted", os.waitpid(pid, 0)[1])  # miss
                except TypeError as exc:  # hit
                    print(type(exc).__name__)  # hit
        """,
    })
    unmeasured = plain(tmp_path)
    assert (unmeasured.returncode, unmeasured.stdout) == (0, "TypeError\nTypeError\n")
    res = measure(tmp_path)
    assert (res.stdout, res.stderr) == (unmeasured.stdout, unmeasured.stderr)
    assert_lines(tmp_path, "main.py")


# -- how a program ends ---------------------------------------------------------


def test_uncaught_exception_in_child(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.py": """\
            import subprocess  # hit
            import sys  # hit

            done = subprocess.run([sys.executable, "child.py"])  # hit
            print("child status", done.returncode)  # hit
        """,
        "child.py": """\
            def parse(text):  # hit
                value = int(text)  # hit
                return value  # miss


            print("parsing", flush=True)  # hit
            parse("not a number")  # hit
            print("parsed")  # miss
        """,
    })
    res = measure(tmp_path)
    assert res.stdout == "parsing\nchild status 1\n"
    assert res.stderr.startswith("Traceback (most recent call last):\n")
    assert res.stderr.endswith(
        "\nValueError: invalid literal for int() with base 10: 'not a number'\n"
    )
    unmeasured = plain(tmp_path)
    assert (unmeasured.returncode, unmeasured.stdout) == (0, res.stdout)
    assert unmeasured.stderr == res.stderr
    assert_lines(tmp_path, "main.py", "child.py")


@pytest.mark.parametrize(
    ("arg", "status", "stderr"), [("7", 7, ""), ("0", 0, ""), ("bye", 1, "bye\n")]
)
def test_mpcov_run_returns_program_exit_status(
    tmp_path: Path, arg: str, status: int, stderr: str
) -> None:
    write(tmp_path, {
        "main.py": """\
            import sys  # hit


            def finish(arg):  # hit
                print("exiting with", arg)  # hit
                sys.exit(int(arg) if arg.isdigit() else arg)  # hit
                print("unreachable")  # miss


            finish(sys.argv[1])  # hit
            print("unreachable too")  # miss
        """,
    })
    res = measure(tmp_path, "main.py", arg, status=status)
    assert (res.stdout, res.stderr) == (f"exiting with {arg}\n", stderr)
    assert_lines(tmp_path, "main.py")


def test_mpcov_run_dies_of_the_signal_that_killed_the_program(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.py": """\
            import os  # hit
            import signal  # hit

            print("about to die")  # hit
            os.kill(os.getpid(), signal.SIGTERM)  # hit
            print("survived")  # miss
        """,
    })
    res = measure(tmp_path, status=-signal.SIGTERM)
    unmeasured = plain(tmp_path)
    assert (unmeasured.returncode, unmeasured.stdout) == (-signal.SIGTERM, "about to die\n")
    assert (res.stdout, res.stderr) == (unmeasured.stdout, unmeasured.stderr)
    assert_lines(tmp_path, "main.py")
    [proc] = processes(tmp_path)
    assert (proc["end_how"], proc["exit_status"]) == ("signal", -signal.SIGTERM)


# -- signals ------------------------------------------------------------------

# Starts child.py, waits for its first line, sends it the signal named in
# argv[1], then reports what the child printed afterwards and how it ended.
# Children that are to be killed say "ready" only after every line marked
# hit has run, and then wait in short sleeps rather than in one blocking call:
# a Python-level handler (the program's, or mpcov's) runs only between
# bytecodes, and a signal that lands just before a blocking call would wait
# for that call to end (see test_sigterm_from_a_thread_while_main_thread_blocks).
SIGNALLER = """\
    import signal  # hit
    import subprocess  # hit
    import sys  # hit

    signum = getattr(signal, sys.argv[1])  # hit
    child = subprocess.Popen(  # hit
        [sys.executable, "child.py", sys.argv[1]],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    print("child:", child.stdout.readline().strip())  # hit
    child.send_signal(signum)  # hit
    out, _ = child.communicate("go on\\n", timeout=60)  # hit
    print("then:", out.strip())  # hit
    print("child status", child.returncode)  # hit
"""


@pytest.fixture
def default_hangup() -> Iterator[None]:
    """SIGHUP at its default in this process, so the programs measured start
    with it too: ``nohup`` (or a CI runner) may start the suite with SIGHUP
    ignored, and an ignored signal is inherited."""
    previous = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGHUP, previous)


def test_an_inherited_ignored_sighup_stays_ignored(tmp_path: Path) -> None:
    """A program started with SIGHUP ignored (under ``nohup``) is not killed by
    it under mpcov either: mpcov installs its save-and-die handler only where
    the default disposition is."""
    write(tmp_path, {"prog.py": """\
        import os, signal  # hit
        print(signal.getsignal(signal.SIGHUP) == signal.SIG_IGN)  # hit
        os.kill(os.getpid(), signal.SIGHUP)  # hit
        print("still here")  # hit
    """})
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        res = measure(tmp_path, "prog.py")
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert (res.stdout, res.stderr) == ("True\nstill here\n", "")
    assert_lines(tmp_path, "prog.py")


@pytest.mark.usefixtures("default_hangup")
@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_signal_without_handler_kills_child_after_saving_its_lines(
    tmp_path: Path, name: str
) -> None:
    write(tmp_path, {
        "main.py": SIGNALLER,
        "child.py": """\
            import time  # hit


            def serve():  # hit
                for n in range(1200):  # hit
                    time.sleep(0.05)  # hit
                    if n == 0:  # hit
                        print("ready", flush=True)  # hit
                print("not killed")  # miss


            serve()  # hit
            print("finished")  # miss
        """,
    })
    res = measure(tmp_path, "main.py", name)
    signum = getattr(signal, name)
    assert (res.stdout, res.stderr) == (f"child: ready\nthen: \nchild status {-signum}\n", "")
    assert_lines(tmp_path, "main.py", "child.py")
    child = [p for p in processes(tmp_path) if p["argv"][1:2] == ["child.py"]]
    assert [(p["end_how"], p["exit_status"]) for p in child] == [("signal", -signum)]


@pytest.mark.usefixtures("default_hangup")
@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP"])
def test_program_signal_handler_runs_and_its_exit_code_is_kept(
    tmp_path: Path, name: str
) -> None:
    write(tmp_path, {
        "main.py": SIGNALLER,
        "child.py": """\
            import signal  # hit
            import sys  # hit
            import time  # hit


            def on_signal(signum, frame):  # hit
                print("handled", signal.Signals(signum).name, flush=True)  # hit
                sys.exit(3)  # hit


            def other_handler(signum, frame):  # hit
                print("wrong handler")  # miss


            signum = getattr(signal, sys.argv[1])  # hit
            before = signal.getsignal(signum)  # hit
            previous = signal.signal(signum, on_signal)  # hit
            current = signal.getsignal(signum)  # hit
            same = before is previous is signal.SIG_DFL  # hit
            for n in range(1200):  # hit
                time.sleep(0.05)  # hit
                if n == 0:  # hit
                    print("ready", same, current is on_signal, flush=True)  # hit
            print("handler did not exit")  # miss
        """,
    })
    res = measure(tmp_path, "main.py", name)
    assert (res.stdout, res.stderr) == (
        f"child: ready True True\nthen: handled {name}\nchild status 3\n", "",
    )
    assert_lines(tmp_path, "main.py", "child.py")


def test_ignored_signal_stays_ignored(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.py": SIGNALLER,
        "child.py": """\
            import signal  # hit
            import sys  # hit

            signum = getattr(signal, sys.argv[1])  # hit
            previous = signal.signal(signum, signal.SIG_IGN)  # hit
            current = signal.getsignal(signum)  # hit
            print("ready", previous is signal.SIG_DFL, current is signal.SIG_IGN, flush=True)  # hit
            print("read", sys.stdin.readline().strip())  # hit
            sys.exit(5)  # hit
        """,
    })
    # The kernel drops an ignored signal when it is sent, so by the time the
    # parent writes "go on" the child has either ignored it or died of it.
    res = measure(tmp_path, "main.py", "SIGTERM")
    assert (res.stdout, res.stderr) == (
        "child: ready True True\nthen: read go on\nchild status 5\n", ""
    )
    assert_lines(tmp_path, "main.py", "child.py")


def test_getsignal_returns_what_the_program_set(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.py": """\
            import signal  # hit


            def handler(signum, frame):  # hit
                pass  # miss


            for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1):  # hit
                seen = [signal.getsignal(signum)]  # hit
                seen.append(signal.signal(signum, handler))  # hit
                seen.append(signal.getsignal(signum))  # hit
                seen.append(signal.signal(signum, signal.SIG_IGN))  # hit
                seen.append(signal.getsignal(signum))  # hit
                seen.append(signal.signal(signum, signal.SIG_DFL))  # hit
                seen.append(signal.getsignal(signum))  # hit
                names = [getattr(h, "name", None) or h.__name__ for h in seen]  # hit
                print(signal.Signals(signum).name, names)  # hit
        """,
    })
    res = measure(tmp_path)
    unmeasured = plain(tmp_path)
    expected = (
        "['SIG_DFL', 'SIG_DFL', 'handler', 'handler', 'SIG_IGN', 'SIG_IGN', 'SIG_DFL']"
    )
    assert unmeasured.stdout.splitlines()[0] == f"SIGTERM {expected}"
    assert (res.returncode, res.stdout, res.stderr) == (0, unmeasured.stdout, unmeasured.stderr)
    assert_lines(tmp_path, "main.py")


def test_sigkill_keeps_lines_flushed_before_it(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.py": """\
            import subprocess  # hit
            import sys  # hit
            import time  # hit

            child = subprocess.Popen(  # hit
                [sys.executable, "child.py"], stdout=subprocess.PIPE, text=True
            )
            print("child:", child.stdout.readline().strip())  # hit
            time.sleep(2.5)  # hit
            child.kill()  # hit
            print("child status", child.wait(timeout=60))  # hit
        """,
        "child.py": """\
            import time  # hit


            def work(n):  # hit
                total = 0  # hit
                for i in range(n):  # hit
                    total += i  # hit
                return total  # hit


            def never():  # hit
                return 0  # miss


            for n in range(1200):  # hit
                time.sleep(0.05)  # hit
                if n == 0:  # hit
                    print("ready", work(5), flush=True)  # hit
            print("not killed")  # miss
        """,
    })
    res = measure(tmp_path)
    assert (res.stdout, res.stderr) == ("child: ready 10\nchild status -9\n", "")
    assert_lines(tmp_path, "main.py", "child.py")
    child = [p for p in processes(tmp_path) if p["argv"][1:2] == ["child.py"]]
    assert [p["end_how"] for p in child] == ["unknown"]  # no end record: it never got to write one


@pytest.mark.skipif(sys.platform != "linux", reason="uses /proc/<pid>/task/<tid>/wchan")
def test_sigterm_from_a_thread_while_main_thread_blocks(tmp_path: Path) -> None:
    # Without a handler SIGTERM ends the whole process whichever thread takes
    # it; under mpcov the process must end the same way, promptly, even though
    # its main thread is blocked in a system call (mpcov's signal watcher
    # interrupts it so that the flush-then-die handler runs).
    write(tmp_path, {
        "main.py": """\
            import subprocess  # hit
            import sys  # hit
            import time  # hit

            child = subprocess.Popen([sys.executable, "child.py"], stdin=subprocess.PIPE)  # hit
            deadline = time.monotonic() + 5  # hit
            while child.poll() is None and time.monotonic() < deadline:  # hit
                time.sleep(0.02)  # hit
            if child.poll() is None:  # hit
                child.kill()  # miss
                print("still running after 5 s")  # miss
            print("child status", child.wait())  # hit
        """,
        "child.py": """\
            import signal  # hit
            import sys  # hit
            import threading  # hit
            import time  # hit

            main_thread = threading.get_native_id()  # hit


            def main_blocked_in_read():  # hit
                with open(f"/proc/self/task/{main_thread}/wchan") as f:  # hit
                    return "pipe_read" in f.read()  # hit


            def watchdog():  # hit
                for _ in range(3000):  # hit
                    time.sleep(0.01)  # hit
                    if main_blocked_in_read():  # hit
                        break  # hit
                # This thread takes the signal. (Under mpcov the handler runs in
                # the main thread, so this thread may return before the process
                # ends; nothing follows, so there is nothing to race.)
                signal.raise_signal(signal.SIGTERM)  # hit


            threading.Thread(target=watchdog).start()  # hit
            sys.stdin.readline()  # hit
            print("main thread woke up")  # miss
        """,
    })
    unmeasured = plain(tmp_path)
    assert (unmeasured.returncode, unmeasured.stdout, unmeasured.stderr) == (
        0, "child status -15\n", ""
    )
    res = measure(tmp_path)
    assert (res.stdout, res.stderr) == (unmeasured.stdout, "")
    assert_lines(tmp_path, "main.py", "child.py")
