"""The ``mpcov`` command line as users rely on it, through real processes.

Each test writes a small project into a temporary directory, runs mpcov there
as a user would (``python -m mpcov ...``) and checks exact outputs, exit
statuses and line sets. Programs run under ``mpcov run`` are compared with the
same programs run by plain ``python``: mpcov must not change what they do.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

import mpcov as mpcov_package

from .helpers import (
    Result,
    executed,
    json_report,
    marked_lines,
    mpcov,
    run,
    write,
)

REPO = Path(__file__).resolve().parents[2]


def python(*args: str, cwd: Path, **kwargs: object) -> Result:
    """Plain ``python ARGS`` in `cwd`, for comparison with ``mpcov run``."""
    return run([sys.executable, *args], cwd, **kwargs)  # type: ignore[arg-type]


def ok(res: Result) -> Result:
    """Assert that a command succeeded without a word on stderr."""
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    return res


def report_names(cwd: Path, *extra: str) -> set[str]:
    """Names of the files in the JSON report."""
    return set(json_report(cwd, *extra))


# -- mpcov run: the program behaves exactly as under plain python -----------

SHOW_ENV = """\
import os, sys
print("argv", sys.argv)
print("name", __name__)
print("file", __file__)
print("path0", sys.path[0])
print("cwd", os.getcwd())
print("spec", __spec__.name if __spec__ else None)
data = sys.stdin.read()
print("stdin", repr(data))
print("to stderr", file=sys.stderr)
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 0)
"""


@pytest.mark.parametrize("script", ["prog.py", "tools/prog.py"])
def test_run_script_sees_what_plain_python_gives(tmp_path: Path, script: str) -> None:
    write(tmp_path, {script: SHOW_ENV})
    args = [script, "7", "--flag", "-m", "x y"]
    plain = python(*args, cwd=tmp_path, input="line 1\nline 2\n")
    measured = mpcov("run", *args, cwd=tmp_path, input="line 1\nline 2\n")
    assert plain.returncode == 7
    assert (measured.returncode, measured.stdout, measured.stderr) == (
        plain.returncode,
        plain.stdout,
        plain.stderr,
    )
    assert f"argv ['{script}', '7', '--flag', '-m', 'x y']\n" in plain.stdout
    assert "name __main__\n" in plain.stdout
    assert f"file {tmp_path / script}\n" in plain.stdout
    assert f"path0 {(tmp_path / script).parent}\n" in plain.stdout
    assert "stdin 'line 1\\nline 2\\n'\n" in plain.stdout
    assert plain.stderr == "to stderr\n"
    assert executed(tmp_path, script) == set(range(1, 12))


def test_run_module_sees_what_plain_python_m_gives(tmp_path: Path) -> None:
    write(tmp_path, {"pkg/__init__.py": "", "pkg/mod.py": SHOW_ENV})
    args = ["pkg.mod", "3", "--opt=1"]
    plain = python("-m", *args, cwd=tmp_path, input="abc")
    measured = mpcov("run", "-m", *args, cwd=tmp_path, input="abc")
    assert plain.returncode == 3
    assert (measured.returncode, measured.stdout, measured.stderr) == (
        plain.returncode,
        plain.stdout,
        plain.stderr,
    )
    mod = tmp_path / "pkg" / "mod.py"
    assert f"argv ['{mod}', '3', '--opt=1']\n" in plain.stdout
    assert "spec pkg.mod\n" in plain.stdout
    assert "name __main__\n" in plain.stdout
    assert executed(tmp_path, "pkg/mod.py") == set(range(1, 12))


def test_run_module_package_main(tmp_path: Path) -> None:
    write(tmp_path, {"app/__init__.py": "", "app/__main__.py": SHOW_ENV})
    plain = python("-m", "app", cwd=tmp_path, input="")
    measured = mpcov("run", "-m", "app", cwd=tmp_path, input="")
    assert (measured.returncode, measured.stdout, measured.stderr) == (
        plain.returncode,
        plain.stdout,
        plain.stderr,
    )
    assert "spec app.__main__\n" in plain.stdout


@pytest.mark.parametrize(
    ("body", "status", "stderr"),
    [
        ("import sys\nsys.exit(3)\n", 3, ""),
        ("import sys\nsys.exit('fatal: no good')\n", 1, "fatal: no good\n"),
        ("raise SystemExit(0)\n", 0, ""),
        ("import os\nos._exit(5)\n", 5, ""),
    ],
    ids=["exit-3", "exit-msg", "exit-0", "os-exit"],
)
def test_run_exit_status_is_the_programs(
    tmp_path: Path, body: str, status: int, stderr: str
) -> None:
    write(tmp_path, {"prog.py": "print('before')\n" + body})
    res = mpcov("run", "prog.py", cwd=tmp_path)
    assert (res.returncode, res.stdout, res.stderr) == (status, "before\n", stderr)
    assert executed(tmp_path, "prog.py") == set(range(1, body.count("\n") + 2))


def test_run_records_the_programs_exit_status_in_the_process_tree(tmp_path: Path) -> None:
    """A process ending normally cannot see its own status: `mpcov run` records it."""
    write(tmp_path, {"prog.py": "import sys\nsys.exit(3)\n"})
    assert mpcov("run", "prog.py", cwd=tmp_path).returncode == 3
    tree = ok(mpcov("report", "--processes", cwd=tmp_path)).stdout
    assert "exit(3)" in tree


def test_run_keyboard_interrupt_ends_like_plain_python(tmp_path: Path) -> None:
    write(tmp_path, {"prog.py": "print('x', flush=True)\nraise KeyboardInterrupt\n"})
    plain = python("prog.py", cwd=tmp_path)
    measured = mpcov("run", "prog.py", cwd=tmp_path)
    assert plain.returncode == -signal.SIGINT
    assert (measured.returncode, measured.stdout, measured.stderr) == (
        plain.returncode, plain.stdout, plain.stderr
    )
    assert executed(tmp_path, "prog.py") == {1, 2}


def test_run_uncaught_exception_gives_normal_traceback(tmp_path: Path) -> None:
    write(tmp_path, {"prog.py": """\
        def fail():
            raise ValueError("bad value")

        fail()
        """})
    plain = python("prog.py", cwd=tmp_path)
    measured = mpcov("run", "prog.py", cwd=tmp_path)
    assert plain.returncode == 1
    assert plain.stderr.startswith("Traceback (most recent call last):\n")
    assert plain.stderr.endswith("ValueError: bad value\n")
    assert (measured.returncode, measured.stdout, measured.stderr) == (1, "", plain.stderr)
    assert executed(tmp_path, "prog.py") == {1, 2, 4}


def test_run_program_killed_by_sigterm_kills_mpcov_the_same_way(tmp_path: Path) -> None:
    write(tmp_path, {"prog.py": """\
        import os, signal
        print("alive", flush=True)
        os.kill(os.getpid(), signal.SIGTERM)
        print("never")
        """})
    res = mpcov("run", "prog.py", cwd=tmp_path)
    assert res.returncode == -signal.SIGTERM
    assert res.stdout == "alive\n"
    assert executed(tmp_path, "prog.py") == {1, 2, 3}


def test_sigterm_to_mpcov_run_reaches_the_program(tmp_path: Path) -> None:
    # "ready" and the sleep share a line: the signal may arrive before the
    # sleep starts, and the line has run either way.
    write(tmp_path, {"prog.py": """\
        import signal, sys, time
        def handler(signum, frame):
            print("got", signum, flush=True)
            sys.exit(9)
        signal.signal(signal.SIGTERM, handler)
        print("ready", flush=True); time.sleep(60)
        """})
    proc = subprocess.Popen(
        [sys.executable, "-m", "mpcov", "run", "prog.py"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
    assert (proc.returncode, out, err) == (9, f"got {int(signal.SIGTERM)}\n", "")
    assert executed(tmp_path, "prog.py") == {1, 2, 3, 4, 5, 6}


def test_run_missing_file_is_one_line_error(tmp_path: Path) -> None:
    res = mpcov("run", "missing.py", cwd=tmp_path)
    assert (res.returncode, res.stdout, res.stderr) == (
        1, "", "mpcov: No file to run: 'missing.py'\n"
    )
    assert not (tmp_path / ".mpcov").exists()


def test_run_missing_module_is_pythons_error(tmp_path: Path) -> None:
    plain = python("-m", "no_such_module", cwd=tmp_path)
    measured = mpcov("run", "-m", "no_such_module", cwd=tmp_path)
    assert (measured.returncode, measured.stderr) == (plain.returncode, plain.stderr)
    assert plain.returncode == 1


# -- version, help, usage -----------------------------------------------------


def test_version(tmp_path: Path) -> None:
    expected = f"mpcov {mpcov_package.__version__}\n"
    assert ok(mpcov("--version", cwd=tmp_path)).stdout == expected
    assert ok(python("-m", "mpcov", "--version", cwd=tmp_path)).stdout == expected


def test_console_script_entry_point(tmp_path: Path) -> None:
    """The ``mpcov`` script pip makes calls the entry point named in pyproject.toml."""
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    module, func = scripts["mpcov"].split(":")
    code = f"import sys; from {module} import {func}; sys.exit({func}())"
    res = run([sys.executable, "-c", code, "--version"], tmp_path)
    assert ok(res).stdout == f"mpcov {mpcov_package.__version__}\n"
    installed = Path(sys.executable).with_name("mpcov")
    if installed.exists():  # an environment with mpcov pip-installed (CI)
        res = run([str(installed), "--version"], tmp_path)
        assert ok(res).stdout == f"mpcov {mpcov_package.__version__}\n"


def test_help(tmp_path: Path) -> None:
    for args in (("--help",), ()):
        out = ok(mpcov(*args, cwd=tmp_path)).stdout
        assert out.startswith("usage: mpcov ")
        for command in ("run", "combine", "report", "json", "erase", "debug"):
            assert f"\n    {command} " in out
    out = ok(mpcov("run", "--help", cwd=tmp_path)).stdout
    assert out.startswith("usage: mpcov run ")
    for option in ("--source", "--include", "--omit", "--branch", "--rcfile", "-m, --module"):
        assert option in out
    out = ok(mpcov("report", "--help", cwd=tmp_path)).stdout
    for option in ("--show-missing", "--skip-covered", "--fail-under", "--format"):
        assert option in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bogus"], "mpcov: argument COMMAND: invalid choice: 'bogus'"),
        (["report", "--no-such-option"], "mpcov: unrecognized arguments: --no-such-option"),
        (["report", "--precision", "many"], "mpcov report: argument --precision: invalid int"),
        (["report", "--format", "html"], "mpcov report: argument --format: invalid choice"),
    ],
)
def test_usage_error_is_status_2(tmp_path: Path, args: list[str], message: str) -> None:
    res = mpcov(*args, cwd=tmp_path)
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr.startswith(message)
    assert res.stderr.count("\n") == 1


# -- mpcov report ---------------------------------------------------------------

REPORT_PROJECT = {
    "main.py": """\
        import pkg.my_mod
        import pkg.full

        pkg.my_mod.f(1)
        if pkg.full.g():
            print("never")
            print("never")
        """,
    "pkg/__init__.py": "",
    "pkg/full.py": """\
        def g():
            a = 1
            b = 2
            return 0
        """,
    "pkg/my_mod.py": """\
        def f(x):
            if x:
                return 1
            else:
                return 2


        def h():
            # comment
            a = 1
            if a:  # pragma: no cover
                b = 2
                c = 3
            return a
        """,
    "pkg/zero_cov.py": """\
        a = 1
        b = 2
        c = 3
        """,
    ".coveragerc": """\
        [run]
        source = .
        """,
}


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project measured once, for the report tests (which only read it)."""
    root = tmp_path_factory.mktemp("reported")
    write(root, REPORT_PROJECT)
    ok(mpcov("run", "main.py", cwd=root))
    return root


def report(root: Path, *args: str, status: int = 0) -> str:
    res = mpcov("report", *args, cwd=root)
    assert res.returncode == status, res.stderr
    return res.stdout


def table(text: str) -> str:
    import textwrap

    return textwrap.dedent(text).lstrip("\n")


def test_report_table_with_missing(reported: Path) -> None:
    assert report(reported, "-m") == table("""
        Name              Stmts   Miss  Cover   Missing
        -----------------------------------------------
        main.py               6      2    67%   6-7
        pkg/__init__.py       0      0   100%
        pkg/full.py           4      0   100%
        pkg/my_mod.py         7      3    57%   5, 10-14
        pkg/zero_cov.py       3      3     0%   1-3
        -----------------------------------------------
        TOTAL                20      8    60%
        """)


def test_report_plain_table(reported: Path) -> None:
    assert report(reported) == table("""
        Name              Stmts   Miss  Cover
        -------------------------------------
        main.py               6      2    67%
        pkg/__init__.py       0      0   100%
        pkg/full.py           4      0   100%
        pkg/my_mod.py         7      3    57%
        pkg/zero_cov.py       3      3     0%
        -------------------------------------
        TOTAL                20      8    60%
        """)


def test_report_skip_covered_and_skip_empty(reported: Path) -> None:
    assert report(reported, "--skip-covered") == table("""
        Name              Stmts   Miss  Cover
        -------------------------------------
        main.py               6      2    67%
        pkg/my_mod.py         7      3    57%
        pkg/zero_cov.py       3      3     0%
        -------------------------------------
        TOTAL                20      8    60%

        2 files skipped due to complete coverage.
        """)
    assert report(reported, "--skip-empty") == table("""
        Name              Stmts   Miss  Cover
        -------------------------------------
        main.py               6      2    67%
        pkg/full.py           4      0   100%
        pkg/my_mod.py         7      3    57%
        pkg/zero_cov.py       3      3     0%
        -------------------------------------
        TOTAL                20      8    60%

        1 empty file skipped.
        """)


def test_report_sort(reported: Path) -> None:
    assert report(reported, "--sort=-cover") == table("""
        Name              Stmts   Miss  Cover
        -------------------------------------
        pkg/full.py           4      0   100%
        pkg/__init__.py       0      0   100%
        main.py               6      2    67%
        pkg/my_mod.py         7      3    57%
        pkg/zero_cov.py       3      3     0%
        -------------------------------------
        TOTAL                20      8    60%
        """)
    lines = report(reported, "--sort=stmts").splitlines()
    assert [line.split()[0] for line in lines[2:7]] == [
        "pkg/__init__.py", "pkg/zero_cov.py", "pkg/full.py", "main.py", "pkg/my_mod.py",
    ]
    res = mpcov("report", "--sort=colour", cwd=reported)
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1 and "colour" in res.stderr


def test_report_precision(reported: Path) -> None:
    assert report(reported, "--precision=2") == table("""
        Name              Stmts   Miss   Cover
        --------------------------------------
        main.py               6      2  66.67%
        pkg/__init__.py       0      0 100.00%
        pkg/full.py           4      0 100.00%
        pkg/my_mod.py         7      3  57.14%
        pkg/zero_cov.py       3      3   0.00%
        --------------------------------------
        TOTAL                20      8  60.00%
        """)


def test_report_formats(reported: Path) -> None:
    assert report(reported, "--format=markdown", "-m") == table("""
        | Name                |    Stmts |     Miss |   Cover |   Missing |
        |-------------------- | -------: | -------: | ------: | --------: |
        | main.py             |        6 |        2 |     67% |       6-7 |
        | pkg/\\_\\_init\\_\\_.py |        0 |        0 |    100% |           |
        | pkg/full.py         |        4 |        0 |    100% |           |
        | pkg/my\\_mod.py      |        7 |        3 |     57% |  5, 10-14 |
        | pkg/zero\\_cov.py    |        3 |        3 |      0% |       1-3 |
        | **TOTAL**           |   **20** |    **8** | **60%** |           |
        """)
    assert report(reported, "--format=total") == "60\n"
    assert report(reported, "--format=total", "--precision=1") == "60.0\n"


def test_report_fail_under(reported: Path) -> None:
    res = mpcov("report", "--format=total", "--fail-under=61", cwd=reported)
    assert (res.returncode, res.stdout, res.stderr) == (
        2, "60\n", "total of 60 is less than fail-under=61\n"
    )
    res = mpcov("report", "--format=total", "--fail-under=60", cwd=reported)
    assert (res.returncode, res.stderr) == (0, "")
    res = mpcov("report", "--format=total", "--fail-under=60.01", cwd=reported)
    assert (res.returncode, res.stderr) == (2, "total of 60.00 is less than fail-under=60.01\n")


def test_report_include_omit_at_report_time(reported: Path) -> None:
    assert report(reported, "--include=pkg/*") == table("""
        Name              Stmts   Miss  Cover
        -------------------------------------
        pkg/__init__.py       0      0   100%
        pkg/full.py           4      0   100%
        pkg/my_mod.py         7      3    57%
        pkg/zero_cov.py       3      3     0%
        -------------------------------------
        TOTAL                14      6    57%
        """)
    assert report(reported, "--omit=pkg/*,*/zero*") == table("""
        Name      Stmts   Miss  Cover
        -----------------------------
        main.py       6      2    67%
        -----------------------------
        TOTAL         6      2    67%
        """)


def test_report_nothing_left_is_no_data(reported: Path) -> None:
    res = mpcov("report", "--include=nothing/*", cwd=reported)
    assert (res.returncode, res.stdout, res.stderr) == (1, "", "mpcov: No data to report.\n")


def test_report_without_data_file(tmp_path: Path) -> None:
    res = mpcov("report", cwd=tmp_path)
    assert (res.returncode, res.stdout) == (1, "")
    assert res.stderr.startswith("mpcov: No data to report")
    assert str(tmp_path / ".mpcov") in res.stderr
    assert "mpcov run" in res.stderr
    assert res.stderr.count("\n") == 1


def test_json_report_shape(reported: Path) -> None:
    res = ok(mpcov("json", "-o", "-", cwd=reported))
    doc = json.loads(res.stdout)
    assert not res.stdout.endswith("\n")
    assert list(doc) == ["meta", "files", "totals"]
    assert list(doc["meta"]) == [
        "format", "version", "timestamp", "branch_coverage", "show_contexts", "tool",
    ]
    assert (doc["meta"]["format"], doc["meta"]["tool"]) == (2, "mpcov")
    assert doc["meta"]["version"] == mpcov_package.__version__
    assert list(doc["files"]) == [
        "main.py", "pkg/__init__.py", "pkg/full.py", "pkg/my_mod.py", "pkg/zero_cov.py",
    ]
    summary_keys = [
        "covered_lines", "num_statements", "percent_covered", "percent_covered_display",
        "missing_lines", "excluded_lines", "percent_statements_covered",
        "percent_statements_covered_display",
    ]
    my_mod = doc["files"]["pkg/my_mod.py"]
    assert list(my_mod) == ["executed_lines", "summary", "missing_lines", "excluded_lines"]
    assert list(my_mod["summary"]) == summary_keys
    assert my_mod["executed_lines"] == [1, 2, 3, 8]
    assert my_mod["missing_lines"] == [5, 10, 14]
    assert my_mod["excluded_lines"] == [11, 12, 13]
    assert my_mod["summary"]["percent_covered_display"] == "57"
    assert list(doc["totals"]) == summary_keys
    assert (doc["totals"]["covered_lines"], doc["totals"]["num_statements"]) == (12, 20)

    # The default output file, and the message saying so.
    res = ok(mpcov("json", cwd=reported))
    assert res.stdout == "Wrote JSON report to coverage.json\n"
    assert json.loads((reported / "coverage.json").read_text())["files"] == doc["files"]


# -- what is measured -------------------------------------------------------------

SOURCE_PROJECT = {
    "main.py": """\
        import sys
        sys.path.insert(0, "lib")
        import json
        import pkg.used
        import other
        pkg.used.f()
        other.g()
        """,
    "pkg/__init__.py": "",
    "pkg/used.py": "def f():\n    return 1\n",
    "pkg/unused.py": "X = 1\nY = 2\n",
    "pkg/sub/__init__.py": "",
    "pkg/sub/deep.py": "def z():\n    return 0\n",
    "other.py": "def g():\n    return 2\n",
}


def test_source_directory(tmp_path: Path) -> None:
    write(tmp_path, SOURCE_PROJECT)
    ok(mpcov("run", "--source", "pkg", "main.py", cwd=tmp_path))
    files = json_report(tmp_path)
    # (pkg/unused.py is missing too: see test_source_option_reports_unexecuted_files.)
    assert set(files) >= {"pkg/__init__.py", "pkg/used.py"}
    assert all(name.startswith("pkg/") for name in files)
    assert files["pkg/used.py"]["executed_lines"] == [1, 2]


def test_source_package_in_config_reports_unexecuted_files(tmp_path: Path) -> None:
    write(tmp_path, {**SOURCE_PROJECT, ".coveragerc": "[run]\nsource = pkg\n"})
    ok(mpcov("run", "main.py", cwd=tmp_path))
    files = json_report(tmp_path)
    assert set(files) == {
        "pkg/__init__.py", "pkg/used.py", "pkg/unused.py", "pkg/sub/__init__.py",
        "pkg/sub/deep.py",
    }
    assert files["pkg/unused.py"]["missing_lines"] == [1, 2]
    assert files["pkg/unused.py"]["executed_lines"] == []
    assert files["pkg/sub/deep.py"]["missing_lines"] == [1, 2]


def test_source_option_reports_unexecuted_files(tmp_path: Path) -> None:
    write(tmp_path, SOURCE_PROJECT)
    ok(mpcov("run", "--source", "pkg", "main.py", cwd=tmp_path))
    files = json_report(tmp_path)
    assert files["pkg/unused.py"]["missing_lines"] == [1, 2]


def test_source_package_name_found_on_pythonpath(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.py": "import mylib.a\nmylib.a.f()\n",
        "src/mylib/__init__.py": "",
        "src/mylib/a.py": "def f():\n    return 1\n",
        "src/mylib/b.py": "B = 1\n",
        ".coveragerc": "[run]\nsource = mylib\n",
    })
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "src")}
    ok(mpcov("run", "main.py", cwd=tmp_path, env=env))
    res = mpcov("json", "-o", "-", cwd=tmp_path, env=env)
    files = json.loads(res.stdout)["files"]
    assert set(files) == {"src/mylib/__init__.py", "src/mylib/a.py", "src/mylib/b.py"}
    assert files["src/mylib/b.py"]["missing_lines"] == [1]


def test_source_package_not_importable_at_start(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.py": "import sys\nsys.path.insert(0, 'src')\nimport mylib.a\nmylib.a.f()\n",
        "src/mylib/__init__.py": "",
        "src/mylib/a.py": "def f():\n    return 1\n",
    })
    res = mpcov("run", "--source", "mylib", "main.py", cwd=tmp_path)
    assert res.returncode == 0
    assert report_names(tmp_path) == {"src/mylib/__init__.py", "src/mylib/a.py"}


def test_include_and_omit_at_run_time(tmp_path: Path) -> None:
    write(tmp_path, SOURCE_PROJECT)
    ok(mpcov("run", "--include", "pkg/*,main.py", "--omit", "*/__init__.py", "main.py",
             cwd=tmp_path))
    assert report_names(tmp_path) == {"main.py", "pkg/used.py"}
    ok(mpcov("run", "--omit", "pkg/*", "main.py", cwd=tmp_path))
    assert report_names(tmp_path) == {"main.py", "other.py"}


def test_third_party_code_not_measured_by_default(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.py": """\
            import sys
            sys.path[:0] = ["venv/lib/python3/site-packages", "vendored/site-packages",
                            "env2/lib"]
            import in_venv, in_site, in_env2, mine
            in_venv.f(); in_site.f(); in_env2.f(); mine.f()
            """,
        "venv/pyvenv.cfg": "home = /usr/bin\n",
        "venv/lib/python3/site-packages/in_venv.py": "def f():\n    return 'venv'\n",
        "vendored/site-packages/in_site.py": "def f():\n    return 'site'\n",
        "env2/pyvenv.cfg": "home = /usr/bin\n",
        "env2/lib/in_env2.py": "def f():\n    return 'env2'\n",
        "mine.py": "def f():\n    return 'mine'\n",
    })
    ok(mpcov("run", "main.py", cwd=tmp_path))
    assert report_names(tmp_path) == {"main.py", "mine.py"}


def test_excluded_lines(tmp_path: Path) -> None:
    write(tmp_path, {
        "prog.py": """\
            import sys

            def debug_only():  # pragma: no cover
                print("debugging")
                return 1

            def run(x):
                if x > 0:
                    return x
                raise NotImplementedError  # also

            def never():
                return 2  # miss

            if sys.platform == "nowhere":  # PRAGMA: NO COVER
                print("odd")

            run(1)
            """,
        "pyproject.toml": """\
            [tool.coverage.report]
            exclude_also = ["raise NotImplementedError"]
            """,
    })
    ok(mpcov("run", "prog.py", cwd=tmp_path))
    entry = json_report(tmp_path)["prog.py"]
    assert entry["excluded_lines"] == [3, 4, 5, 10, 15, 16]
    assert entry["missing_lines"] == sorted(marked_lines(tmp_path / "prog.py", "miss"))
    assert entry["executed_lines"] == [1, 7, 8, 9, 12, 18]


# -- configuration ---------------------------------------------------------------

CONFIG_PROJECT = {
    "main.py": "import pkg.mod\npkg.mod.f(1)\n",
    "pkg/__init__.py": "",
    "pkg/mod.py": "def f(x):\n    if x:\n        return 1\n    return 2\n",
}


def measured_with(root: Path, files: dict[str, str], *run_args: str) -> dict[str, Any]:
    """Write the project plus `files`, run it, and return the JSON report document."""
    write(root, {**CONFIG_PROJECT, **files})
    ok(mpcov("run", *run_args, "main.py", cwd=root))
    res = ok(mpcov("json", "-o", "-", cwd=root))
    doc: dict[str, Any] = json.loads(res.stdout)
    return doc


@pytest.mark.parametrize(
    ("name", "text", "section"),
    [
        ("pyproject.toml", '[tool.mpcov.run]\nsource = ["pkg"]\nbranch = true\n',
         "tool.mpcov.run"),
        ("pyproject.toml", '[tool.coverage.run]\nsource = ["pkg"]\nbranch = true\n',
         "tool.coverage.run"),
        (".coveragerc", "[run]\nsource = pkg\nbranch = True\n", "run"),
        ("setup.cfg", "[coverage:run]\nsource = pkg\nbranch = yes\n", "coverage:run"),
        ("tox.ini", "[coverage:run]\nsource =\n    pkg\nbranch = on\n", "coverage:run"),
    ],
    ids=["tool.mpcov", "tool.coverage", "coveragerc", "setup.cfg", "tox.ini"],
)
def test_config_files(tmp_path: Path, name: str, text: str, section: str) -> None:
    write(tmp_path, {**CONFIG_PROJECT, name: text})
    out = ok(mpcov("debug", "config", cwd=tmp_path)).stdout
    origin = f"[{tmp_path / name} [{section}]]"
    assert f"config file: {tmp_path / name}\n" in out
    assert f"branch: True  {origin}\n" in out
    assert f"source: ('{tmp_path / 'pkg'}',)  {origin}\n" in out
    # What the settings do.
    res = mpcov("run", "main.py", cwd=tmp_path)
    assert res.returncode == 0
    assert "Traceback" not in res.stderr
    assert report_names(tmp_path) == {"pkg/__init__.py", "pkg/mod.py"}


def test_tool_mpcov_wins_over_tool_coverage(tmp_path: Path) -> None:
    doc = measured_with(tmp_path, {
        "pyproject.toml": '[tool.mpcov.run]\nsource = ["pkg"]\n'
                          '[tool.coverage.run]\nomit = ["*/mod.py"]\n'
                          '[tool.coverage.report]\nprecision = 2\n',
    })
    assert set(doc["files"]) == {"pkg/__init__.py", "pkg/mod.py"}
    assert report(tmp_path, "--format=total") == "75\n"


def test_rcfile_option(tmp_path: Path) -> None:
    write(tmp_path, {"ci/cov.ini": "[run]\nomit = main.py\n[report]\nprecision = 1\n"})
    write(tmp_path, {".coveragerc": "[run]\nsource = pkg\n"})  # not read
    doc = measured_with(tmp_path, {}, "--rcfile", "ci/cov.ini")
    assert set(doc["files"]) == {"pkg/__init__.py", "pkg/mod.py"}
    assert report(tmp_path, "--rcfile=ci/cov.ini", "--format=total") == "75.0\n"
    res = mpcov("report", "--rcfile", "nope.ini", cwd=tmp_path)
    assert res.returncode == 1
    assert res.stderr == f"mpcov: Couldn't read config file {tmp_path / 'nope.ini'}: no such file\n"


def test_command_line_overrides_config(tmp_path: Path) -> None:
    files = {".coveragerc": "[run]\nsource = pkg\n[report]\nprecision = 3\nshow_missing = true\n"}
    doc = measured_with(tmp_path, files, "--source", ".")
    assert set(doc["files"]) == {"main.py", "pkg/__init__.py", "pkg/mod.py"}
    assert report(tmp_path, "--format=total") == "83.333\n"
    assert report(tmp_path, "--format=total", "--precision=1") == "83.3\n"
    assert report(tmp_path, "--include=*/mod.py") == table("""
        Name         Stmts   Miss    Cover   Missing
        --------------------------------------------
        pkg/mod.py       4      1  75.000%   4
        --------------------------------------------
        TOTAL            4      1  75.000%
        """)
    out = ok(mpcov("debug", "config", "--data-file", "other.db", cwd=tmp_path)).stdout
    assert f"precision: 3  [{tmp_path / '.coveragerc'} [report]]\n" in out
    assert f"data_file: '{tmp_path / 'other.db'}'  [command line]\n" in out


def test_unknown_key_warns(tmp_path: Path) -> None:
    write(tmp_path, {**CONFIG_PROJECT, ".coveragerc": "[run]\nbrnach = true\n"})
    res = mpcov("run", "main.py", cwd=tmp_path)
    assert res.returncode == 0
    assert res.stderr == (
        f"mpcov: Unrecognized option '[run] brnach' in {tmp_path / '.coveragerc'} (ignored); "
        "did you mean 'branch'?\n"
    )
    assert report_names(tmp_path) == {"main.py", "pkg/__init__.py", "pkg/mod.py"}


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (".coveragerc", "[run]\nbranch = maybe\n",
         "{path} [run] branch: expected a boolean (true/false, yes/no, on/off, 1/0), "
         "got 'maybe'"),
        ("pyproject.toml", "[tool.mpcov.report]\nfail_under = 120\n",
         "{path} [tool.mpcov.report] fail_under: expected a number from 0 to 100, got 120"),
        ("setup.cfg", "[coverage:report]\nprecision = -1\n",
         "{path} [coverage:report] precision: expected a whole number, 0 or more, got '-1'"),
    ],
    ids=["ini-bool", "toml-percent", "setup.cfg-int"],
)
def test_bad_config_value_is_one_line_error(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    write(tmp_path, {**CONFIG_PROJECT, name: text})
    res = mpcov("run", "main.py", cwd=tmp_path)
    expected = "mpcov: " + message.format(path=tmp_path / name) + "\n"
    assert (res.returncode, res.stdout, res.stderr) == (1, "", expected)
    assert not (tmp_path / ".mpcov").exists()


def test_unparsable_config_file(tmp_path: Path) -> None:
    write(tmp_path, {**CONFIG_PROJECT, "pyproject.toml": "[tool.mpcov.run\nsource = 1\n"})
    res = mpcov("report", cwd=tmp_path)
    assert res.returncode == 1
    assert res.stderr.startswith(
        f"mpcov: Couldn't parse config file {tmp_path / 'pyproject.toml'}"
    )
    assert res.stderr.count("\n") == 1


# -- errors users hit ----------------------------------------------------------------


def test_corrupt_data_file(tmp_path: Path) -> None:
    write(tmp_path, CONFIG_PROJECT)
    (tmp_path / ".mpcov").write_bytes(os.urandom(4096))
    for command in ("report", "json"):
        res = mpcov(command, cwd=tmp_path)
        assert (res.returncode, res.stdout) == (1, "")
        assert res.stderr == (
            f"mpcov: Couldn't use data file {tmp_path / '.mpcov'}: file is not a database "
            "(it is damaged or not an mpcov data file; 'mpcov erase' removes it)\n"
        )
    ok(mpcov("erase", cwd=tmp_path))
    assert not (tmp_path / ".mpcov").exists()


def test_missing_source_at_report_time(tmp_path: Path) -> None:
    write(tmp_path, CONFIG_PROJECT)
    ok(mpcov("run", "main.py", cwd=tmp_path))
    (tmp_path / "pkg" / "mod.py").unlink()
    path = tmp_path / "pkg" / "mod.py"
    res = mpcov("report", cwd=tmp_path)
    assert (res.returncode, res.stdout) == (1, "")
    assert res.stderr == f"mpcov: No source for measured file '{path}': No such file or directory\n"
    res = mpcov("report", "-i", cwd=tmp_path)
    assert res.returncode == 0
    assert res.stderr == (
        f"mpcov: Couldn't report on '{path}': No source for measured file '{path}': "
        "No such file or directory\n"
    )
    assert [line.split()[0] for line in res.stdout.splitlines()] == [
        "Name", "-" * 37, "main.py", "pkg/__init__.py", "-" * 37, "TOTAL",
    ]


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("# -*- coding: no-such-codec -*-\nx = 1\n", "unknown encoding: no-such-codec"),
        ("def broken(:\n    pass\n", "invalid syntax (line 1)"),
    ],
    ids=["bad-encoding", "syntax-error"],
)
def test_unreadable_source_at_report_time(tmp_path: Path, source: str, reason: str) -> None:
    write(tmp_path, CONFIG_PROJECT)
    ok(mpcov("run", "main.py", cwd=tmp_path))
    path = tmp_path / "pkg" / "mod.py"
    path.write_text(source)
    message = f"Couldn't parse '{path}' as Python: {reason}"
    res = mpcov("report", cwd=tmp_path)
    assert (res.returncode, res.stdout, res.stderr) == (1, "", f"mpcov: {message}\n")
    res = mpcov("json", "-o", "out.json", "--ignore-errors", cwd=tmp_path)
    assert res.returncode == 0
    assert res.stderr == f"mpcov: Couldn't report on '{path}': {message}\n"
    assert set(json.loads((tmp_path / "out.json").read_text())["files"]) == {
        "main.py", "pkg/__init__.py",
    }


STATUS_PROGRAM = {"prog.py": "print('ran')\nraise SystemExit(4)\n"}

def test_unwritable_data_directory(tmp_path: Path) -> None:
    write(tmp_path, STATUS_PROGRAM)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("chmod does not stop this user (root) from writing")
        res = mpcov("run", "--data-file", "locked/.mpcov", "prog.py", cwd=tmp_path)
    finally:
        locked.chmod(0o700)
    assert (res.returncode, res.stdout) == (4, "ran\n")
    assert res.stderr.startswith("mpcov: ")
    assert str(locked) in res.stderr
    assert res.stderr.count("\n") == 1


def test_uncreatable_data_directory(tmp_path: Path) -> None:
    """Root can write anywhere, but not below a regular file."""
    write(tmp_path, {**STATUS_PROGRAM, "blocker": "not a directory\n"})
    res = mpcov("run", "--data-file", "blocker/.mpcov", "prog.py", cwd=tmp_path)
    assert (res.returncode, res.stdout) == (4, "ran\n")
    assert res.stderr.startswith("mpcov: ")
    assert "blocker" in res.stderr
    assert res.stderr.count("\n") == 1


# -- erase, combine, debug --------------------------------------------------------------


def fragments(root: Path) -> list[str]:
    return sorted(p.name for p in (root / ".mpcov.d").glob("*.frag"))


def test_erase_removes_data_and_fragments(tmp_path: Path) -> None:
    write(tmp_path, CONFIG_PROJECT)
    ok(mpcov("run", "main.py", cwd=tmp_path))
    ok(mpcov("run", "--append", "--no-combine", "main.py", cwd=tmp_path))
    assert (tmp_path / ".mpcov").exists()
    assert len(fragments(tmp_path)) == 1
    assert ok(mpcov("erase", cwd=tmp_path)).stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["main.py", "pkg"]
    ok(mpcov("erase", cwd=tmp_path))  # nothing to erase is fine


def test_combine_twice_is_harmless(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.py": """\
            import subprocess, sys
            subprocess.run([sys.executable, "child.py"], check=True)
            print("parent done")
            """,
        "child.py": "print('child')\n",
    })
    res = ok(mpcov("run", "--no-combine", "main.py", cwd=tmp_path))
    assert res.stdout == "child\nparent done\n"
    assert len(fragments(tmp_path)) == 2
    assert ok(mpcov("combine", cwd=tmp_path)).stdout == "Combined 2 process fragments\n"
    assert fragments(tmp_path) == []
    first = json_report(tmp_path)
    assert ok(mpcov("combine", cwd=tmp_path)).stdout == "Combined 0 process fragments\n"
    assert ok(mpcov("combine", "-q", cwd=tmp_path)).stdout == ""
    assert json_report(tmp_path) == first
    assert first["child.py"]["executed_lines"] == [1]
    assert first["main.py"]["executed_lines"] == [1, 2, 3]


def test_append_adds_to_previous_run(tmp_path: Path) -> None:
    write(tmp_path, {"prog.py": """\
        import sys
        if sys.argv[1] == "a":
            print("a")  # a
        else:
            print("b")  # b
        """})
    ok(mpcov("run", "prog.py", "a", cwd=tmp_path))
    ok(mpcov("run", "--append", "prog.py", "b", cwd=tmp_path))
    assert executed(tmp_path, "prog.py") == {1, 2, 3, 5}
    ok(mpcov("run", "prog.py", "b", cwd=tmp_path))  # without --append: starts afresh
    assert executed(tmp_path, "prog.py") == {1, 2, 5}


def test_debug(tmp_path: Path) -> None:
    write(tmp_path, {**CONFIG_PROJECT, ".coveragerc": "[run]\nomit = */mod.py\n"})
    ok(mpcov("run", "main.py", cwd=tmp_path))
    out = ok(mpcov("debug", cwd=tmp_path)).stdout
    sections = [line.split()[1] for line in out.splitlines() if line.startswith("-- ")]
    assert sections == ["sys", "config", "data"]
    assert f"mpcov: {mpcov_package.__version__} at " in out
    assert f"config file: {tmp_path / '.coveragerc'}\n" in out
    assert f"omit: ('*/mod.py',)  [{tmp_path / '.coveragerc'} [run]]\n" in out
    core_line = next(line for line in out.splitlines() if line.strip().startswith("core:"))
    expected_core = "monitoring" if sys.version_info >= (3, 12) else "probes"
    assert core_line.split(":", 1)[1].strip().startswith(f"{expected_core}: ")
    assert len(core_line.split(":", 2)[2].strip()) > 5  # says why
    size = (tmp_path / ".mpcov").stat().st_size
    assert f"data file: {tmp_path / '.mpcov'} ({size} bytes)\n" in out
    assert f"fragments: 0 in {tmp_path / '.mpcov.d'}\n" in out
    out = ok(mpcov("debug", "data", cwd=tmp_path)).stdout
    assert out.startswith("-- data ")
    assert "config file" not in out


def test_data_file_is_fixed_when_the_program_changes_directory(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.py": """\
            import os, subprocess, sys
            os.chdir("sub")
            subprocess.run([sys.executable, "-c", "import helper; helper.f()"], check=True)
            """,
        "sub/helper.py": "import os\ndef f():\n    print(os.path.basename(os.getcwd()))\n",
    })
    res = ok(mpcov("run", "main.py", cwd=tmp_path))
    assert res.stdout == "sub\n"
    assert report_names(tmp_path) == {"main.py", "sub/helper.py"}
    assert not (tmp_path / "sub" / ".mpcov").exists()
    assert not (tmp_path / "sub" / ".mpcov.d").exists()


def test_file_names_are_normalized(tmp_path: Path) -> None:
    write(tmp_path, {
        "main.py": """\
            import os, subprocess, sys
            import child
            os.chdir("sub")
            subprocess.run([sys.executable, "../child.py"], check=True)
            """,
        "child.py": "import os\nprint(os.path.basename(os.getcwd()))\n",
        "sub/keep.txt": "",
    })
    res = ok(mpcov("run", "main.py", cwd=tmp_path))
    assert res.stdout == "tmp\nsub\n".replace("tmp", tmp_path.name)
    assert report_names(tmp_path) == {"main.py", "child.py"}


def test_run_timing_is_reasonable(tmp_path: Path) -> None:
    """A trivial program under mpcov finishes promptly (no waiting for children)."""
    write(tmp_path, {"prog.py": "print('hi')\n"})
    start = time.monotonic()
    ok(mpcov("run", "prog.py", cwd=tmp_path))
    assert time.monotonic() - start < 10
