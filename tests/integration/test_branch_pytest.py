"""Branch probes in the test modules pytest compiles itself.

pytest rewrites the asserts of test modules and ``conftest.py`` files with
its own compiler, so mpcov probes them there (``mpcov.pytest_probes``): they
must measure as coverage.py measures them, pytest must behave as it does
without mpcov (assertion messages, its warnings, its cache), and pytest's
cache must never hold probed code.
"""

from __future__ import annotations

import json
import marshal
import re
import sys
from pathlib import Path

import pytest

from .helpers import Result, run, write
from .test_branch_monitoring import clean_env, json_report

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="branch probes are used from Python 3.11"
)

PROBE_BASE = 1 << 29

TESTS = """\
import pytest

PROBE_BASE = 1 << 29


def probed(function):
    return any(line and line >= PROBE_BASE for _, _, line in function.__code__.co_lines())


def helper(n):
    if n > 2:
        return "many"
    return "few"


def test_loop():
    for i in range(3):
        if i > 5:
            break
    assert helper(3) == "many"
    print("probed:", probed(test_loop))


def test_fails():
    x = 1
    if x:
        assert x + 1 == 3, "bad sum"


@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    assert n in (1, 2)
    if n == 5: pass
"""

CONFTEST = """\
def pytest_collection_modifyitems(items):
    if not items:
        print("no tests")
"""


def pytest_run(root: Path, *args: str, measured: bool, pyc: bool = True) -> Result:
    argv = [sys.executable, "-m", *(["mpcov", "run", "--branch", "-m"] if measured else []),
            "pytest", "-q", "-s", "-p", "no:cacheprovider", *args]
    env = clean_env(MPCOV_CACHE_DIR=str(root / "probe-cache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # pytest's own cache is part of what is tested
    if not pyc:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return run(argv, root, env=env, timeout=120)


def without_times(output: str) -> str:
    return re.sub(r" in \d+\.\d+s", " in <time>", output)


def pytest_pycs(root: Path) -> list[Path]:
    return sorted((root / "__pycache__").glob("*-pytest-*.pyc"))


def has_probes(pyc: Path) -> bool:
    code = marshal.loads(pyc.read_bytes()[16:])
    todo, found = [code], False
    while todo:
        one = todo.pop()
        found |= any(line and line >= PROBE_BASE for _, _, line in one.co_lines())
        todo.extend(c for c in one.co_consts if type(c) is type(code))
    return found


def test_test_modules_are_probed_and_pytest_behaves_as_without_mpcov(tmp_path: Path) -> None:
    write(tmp_path, {"test_a.py": TESTS, "conftest.py": CONFTEST})
    measured = pytest_run(tmp_path, measured=True)
    assert "probed: True" in measured.stdout
    cached = sorted(p.name for p in (tmp_path / "probe-cache").iterdir())
    assert [name.split(".")[0] for name in cached if ".pytest." in name] == ["conftest", "test_a"]
    # pytest wrote no cache of its own: that would hold probed code.
    assert pytest_pycs(tmp_path) == []

    plain = pytest_run(tmp_path, measured=False)
    assert "probed: False" in plain.stdout
    assert measured.returncode == plain.returncode == 1
    assert without_times(measured.stdout.replace("probed: True", "probed: False")) == \
        without_times(plain.stdout)
    assert "assert (1 + 1) == 3" in measured.stdout  # pytest's assertion message
    assert measured.stderr == plain.stderr


def test_probed_test_modules_measure_as_coverage_py(tmp_path: Path) -> None:
    write(tmp_path, {"test_a.py": TESTS, "conftest.py": CONFTEST})
    assert pytest_run(tmp_path, measured=True).returncode == 1
    files = json_report(tmp_path)
    test_a = files["test_a.py"]
    assert test_a["missing_lines"] == [13, 19]
    assert test_a["missing_branches"] == [[11, 13], [18, 19], [26, -24]]
    assert files["conftest.py"]["missing_branches"] == [[2, 3]]

    coverage = pytest.importorskip("coverage", reason="coverage.py is the yardstick")
    env = clean_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    ran = run([sys.executable, "-m", "coverage", "run", "--branch", "-m", "pytest", "-q",
               "-p", "no:cacheprovider"], tmp_path, env=env)
    assert ran.returncode == 1, ran.stderr
    out = run([sys.executable, "-m", "coverage", "json", "-q", "-o", "-"], tmp_path, env=env)
    assert out.returncode == 0, (coverage.__version__, out.stderr)
    theirs = json.loads(out.stdout)["files"]
    for name in ("test_a.py", "conftest.py"):
        for key in ("executed_lines", "missing_lines", "executed_branches", "missing_branches"):
            assert files[name][key] == theirs[name][key], (name, key)


def test_pytests_cache_never_holds_probed_code(tmp_path: Path) -> None:
    write(tmp_path, {"test_a.py": TESTS})
    plain = pytest_run(tmp_path, measured=False)
    [pyc] = pytest_pycs(tmp_path)
    before = pyc.read_bytes()
    # A measured run does not take pytest's (unprobed) cached code, nor
    # write probed code over it.
    first = pytest_run(tmp_path, measured=True)
    assert "probed: True" in first.stdout
    assert pyc.read_bytes() == before and not has_probes(pyc)
    # The next measured run reads mpcov's probe cache and measures the same.
    report = json_report(tmp_path)
    again = pytest_run(tmp_path, measured=True)
    assert "probed: True" in again.stdout
    assert json_report(tmp_path) == report
    assert without_times(pytest_run(tmp_path, measured=False).stdout) == \
        without_times(plain.stdout)


def test_an_edited_test_module_is_probed_again(tmp_path: Path) -> None:
    write(tmp_path, {"test_a.py": TESTS})
    pytest_run(tmp_path, measured=True)
    test_file = tmp_path / "test_a.py"
    test_file.write_text(TESTS + "    if n > 5:\n        print('big')\n")
    assert pytest_run(tmp_path, measured=True).returncode == 1
    assert json_report(tmp_path)["test_a.py"]["missing_branches"][-1] == [34, 35]


def test_pytest_warnings_and_opt_outs_are_kept(tmp_path: Path) -> None:
    write(tmp_path, {
        "test_warns.py": """\
            def test_tuple_assert():
                x = 0
                if x == 0:
                    assert (x, "always true")
            """,
        "test_plain.py": '''\
            """PYTEST_DONT_REWRITE"""


            def test_plain_assert():
                if True:
                    assert 1 == 2
            ''',
    })
    # (pytest warns as it rewrites: not when it reads its cache)
    measured = pytest_run(tmp_path, measured=True, pyc=False)
    plain = pytest_run(tmp_path, measured=False, pyc=False)
    assert measured.returncode == plain.returncode == 1
    assert "assertion is always true" in measured.stdout
    assert "assert (1 + 1) == 3" not in measured.stdout
    assert "AssertionError\n" in measured.stdout  # no rewritten message: opted out
    assert without_times(measured.stdout) == without_times(plain.stdout)


def test_the_assertion_pass_hook_setting_gets_its_own_probed_code(tmp_path: Path) -> None:
    write(tmp_path, {
        "test_a.py": TESTS,
        "conftest.py": """\
            def pytest_assertion_pass(item, lineno, orig, expl):
                print(f"passed: {orig}")
            """,
    })
    assert "passed:" not in pytest_run(tmp_path, measured=True).stdout
    (tmp_path / "pytest.ini").write_text("[pytest]\nenable_assertion_pass_hook = true\n")
    measured = pytest_run(tmp_path, measured=True)
    assert "passed: helper(3) == \"many\"" in measured.stdout
    assert "probed: True" in measured.stdout
