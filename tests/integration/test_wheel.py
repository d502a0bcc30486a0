"""mpcov as users get it: the wheel, installed into a fresh virtualenv.

The wheel is built from this checkout and installed once per session into a new
virtualenv; every test then works from a temporary directory outside the
source tree, with an environment that can't reach the checkout, so that what
runs is what the wheel ships: the ``mpcov`` script, the package, ``mpcov.pth``
at the root of site-packages and the sitecustomize hook inside the package.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from .helpers import Result, run, write

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def clean_env() -> dict[str, str]:
    """An environment with nothing pointing at the checkout or at a measured run."""
    drop = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH")
    return {
        k: v for k, v in os.environ.items()
        if k not in drop and not k.startswith(("MPCOV_", "COVERAGE_"))
    }


def check(argv: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run a setup command; fail with its output if it fails."""
    proc = subprocess.run(argv, cwd=cwd, env=clean_env(), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{argv} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


@dataclass(frozen=True)
class Venv:
    """A virtualenv with the mpcov wheel installed."""

    root: Path
    python: Path
    mpcov: Path
    site_packages: Path
    wheel: Path

    def run(self, argv: list[str], cwd: Path, **kwargs: object) -> Result:
        env = {**clean_env(), **kwargs.pop("env", {})}  # type: ignore[dict-item]
        return run(argv, cwd, env=env, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this checkout (once per session)."""
    out = tmp_path_factory.mktemp("wheel")
    check([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
          cwd=out)
    wheels = list(out.glob("mpcov-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="session")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A fresh virtualenv with the wheel (and its dependencies) installed."""
    root = tmp_path_factory.mktemp("venv") / "env"
    check([sys.executable, "-m", "venv", str(root)], cwd=root.parent)
    python = root / "bin" / "python"
    check([str(python), "-m", "pip", "install", "-q", str(wheel)], cwd=root.parent)
    purelib = check(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        cwd=root.parent,
    ).stdout.strip()
    return Venv(root, python, root / "bin" / "mpcov", Path(purelib), wheel)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A working directory outside the source tree."""
    assert REPO not in tmp_path.parents
    return tmp_path


def version() -> str:
    text = (REPO / "src" / "mpcov" / "__init__.py").read_text()
    line = next(line for line in text.splitlines() if line.startswith("__version__"))
    return line.split("=", 1)[1].strip().strip("\"'")


def test_console_script_version(venv: Venv, project: Path) -> None:
    res = venv.run([str(venv.mpcov), "--version"], project)
    assert (res.returncode, res.stdout, res.stderr) == (0, f"mpcov {version()}\n", "")
    res = venv.run([str(venv.python), "-m", "mpcov", "--version"], project)
    assert (res.returncode, res.stdout, res.stderr) == (0, f"mpcov {version()}\n", "")


def test_installed_package_is_used(venv: Venv, project: Path) -> None:
    res = venv.run([str(venv.python), "-c", "import mpcov; print(mpcov.__file__)"], project)
    assert res.returncode == 0, res.stderr
    assert Path(res.stdout.strip()) == venv.site_packages / "mpcov" / "__init__.py"


def test_wheel_contents(venv: Venv) -> None:
    site = venv.site_packages
    assert (site / "mpcov.pth").read_text() == (REPO / "src" / "mpcov.pth").read_text()
    hook = site / "mpcov" / "_hook" / "sitecustomize.py"
    assert hook.read_text() == (REPO / "sitecustomize_hook" / "sitecustomize.py").read_text()
    assert (site / "mpcov" / "py.typed").is_file()
    assert not (site / "sitecustomize.py").exists()  # the hook never shadows a site's own
    names = zipfile.ZipFile(venv.wheel).namelist()
    assert "mpcov.pth" in names
    assert "mpcov/_hook/sitecustomize.py" in names
    assert "mpcov/py.typed" in names
    assert not [n for n in names if n.startswith("tests/") or "__pycache__" in n]
    sources = {p.relative_to(REPO / "src").as_posix()
               for p in (REPO / "src" / "mpcov").rglob("*.py")}
    assert sources <= set(names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(venv.wheel).read(entry_points).decode()
    assert "mpcov = mpcov.cli:main" in text


PARENT = """\
    import subprocess
    import sys

    def main():
        result = subprocess.run([sys.executable, "child.py", "hello"], capture_output=True,
                                text=True, check=True)
        print("child said:", result.stdout.strip())

    if __name__ == "__main__":
        main()
    else:
        print("imported")
    """

CHILD = """\
    import sys

    if len(sys.argv) > 1:
        print(sys.argv[1].upper())
    else:
        print("nothing")
    """


def test_two_processes_measured(venv: Venv, project: Path) -> None:
    write(project, {"parent.py": PARENT, "child.py": CHILD})
    res = venv.run([str(venv.mpcov), "run", "parent.py"], project)
    assert (res.returncode, res.stdout, res.stderr) == (0, "child said: HELLO\n", "")
    res = venv.run([str(venv.mpcov), "json", "-o", "-"], project)
    assert res.returncode == 0, res.stderr
    files = json.loads(res.stdout)["files"]
    assert {name: (entry["executed_lines"], entry["missing_lines"])
            for name, entry in files.items()} == {
        "child.py": ([1, 3, 4], [6]),
        "parent.py": ([1, 2, 4, 5, 7, 9, 10], [12]),
    }
    res = venv.run([str(venv.mpcov), "report"], project)
    assert res.stdout.splitlines()[-1].split() == ["TOTAL", "12", "2", "83%"]


def test_child_of_an_interpreter_without_mpcov(venv: Venv, project: Path) -> None:
    """A child run by a Python that has no mpcov is measured through the hook
    ``mpcov run`` puts on PYTHONPATH."""
    bare = project / "bare"
    check([sys.executable, "-m", "venv", "--without-pip", str(bare)], cwd=project)
    res = venv.run([str(bare / "bin" / "python"), "-c", "import mpcov"], project)
    assert res.returncode == 1  # really without mpcov
    write(project, {
        "parent.py": f"import subprocess\nsubprocess.run([{str(bare / 'bin' / 'python')!r}, "
                     "'child.py', 'x'], check=True)\n",
        "child.py": CHILD,
    })
    res = venv.run([str(venv.mpcov), "run", "parent.py"], project)
    assert (res.returncode, res.stdout, res.stderr) == (0, "X\n", "")
    res = venv.run([str(venv.mpcov), "json", "-o", "-"], project)
    files = json.loads(res.stdout)["files"]
    assert sorted(files) == ["child.py", "parent.py"]
    assert files["child.py"]["executed_lines"] == [1, 3, 4]


def test_a_sites_own_sitecustomize_still_runs(venv: Venv, project: Path) -> None:
    """The hook ``mpcov run`` puts first on PYTHONPATH hides the program's own
    sitecustomize module; it runs that one too, in the main process and in a
    child, and the program sees it as ``sitecustomize``."""
    site = project / "site"
    write(project, {
        "site/sitecustomize.py": "import builtins\nbuiltins.SITE_SAYS = 'customized'\n",
        "child.py": "import sys\nprint(SITE_SAYS, sys.modules['sitecustomize'].__file__)\n",
        "parent.py": "import subprocess, sys\nprint(SITE_SAYS)\n"
                     "subprocess.run([sys.executable, 'child.py'], check=True)\n",
    })
    env = {"PYTHONPATH": str(site)}
    plain = venv.run([str(venv.python), "parent.py"], project, env=env)
    assert plain.returncode == 0, plain.stderr
    res = venv.run([str(venv.mpcov), "run", "parent.py"], project, env=env)
    assert (res.returncode, res.stdout, res.stderr) == (0, plain.stdout, "")
    assert res.stdout == f"customized\ncustomized {site / 'sitecustomize.py'}\n"
    res = venv.run([str(venv.mpcov), "json", "-o", "-"], project)
    files = json.loads(res.stdout)["files"]
    assert files["child.py"]["executed_lines"] == [1, 2]
    assert files["parent.py"]["executed_lines"] == [1, 2, 3]


@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_pth_is_invisible_without_mpcov_run(
    venv: Venv, project: Path, value: str | None
) -> None:
    code = (
        "import sys, warnings\n"
        "print(sorted(m for m in sys.modules if m.startswith('mpcov')))\n"
        "print(sys.gettrace())\n"
        "print('sitecustomize' in sys.modules and "
        "'mpcov' in (sys.modules['sitecustomize'].__file__ or ''))\n"
        "print(6 * 7)\n"
    )
    env = {} if value is None else {"MPCOV_RUN": value}
    res = venv.run([str(venv.python), "-c", code], project, env=env)
    assert (res.returncode, res.stdout, res.stderr) == (0, "[]\nNone\nFalse\n42\n", "")
    # The same with every warning shown: the .pth line says nothing either.
    res = venv.run([str(venv.python), "-W", "always", "-X", "dev", "-c", "print('ok')"],
                   project, env=env)
    assert (res.returncode, res.stdout, res.stderr) == (0, "ok\n", "")
    # And nothing is left behind in the working directory.
    assert sorted(p.name for p in project.iterdir()) == []


def test_pth_measures_with_mpcov_run_set(venv: Venv, project: Path) -> None:
    """Processes started outside `mpcov run` (e.g. by a CI step) are measured
    when they inherit MPCOV_RUN, through the .pth file alone."""
    write(project, {"parent.py": PARENT, "child.py": CHILD})
    res = venv.run([str(venv.mpcov), "run", "--no-combine", "child.py"], project)
    assert res.returncode == 0
    manifest = next((project / ".mpcov.d").glob("run-*.manifest"))
    res = venv.run([str(venv.python), "child.py", "again"], project,
                   env={"MPCOV_RUN": str(manifest)})
    assert (res.returncode, res.stdout, res.stderr) == (0, "AGAIN\n", "")
    assert len(list((project / ".mpcov.d").glob("*.frag"))) == 2
    res = venv.run([str(venv.mpcov), "combine"], project)
    assert res.stdout == "Combined 2 process fragments\n"


def test_pip_records_every_installed_file(venv: Venv) -> None:
    """pip knows every file the wheel installed (.pth and hook included), so
    that uninstalling leaves nothing behind."""
    res = venv.run([str(venv.python), "-m", "pip", "show", "-f", "mpcov"], venv.root)
    assert res.returncode == 0, res.stderr
    listed = {line.strip() for line in res.stdout.splitlines()}
    assert {"mpcov.pth", "mpcov/_hook/sitecustomize.py", "mpcov/py.typed"} <= listed
    assert any(line.endswith("bin/mpcov") for line in listed)
