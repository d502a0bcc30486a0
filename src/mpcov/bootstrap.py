"""What a starting Python process runs when measurement is on.

``mpcov.pth`` (site-packages) and ``sitecustomize_hook/sitecustomize.py`` (on
``PYTHONPATH``) both call :func:`activate`, which does nothing unless
``MPCOV_RUN`` names a run manifest. A process starts measuring at most once,
whichever hook fires first. Any failure prints one warning and leaves the
program running unmeasured: mpcov must never stop a program from starting.

Only builtin modules and mpcov's own child-side modules are imported here;
the start-up budget is a few milliseconds.
"""

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from mpcov.lifecycle import Recorder

ENV_VAR = "MPCOV_RUN"

#: The recorder of this process, once measuring (used by the in-process API).
recorder: "Recorder | None" = None
_attempted = False
_warned: set[str] = set()
_disabled_warnings: tuple[str, ...] = ()


def warn(message: str, slug: str = "bootstrap") -> None:
    """Print one mpcov warning to stderr, once per slug, unless disabled."""
    if slug in _warned or slug in _disabled_warnings:
        return
    _warned.add(slug)
    try:
        sys.stderr.write(f"mpcov: {message} ({slug})\n")
        sys.stderr.flush()
    except Exception:
        pass


def activate(via: str = "pth") -> "Recorder | None":
    """Start measuring this process if MPCOV_RUN is set; at most once."""
    global _attempted, recorder, _disabled_warnings
    if _attempted:
        return recorder
    path = os.environ.get(ENV_VAR)
    if not path:
        return None
    _attempted = True
    finder = None
    try:
        from mpcov.manifest import read_manifest

        manifest = read_manifest(path)
        finder = _preloaded(manifest.get("child_code"))

        from mpcov.cores import choose_core, make_core
        from mpcov.lifecycle import Recorder
        from mpcov.select import FileFilter

        _disabled_warnings = tuple(manifest.get("disable_warnings") or ())
        branch = bool(manifest.get("branch"))
        core_name, _why = choose_core(
            os.environ.get("MPCOV_CORE") or manifest.get("core"), branch
        )
        file_filter = FileFilter(manifest.get("rules") or {})
        probes = None
        # Branch probes on every Python (docs/branches.md): without them,
        # branch mode records every line event of measured code. Line probes
        # are the probes core (3.11).
        if branch or core_name == "probes":
            from mpcov.rewrite import ProbeLoader, default_cache_dir

            probes = ProbeLoader(
                file_filter.wanted,
                manifest.get("probe_cache") or default_cache_dir(),
                lambda msg: warn(msg, "no-probes"),
                ("branch+lines" if branch else "lines") if core_name == "probes" else "branch",
            )
        rec = Recorder(
            manifest,
            lambda notify: make_core(core_name, file_filter.wanted, notify, branch, probes),
            lambda msg: warn(msg, "write-failed"),
        )
        rec.writer.process["via"] = via
        rec.install()
        recorder = rec
    except Exception as exc:
        recorder = None
        warn(f"coverage measurement not started in this process: {exc}", "start-failed")
    if finder is not None:
        try:
            sys.meta_path.remove(finder)
        except ValueError:
            pass
    return recorder


_external: "Any" = sys.modules["_frozen_importlib_external"]


def _preloaded_spec(modules: "dict[str, Any]", fullname: str) -> "Any":
    """The spec of `fullname` if the parent compiled it (``mpcov.preload``):
    a ``SourceFileLoader`` whose ``get_code`` returns that code once, so
    everything else about the module is that of an ordinary source module.
    (No classes of its own here: each class costs a child 80,000 instructions.)"""
    entry = modules.pop(fullname, None)
    if entry is None:
        return None
    filename, mtime_ns, size, code = entry
    try:
        st = os.stat(filename)
    except OSError:
        return None
    if (st.st_mtime_ns, st.st_size) != (mtime_ns, size):
        return None  # changed since the parent compiled it: import it as usual
    loader: Any = _external.SourceFileLoader(fullname, filename)
    real_get_code = loader.get_code
    compiled = [code]

    def get_code(name: str) -> "Any":
        return compiled.pop() if compiled else real_get_code(name)

    loader.get_code = get_code
    return _external.spec_from_file_location(fullname, filename, loader=loader)


def _preloaded(bundle: "Any") -> "Any":
    """Put a finder for the parent-compiled child modules first on
    ``sys.meta_path``, if they are this mpcov's and this interpreter's."""
    if not bundle:
        return None
    try:
        if (
            bundle["magic"] != _external.MAGIC_NUMBER
            or bundle["optimize"] != sys.flags.optimize
            or bundle["dir"] != os.path.dirname(os.path.abspath(__file__))
        ):
            return None
        modules = dict(bundle["modules"])
    except (KeyError, TypeError):
        return None
    namespace: Any = type(sys.implementation)  # types.SimpleNamespace, not imported
    finder = namespace(
        find_spec=lambda fullname, path=None, target=None: _preloaded_spec(modules, fullname)
    )
    sys.meta_path.insert(0, finder)
    return finder
