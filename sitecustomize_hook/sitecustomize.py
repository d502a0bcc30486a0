"""mpcov's sitecustomize hook: start coverage in processes mpcov cannot reach otherwise.

``mpcov run`` puts this file's directory on ``PYTHONPATH``. It matters where
mpcov's ``.pth`` file does not run: an interpreter (of any supported version)
that does not have mpcov installed, or an environment whose site-packages is
not this one. When ``MPCOV_RUN`` is set it imports mpcov — from the
environment if it can, else from the copy next to this file — and starts
measuring. Then it runs the ``sitecustomize`` module this one hides, if any,
so that a site's own customisation still happens. It never raises.
"""


def _mpcov_start():
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    if not os.environ.get("MPCOV_RUN"):
        return here
    try:
        try:
            import mpcov.bootstrap
        except ImportError:
            # The package this hook ships in: .../site-packages/mpcov/_hook/
            # (an installed wheel) or the repository's src/mpcov (a checkout).
            root = os.path.dirname(os.path.dirname(here))
            for candidate in (root, os.path.join(os.path.dirname(here), "src")):
                if os.path.isfile(os.path.join(candidate, "mpcov", "bootstrap.py")):
                    sys.path.insert(0, candidate)
                    try:
                        import mpcov.bootstrap  # noqa: F401
                    finally:
                        sys.path.remove(candidate)
                    break
        sys.modules["mpcov.bootstrap"].activate("sitecustomize")
    except Exception as exc:  # never break the interpreter
        sys.stderr.write(f"mpcov: coverage measurement not started in this process: {exc!r}\n")
    return here


def _chain_load(here):
    """Run the next sitecustomize on sys.path, as if this one were not there."""
    import os
    import sys

    # The path finder the interpreter already runs (importlib.machinery's
    # PathFinder): importing the importlib package would cost every process
    # about a quarter of a millisecond, for a search that usually finds nothing.
    finder = getattr(sys.modules.get("_frozen_importlib_external"), "PathFinder", None)
    if finder is None:
        import importlib.machinery

        finder = importlib.machinery.PathFinder
    path = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = finder.find_spec("sitecustomize", path)
    if spec is None or spec.loader is None:
        return
    import importlib.util  # only now: it costs milliseconds on 3.11

    module = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


_here = _mpcov_start()
try:
    _chain_load(_here)
except Exception as _exc:
    import sys as _sys

    _sys.stderr.write(f"Error in sitecustomize (chained by mpcov): {_exc!r}\n")
