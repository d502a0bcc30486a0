"""Processes started in unusual ways or living unusually long: isolated mode,
detached children that outlive the program, another Python version, many
short children, and what is left running after ``mpcov run`` returns.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from .helpers import json_report, mpcov, write
from .test_processes import assert_lines, measure, processes


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition()` until true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_isolated_mode_child(tmp_path: Path) -> None:
    # -I ignores PYTHON* variables (so the sitecustomize hook on PYTHONPATH
    # too): the .pth file in site-packages starts measurement.
    write(tmp_path, {
        "main.py": """\
            import os  # hit
            import subprocess  # hit
            import sys  # hit

            subprocess.run([sys.executable, "-I", os.path.abspath("child.py")], check=True)  # hit
        """,
        "child.py": """\
            import sys  # hit

            print("isolated", sys.flags.isolated)  # hit
        """,
    })
    res = measure(tmp_path)
    assert (res.stdout, res.stderr) == ("isolated 1\n", "")
    assert_lines(tmp_path, "main.py", "child.py")


def test_detached_child_is_waited_for(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.py": """\
            import subprocess  # hit
            import sys  # hit

            child = subprocess.Popen(  # hit
                [sys.executable, "detached.py"], start_new_session=True,
                stdout=subprocess.PIPE, text=True,
            )
            print("detached child", child.stdout.readline().strip())  # hit
            print("main done")  # hit
        """,
        "detached.py": """\
            import os  # hit
            import sys  # hit
            import time  # hit


            def outlive(parent):  # hit
                for _ in range(3000):  # hit
                    time.sleep(0.02)  # hit
                    if os.getppid() != parent:  # hit
                        return True  # hit
                return False  # miss


            parent = os.getppid()  # hit
            print("started", flush=True)  # hit
            sys.stdout = open(os.devnull, "w")  # hit
            with open("outlived.txt", "w") as f:  # hit
                f.write(str(outlive(parent)))  # hit
        """,
    })
    res = measure(tmp_path)
    assert (res.stdout, res.stderr) == ("detached child started\nmain done\n", "")
    assert (tmp_path / "outlived.txt").read_text() == "True"
    assert_lines(tmp_path, "main.py", "detached.py")


def test_detached_child_combined_later(tmp_path: Path) -> None:
    write(tmp_path, {
        "pyproject.toml": """\
            [tool.mpcov.run]
            wait_for_children = 0.3
        """,
        "main.py": """\
            import subprocess  # hit
            import sys  # hit

            child = subprocess.Popen(  # hit
                [sys.executable, "detached.py"], start_new_session=True,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            )
            print("detached child", child.stdout.readline().strip())  # hit
        """,
        "detached.py": """\
            import os  # hit
            import sys  # hit
            import time  # hit


            def wait_for(name):  # hit
                for _ in range(3000):  # hit
                    time.sleep(0.02)  # hit
                    if os.path.exists(name):  # hit
                        return True  # hit
                return False  # miss


            with open("detached.pid", "w") as f:  # hit
                f.write(str(os.getpid()))  # hit
            print("started", flush=True)  # hit
            sys.stdout = open(os.devnull, "w")  # hit
            went_on = wait_for("go")  # hit
            with open("went-on.txt", "w") as f:  # hit
                f.write(str(went_on))  # hit
        """,
    })
    res = measure(tmp_path)
    assert res.stdout == "detached child started\n"
    assert re.fullmatch(
        r"mpcov: 1 measured process\(es\) still running after 0.3 s; "
        r"run 'mpcov combine' later to add their data\n",
        res.stderr,
    ), res.stderr
    assert sorted(json_report(tmp_path)) == ["main.py"]  # the child's data is not in yet

    # (The child's stdout and stderr do not hold the test's pipes open: it
    # is still waiting for "go" here.)
    assert not (tmp_path / "went-on.txt").exists()
    pid = int((tmp_path / "detached.pid").read_text())
    (tmp_path / "go").touch()

    def gone() -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_until(gone, 60, "the detached child to exit")
    assert (tmp_path / "went-on.txt").read_text() == "True"
    combined = mpcov("combine", cwd=tmp_path)
    assert (combined.returncode, combined.stdout, combined.stderr) == (
        0, "Combined 1 process fragment\n", ""
    )
    assert_lines(tmp_path, "main.py", "detached.py")


def other_python() -> str | None:
    """A pyenv CPython 3.11-3.14 whose minor version differs from this one."""
    pyenv = shutil.which("pyenv")
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    if pyenv:
        found = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False)
        root = found.stdout.strip() or root
    for path in sorted(glob.glob(os.path.join(root, "versions", "3.1*", "bin", "python3.1*"))):
        match = re.fullmatch(r"python3\.(\d+)", os.path.basename(path))
        if match and 11 <= int(match.group(1)) <= 14 and int(match.group(1)) != sys.version_info[1]:
            return path
    return None


def test_child_of_another_python_version(tmp_path: Path) -> None:
    other = other_python()
    if other is None:
        pytest.skip(
            f"no pyenv CPython 3.11-3.14 other than {sys.version_info[0]}.{sys.version_info[1]}"
        )
    write(tmp_path, {
        "main.py": """\
            import subprocess  # hit
            import sys  # hit

            subprocess.run([sys.argv[1], "child.py"], check=True)  # hit
        """,
        "child.py": """\
            import sys  # hit


            def version():  # hit
                return "%d.%d" % sys.version_info[:2]  # hit


            print("child runs", version())  # hit
        """,
    })
    res = measure(tmp_path, "main.py", other)
    minor = re.search(r"python(3\.\d+)$", other).group(1)  # type: ignore[union-attr]
    assert (res.stdout, res.stderr) == (f"child runs {minor}\n", "")
    assert_lines(tmp_path, "main.py", "child.py")
    versions = sorted(p["version"].rpartition(".")[0] for p in processes(tmp_path))
    assert versions == sorted([minor, f"{sys.version_info[0]}.{sys.version_info[1]}"])


def test_many_short_children(tmp_path: Path) -> None:
    count = 60
    functions = "".join(
        f"def f{i}():  # hit\n    return {i} * 3  # hit\n\n\n" for i in range(count)
    )
    (tmp_path / "kid.py").write_text(
        "import sys  # hit\n\n\n"
        + functions
        + "def unused():  # hit\n    return -1  # miss\n\n\n"
        + 'print(globals()[f"f{sys.argv[1]}"]())  # hit\n'
    )
    write(tmp_path, {
        "main.py": """\
            import subprocess  # hit
            import sys  # hit
            from concurrent.futures import ThreadPoolExecutor  # hit


            def run_kid(i):  # hit
                kid = [sys.executable, "kid.py", str(i)]  # hit
                return subprocess.run(kid, capture_output=True, text=True).stdout.strip()  # hit


            with ThreadPoolExecutor(8) as pool:  # hit
                outputs = list(pool.map(run_kid, range(int(sys.argv[1]))))  # hit
            print(outputs == [str(3 * i) for i in range(int(sys.argv[1]))])  # hit
        """,
    })
    res = measure(tmp_path, "main.py", str(count))
    assert (res.stdout, res.stderr) == ("True\n", "")
    assert_lines(tmp_path, "main.py", "kid.py")
    procs = processes(tmp_path)
    assert len(procs) == count + 1
    assert [p for p in procs if p["end_how"] != "exit"] == []


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_nothing_left_running_after_mpcov_run(tmp_path: Path, method: str) -> None:
    # Every process started under this test's mpcov run inherits the token.
    token = uuid.uuid4().hex
    write(tmp_path, {
        "main.py": """\
            import multiprocessing  # hit
            import subprocess  # hit
            import sys  # hit


            def work(x):  # hit
                return x + 1  # hit


            if __name__ == "__main__":  # hit
                ctx = multiprocessing.get_context(sys.argv[1])  # hit
                pool = ctx.Pool(2)  # hit
                print(pool.map(work, range(4)))  # hit
                pool.close()  # hit
                pool.join()  # hit
                subprocess.run([sys.executable, "-c", "print('sub')"], check=True)  # hit
        """,
    })
    res = measure(tmp_path, "main.py", method, env={"MPCOV_TEST_TOKEN": token})
    assert (res.stdout, res.stderr) == ("[1, 2, 3, 4]\nsub\n", "")
    assert_lines(tmp_path, "main.py")

    def with_token() -> list[str]:
        found = []
        for proc in psutil.process_iter():
            try:
                if proc.status() != psutil.STATUS_ZOMBIE and (
                    proc.environ().get("MPCOV_TEST_TOKEN") == token
                ):
                    found.append(" ".join(proc.cmdline()))
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return found

    # A process that has written its end record may take a moment to be gone.
    deadline = time.monotonic() + 5
    while with_token() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert with_token() == []
