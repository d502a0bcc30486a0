"""multiprocessing under every start method, ``os.fork`` and threads.

Lines that must have run in a particular process carry an extra marker before
``# hit`` (``# child``, ``# worker``...): ``mpcov json --show-contexts`` says
which processes ran them, so each test can check that a child's lines are in
the child's own record and not in its parent's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .helpers import write
from .test_processes import assert_lines, measure, pids_of, plain, processes

METHODS = ["fork", "spawn", "forkserver"]

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="uses fork and /proc")


def assert_all_ended(cwd: Path) -> None:
    """Every measured process wrote its end record (none was lost or killed)."""
    assert [(p["argv"], p["end_how"]) for p in processes(cwd) if p["end_how"] == "unknown"] == []


@pytest.mark.parametrize("method", METHODS)
def test_process(tmp_path: Path, method: str) -> None:
    write(tmp_path, {
        "main.py": """\
            import multiprocessing  # hit
            import sys  # hit


            def work(queue, n):  # hit
                total = sum(range(n))  # child  # hit
                queue.put(total)  # child  # hit
                sys.exit(3)  # child  # hit


            def never():  # hit
                return 0  # miss


            if __name__ == "__main__":  # hit
                ctx = multiprocessing.get_context(sys.argv[1])  # parent  # hit
                queue = ctx.Queue()  # parent  # hit
                proc = ctx.Process(target=work, args=(queue, 10))  # parent  # hit
                proc.start()  # hit
                print("total", queue.get(timeout=60))  # hit
                proc.join(60)  # hit
                print("exitcode", proc.exitcode)  # hit
        """,
    })
    res = measure(tmp_path, "main.py", method)
    assert (res.stdout, res.stderr) == ("total 45\nexitcode 3\n", "")
    assert_lines(tmp_path, "main.py")
    parent, child = pids_of(tmp_path, "main.py", "parent"), pids_of(tmp_path, "main.py", "child")
    assert len(parent) == len(child) == 1
    assert parent != child
    assert_all_ended(tmp_path)


@pytest.mark.parametrize("method", METHODS)
def test_pool_map(tmp_path: Path, method: str) -> None:
    write(tmp_path, {
        "main.py": """\
            import multiprocessing  # hit
            import sys  # hit


            def square(x):  # hit
                return x * x  # worker  # hit


            if __name__ == "__main__":  # hit
                ctx = multiprocessing.get_context(sys.argv[1])  # parent  # hit
                pool = ctx.Pool(2)  # hit
                print(pool.map(square, range(10), chunksize=1))  # hit
                pool.close()  # hit
                pool.join()  # hit
        """,
    })
    res = measure(tmp_path, "main.py", method)
    assert (res.stdout, res.stderr) == (f"{[x * x for x in range(10)]}\n", "")
    assert_lines(tmp_path, "main.py")
    parent, workers = pids_of(tmp_path, "main.py", "parent"), pids_of(tmp_path, "main.py", "worker")
    assert 1 <= len(workers) <= 2
    assert not parent & workers
    assert_all_ended(tmp_path)


@pytest.mark.parametrize("method", METHODS)
def test_process_pool_executor(tmp_path: Path, method: str) -> None:
    write(tmp_path, {
        "main.py": """\
            import multiprocessing  # hit
            import sys  # hit
            from concurrent.futures import ProcessPoolExecutor  # hit


            def cube(x):  # hit
                return x ** 3  # worker  # hit


            if __name__ == "__main__":  # hit
                ctx = multiprocessing.get_context(sys.argv[1])  # parent  # hit
                with ProcessPoolExecutor(2, mp_context=ctx) as pool:  # hit
                    print(list(pool.map(cube, range(6))))  # hit
                print("shut down")  # hit
        """,
    })
    res = measure(tmp_path, "main.py", method)
    assert (res.stdout, res.stderr) == ("[0, 1, 8, 27, 64, 125]\nshut down\n", "")
    assert_lines(tmp_path, "main.py")
    parent, workers = pids_of(tmp_path, "main.py", "parent"), pids_of(tmp_path, "main.py", "worker")
    assert 1 <= len(workers) <= 2
    assert not parent & workers
    assert_all_ended(tmp_path)


@pytest.mark.parametrize("method", METHODS)
def test_pool_terminate_with_busy_workers(tmp_path: Path, method: str) -> None:
    write(tmp_path, {
        "main.py": """\
            import multiprocessing  # hit
            import sys  # hit
            import time  # hit

            state = {}  # hit


            def init(queue):  # hit
                state["queue"] = queue  # hit


            def busy(i):  # hit
                for n in range(2400):  # worker  # hit
                    time.sleep(0.05)  # worker  # hit
                    if n == 0:  # worker  # hit
                        state["queue"].put(i)  # worker  # hit
                return i  # miss


            if __name__ == "__main__":  # hit
                ctx = multiprocessing.get_context(sys.argv[1])  # hit
                queue = ctx.Queue()  # hit
                pool = ctx.Pool(2, initializer=init, initargs=(queue,))  # hit
                result = pool.map_async(busy, range(2), chunksize=1)  # hit
                print("busy with", sorted(queue.get(timeout=60) for _ in range(2)))  # hit
                pool.terminate()  # hit
                pool.join()  # hit
                print("terminated")  # hit
        """,
    })
    # Each worker takes one task and sleeps in it, so both tasks are running
    # (and both workers busy) once the two numbers have arrived. (Short sleeps:
    # see the SIGNALLER comment in test_processes.py.)
    res = measure(tmp_path, "main.py", method, timeout=60)
    assert (res.stdout, res.stderr) == ("busy with [0, 1]\nterminated\n", "")
    assert_lines(tmp_path, "main.py")
    workers = pids_of(tmp_path, "main.py", "worker")
    assert len(workers) == 2
    endings = [(p["end_how"], p["exit_status"]) for p in processes(tmp_path) if p["pid"] in workers]
    assert endings == [("signal", -15), ("signal", -15)]


@pytest.mark.parametrize("method", METHODS)
def test_nested_subprocess_multiprocessing_subprocess(tmp_path: Path, method: str) -> None:
    write(tmp_path, {
        "main.py": """\
            import subprocess  # hit
            import sys  # hit

            done = subprocess.run([sys.executable, "middle.py", sys.argv[1]])  # hit
            print("middle status", done.returncode)  # hit
        """,
        "middle.py": """\
            import multiprocessing  # hit
            import subprocess  # hit
            import sys  # hit


            def run_leaf(tag):  # hit
                done = subprocess.run([sys.executable, "leaf.py", tag])  # runner  # hit
                sys.exit(done.returncode)  # runner  # hit


            if __name__ == "__main__":  # hit
                ctx = multiprocessing.get_context(sys.argv[1])  # middle  # hit
                proc = ctx.Process(target=run_leaf, args=(sys.argv[1],))  # hit
                proc.start()  # hit
                proc.join(60)  # hit
                print("runner exitcode", proc.exitcode)  # hit
                sys.exit(proc.exitcode + 1)  # hit
        """,
        "leaf.py": """\
            import sys  # hit

            print("leaf", sys.argv[1])  # leaf  # hit
            sys.exit(20)  # hit
        """,
    })
    res = measure(tmp_path, "main.py", method)
    assert (res.stdout, res.stderr) == (
        f"leaf {method}\nrunner exitcode 20\nmiddle status 21\n", ""
    )
    assert_lines(tmp_path, "main.py", "middle.py", "leaf.py")
    [middle] = pids_of(tmp_path, "middle.py", "middle")
    [runner] = pids_of(tmp_path, "middle.py", "runner")
    [leaf] = pids_of(tmp_path, "leaf.py", "leaf")
    assert len({middle, runner, leaf}) == 3
    by_pid = {p["pid"]: p for p in processes(tmp_path)}
    assert by_pid[leaf]["ppid"] == runner
    if method != "forkserver":  # else the fork server is the runner's parent
        assert by_pid[runner]["ppid"] == middle
    assert_all_ended(tmp_path)


# -- os.fork -------------------------------------------------------------------


def test_fork_child_has_its_own_record(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.py": """\
            import os  # hit


            def split():  # hit
                print("forking")  # parent  # hit
                pid = os.fork()  # parent  # hit
                if pid == 0:  # both  # hit
                    side = "child"  # child  # hit
                    print(side, "running", flush=True)  # child  # hit
                    os._exit(0)  # child  # hit
                    print("after _exit")  # miss
                _, status = os.waitpid(pid, 0)  # parent  # hit
                print("child exited", os.waitstatus_to_exitcode(status))  # parent  # hit
                return pid  # parent  # hit


            child_pid = split()  # parent  # hit
            with open("child.pid", "w") as f:  # parent  # hit
                f.write(str(child_pid))  # parent  # hit
        """,
    })
    res = measure(tmp_path)
    assert (res.stdout, res.stderr) == ("forking\nchild running\nchild exited 0\n", "")
    assert_lines(tmp_path, "main.py")
    child_pid = int((tmp_path / "child.pid").read_text())
    [parent_pid] = pids_of(tmp_path, "main.py", "parent")
    assert pids_of(tmp_path, "main.py", "child") == {child_pid}
    assert pids_of(tmp_path, "main.py", "both") == {parent_pid, child_pid}
    parent, child = processes(tmp_path)
    assert (parent["pid"], child["pid"]) == (parent_pid, child_pid)
    assert child["parent_fragment"] == parent["fragment"]
    assert (child["end_how"], child["exit_status"]) == ("_exit", 0)
    assert parent["end_how"] == "exit"


def test_fork_does_not_warn_about_threads(tmp_path: Path) -> None:
    # 3.12+ warns when a process with more than one thread forks. mpcov's flush
    # thread is running at the fork below (running new lines starts it), and
    # must be out of the way.
    write(tmp_path, {
        "main.py": """\
            import os  # hit
            import warnings  # hit

            warnings.simplefilter("error", DeprecationWarning)  # hit


            def thread_count():  # hit
                return len(os.listdir("/proc/self/task"))  # hit


            threads = thread_count()  # hit
            pid = os.fork()  # hit
            if pid == 0:  # hit
                os._exit(7)  # hit
            _, status = os.waitpid(pid, 0)  # hit
            print("child exited", os.waitstatus_to_exitcode(status))  # hit
            with open("threads.txt", "w") as f:  # hit
                f.write(str(threads))  # hit
        """,
    })
    res = measure(tmp_path)
    assert (res.stdout, res.stderr) == ("child exited 7\n", "")
    assert_lines(tmp_path, "main.py")
    assert int((tmp_path / "threads.txt").read_text()) >= 2  # the case this test is about
    unmeasured = plain(tmp_path)
    assert (unmeasured.returncode, unmeasured.stdout, unmeasured.stderr) == (0, res.stdout, "")
    assert (tmp_path / "threads.txt").read_text() == "1"


# -- threads -------------------------------------------------------------------


def test_threads(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.py": """\
            import _thread  # hit
            import threading  # hit

            results = []  # hit


            def worker(n):  # hit
                results.append(n * 2)  # hit


            def raw_worker(done):  # hit
                results.append("raw")  # hit
                done.release()  # hit


            threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]  # hit
            for t in threads:  # hit
                t.start()  # hit
            for t in threads:  # hit
                t.join()  # hit
            done = _thread.allocate_lock()  # hit
            done.acquire()  # hit
            _thread.start_new_thread(raw_worker, (done,))  # hit
            print("raw done", done.acquire(timeout=60))  # hit
            print(sorted(results, key=str))  # hit
        """,
    })
    res = measure(tmp_path)
    assert (res.stdout, res.stderr) == ("raw done True\n[0, 2, 4, 6, 'raw']\n", "")
    assert_lines(tmp_path, "main.py")


def test_thread_pool_executor(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.py": """\
            from concurrent.futures import ThreadPoolExecutor  # hit


            def double(x):  # hit
                return 2 * x  # hit


            def unused(x):  # hit
                return x  # miss


            with ThreadPoolExecutor(4) as pool:  # hit
                print(list(pool.map(double, range(10))))  # hit
        """,
    })
    res = measure(tmp_path)
    assert (res.stdout, res.stderr) == (f"{[2 * x for x in range(10)]}\n", "")
    assert_lines(tmp_path, "main.py")


def test_threads_in_spawned_child(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.py": """\
            import multiprocessing  # hit
            import threading  # hit


            def in_thread(results, n):  # hit
                results.append(n * n)  # thread  # hit


            def child_main():  # hit
                results = []  # child  # hit
                args = [(results, n) for n in range(3)]  # hit
                threads = [threading.Thread(target=in_thread, args=a) for a in args]  # hit
                for t in threads:  # hit
                    t.start()  # hit
                for t in threads:  # hit
                    t.join()  # hit
                print("child results", sorted(results))  # hit


            if __name__ == "__main__":  # hit
                proc = multiprocessing.get_context("spawn").Process(target=child_main)  # hit
                proc.start()  # hit
                proc.join(60)  # hit
                print("exitcode", proc.exitcode)  # hit
        """,
    })
    res = measure(tmp_path)
    assert (res.stdout, res.stderr) == ("child results [0, 1, 4]\nexitcode 0\n", "")
    assert_lines(tmp_path, "main.py")
    [child] = pids_of(tmp_path, "main.py", "child")
    assert pids_of(tmp_path, "main.py", "thread") == {child}

