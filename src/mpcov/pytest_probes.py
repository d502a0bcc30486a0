"""Branch probes in the test modules pytest rewrites (branch mode).

pytest compiles test modules and ``conftest.py`` files itself, to rewrite
their ``assert`` statements (``_pytest.assertion.rewrite``), so they never
reach the import hook of :mod:`mpcov.rewrite`. Measured the complete way, a
suite's own test modules cost more than the code under test. This module is
imported right after pytest's rewriting module and changes three of its
functions while a branch measurement runs, for measured files only:

* ``_rewrite_test`` compiles the file with mpcov's probes first and pytest's
  assertion rewriting second, through :meth:`mpcov.rewrite.ProbeLoader.probed_code`
  (cached in mpcov's probe cache, keyed by pytest's version and the
  ``enable_assertion_pass_hook`` setting as well);
* ``_read_pyc`` reads nothing for them (pytest's cache holds unprobed code);
* ``_write_pyc`` writes no probed code, so pytest's own cache never holds
  code that only a measured process can run.

Everything else pytest does is unchanged: assertion messages, its warnings
about asserts, modules marked with ``PYTEST_DONT_REWRITE``. A pytest whose
functions differ from these is left alone; its test modules are then
measured the complete way, as before.
"""

from __future__ import annotations

from types import CodeType, ModuleType
from typing import Any

from mpcov.rewrite import Flavour, ProbeLoader

_NAMES = ("_rewrite_test", "_read_pyc", "_write_pyc", "rewrite_asserts")


class _AssertRewriting(Flavour):
    """Probes first, then pytest's assertion rewriting, as pytest compiles."""

    tag = "pytest"

    def __init__(self, module: ModuleType, path: str, config: Any, version: str) -> None:
        self._module = module
        self._path = path
        self._config = config
        try:
            pass_hook = bool(config.getini("enable_assertion_pass_hook"))
        except Exception:
            pass_hook = False
        self.key = (version, pass_hook)

    def compiler(self, raw: bytes) -> Any:
        def then(tree: Any) -> CodeType:
            self._module.rewrite_asserts(tree, raw, self._path, self._config)
            code: CodeType = compile(tree, self._path, "exec", dont_inherit=True)
            return code

        return then


def patch(module: ModuleType, loader: ProbeLoader) -> Any:
    """Make pytest's rewriting `module` compile measured files with probes.

    Returns the function that puts `module` back as it was, or None when
    `module` is not the pytest this knows.
    """
    real: dict[str, Any] = {name: getattr(module, name, None) for name in _NAMES}
    if not all(callable(function) for function in real.values()):
        return None
    version = str(getattr(module, "version", "") or "")
    rewrite_test, read_pyc, write_pyc = (
        real["_rewrite_test"], real["_read_pyc"], real["_write_pyc"])
    probed_ids = loader.code_ids

    def _rewrite_test(fn: Any, config: Any) -> Any:
        code = loader.probed_code(str(fn), _AssertRewriting(module, str(fn), config, version))
        if code is None:
            return rewrite_test(fn, config)
        return None, code  # (what pytest would write in its pyc: nothing is written)

    def _read_pyc(source: Any, pyc: Any, *args: Any, **kwargs: Any) -> Any:
        if loader.wants(str(source)):
            return None
        return read_pyc(source, pyc, *args, **kwargs)

    def _write_pyc(state: Any, co: Any, *args: Any, **kwargs: Any) -> Any:
        if id(co) in probed_ids:
            return False
        return write_pyc(state, co, *args, **kwargs)

    wrappers: tuple[Any, ...] = (_rewrite_test, _read_pyc, _write_pyc)
    for function in wrappers:
        original = real[function.__name__]
        function.__doc__ = original.__doc__
        function.__wrapped__ = original
        setattr(module, function.__name__, function)

    def undo() -> None:
        for name, function in real.items():
            setattr(module, name, function)

    return undo
