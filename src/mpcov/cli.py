"""The ``mpcov`` command line.

Exit statuses, as coverage.py's: ``run`` returns the program's own status (or
dies of the signal that killed the program); 0 success; 1 an mpcov error
(one line on stderr, the traceback only with ``--debug``); 2 a failed
``--fail-under``, or bad command-line usage.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Callable, Sequence

import mpcov
from mpcov import api
from mpcov.config import Config, load_config
from mpcov.errors import MpcovError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

OK, ERR, FAIL_UNDER = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so main() decides the status."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: {message}")


class _UsageError(Exception):
    pass


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rcfile", help="read configuration from this file (default: look for "
                   "pyproject.toml [tool.mpcov], .coveragerc, setup.cfg, tox.ini)")
    p.add_argument("--data-file", help="the combined data file (default .mpcov)")
    p.add_argument("--debug", action="store_true", help="show tracebacks of mpcov errors")


def _report_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--include", help="report only files matching these comma-separated globs")
    p.add_argument("--omit", help="leave out files matching these comma-separated globs")
    p.add_argument("-i", "--ignore-errors", action="store_true", default=None,
                   help="skip files whose source is missing or unparsable")
    p.add_argument("--fail-under", type=float, metavar="MIN",
                   help="exit with status 2 if the total is below MIN percent")
    p.add_argument("--precision", type=int, help="digits after the decimal point")


def _run_arguments(run: argparse.ArgumentParser) -> None:
    _common(run)
    run.add_argument("-m", "--module", action="store_true", help="the target is a module name")
    run.add_argument("--source", help="measure only these comma-separated directories/packages")
    run.add_argument("--include", help="measure only files matching these globs")
    run.add_argument("--omit", help="do not measure files matching these globs")
    run.add_argument("--branch", action="store_true", default=None, help="measure branches")
    run.add_argument("-a", "--append", action="store_true",
                     help="add to the existing data instead of starting afresh")
    run.add_argument("--core", choices=["monitoring", "settrace", "probes"],
                     help="the tracer core")
    run.add_argument("--no-combine", action="store_true",
                     help="leave the per-process fragments uncombined")
    run.add_argument("target", help="the script (or module, with -m) to run")
    run.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the program")


def _combine_arguments(comb: argparse.ArgumentParser) -> None:
    _common(comb)
    comb.add_argument("inputs", nargs="*", help="more fragment directories or data files")
    comb.add_argument("--keep", action="store_true", help="keep the merged input files")
    comb.add_argument("-a", "--append", action="store_true",
                      help="accepted for coverage.py compatibility: combining always adds "
                      "to the data file")
    comb.add_argument("-q", "--quiet", action="store_true", help="no summary line")


def _report_arguments(rep: argparse.ArgumentParser) -> None:
    _common(rep)
    _report_options(rep)
    rep.add_argument("-m", "--show-missing", action="store_true", default=None,
                     help="show the line numbers that did not run")
    rep.add_argument("--skip-covered", action="store_true", default=None)
    rep.add_argument("--skip-empty", action="store_true", default=None)
    rep.add_argument("--sort", help="name, stmts, miss, branch, brpart or cover (- reverses)")
    rep.add_argument("--format", choices=["text", "markdown", "total"], default="text")
    rep.add_argument("--processes", action="store_true",
                     help="show the measured processes as a tree, instead of the files")


def _json_arguments(js: argparse.ArgumentParser) -> None:
    _common(js)
    _report_options(js)
    js.add_argument("-o", dest="output", help="output file ('-' for stdout)")
    js.add_argument("--pretty-print", action="store_true", default=None)
    js.add_argument("--show-contexts", action="store_true", default=None,
                    help="list the processes (and tests) that ran each line")


def _shell_env_arguments(env: argparse.ArgumentParser) -> None:
    _common(env)
    env.add_argument("--source", help="measure only these comma-separated directories/packages")
    env.add_argument("--include", help="measure only files matching these globs")
    env.add_argument("--omit", help="do not measure files matching these globs")
    env.add_argument("--branch", action="store_true", default=None, help="measure branches")
    env.add_argument("--unset", action="store_true", help="print commands that turn it off")


def _debug_arguments(dbg: argparse.ArgumentParser) -> None:
    _common(dbg)
    dbg.add_argument("topic", nargs="?", default="all", choices=["all", "config", "sys", "data"])


#: Subcommand -> (help, function adding its arguments), in the order help lists them.
_SUBCOMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "run": ("run a program, measuring it and every process it starts", _run_arguments),
    "combine": ("merge per-process data into the data file", _combine_arguments),
    "report": ("show the coverage table", _report_arguments),
    "json": ("write the coverage.py-format JSON report", _json_arguments),
    "shell-env": ("print shell commands that turn measurement on for every Python process "
                  "started from that shell (CI steps, tox, make)", _shell_env_arguments),
    "erase": ("delete the data file and all fragments", _common),
    "debug": ("show configuration, core and data files", _debug_arguments),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for every subcommand, or only for `command`.

    Parsing ``mpcov COMMAND ...`` needs only that subcommand's parser (its
    errors and help are its own); building the other six, with their ~60
    arguments, cost every ``mpcov run`` a few ms. Without a known `command`
    (``mpcov -h``, a mistyped command), every subcommand is built.
    """
    parser = _Parser(prog="mpcov", description="Coverage for every process your Python "
                     "program or test suite starts.")
    parser.add_argument("--version", action="version", version=f"mpcov {mpcov.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    complete = command not in _SUBCOMMANDS
    for name, (text, add_arguments) in _SUBCOMMANDS.items():
        if complete or name == command:
            add_arguments(sub.add_parser(name, help=text))
    return parser


def _command_of(args: Sequence[str]) -> str | None:
    """The subcommand `args` names, if their first word is one (else None: build them all)."""
    return args[0] if args and args[0] in _SUBCOMMANDS else None


def _split(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _overrides(ns: argparse.Namespace) -> dict[str, object]:
    names = {
        "data_file": "data_file", "branch": "branch", "core": "core",
        "ignore_errors": "ignore_errors", "fail_under": "fail_under", "precision": "precision",
        "show_missing": "show_missing", "skip_covered": "skip_covered",
        "skip_empty": "skip_empty", "sort": "sort", "pretty_print": "json_pretty_print",
        "show_contexts": "show_contexts",
    }
    out: dict[str, object] = {}
    for attr, field in names.items():
        value = getattr(ns, attr, None)
        if value is not None:
            out[field] = value
    for attr, field in (("source", "source"), ("include", "include"), ("omit", "omit")):
        value = _split(getattr(ns, attr, None))
        if value is not None:
            out[field] = value
    if ns.command in ("report", "json"):
        for attr in ("include", "omit"):
            if attr in out:
                out["report_" + attr] = out.pop(attr)
    return out


def _warn(message: str) -> None:
    print(f"mpcov: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        ns = build_parser(_command_of(args)).parse_args(args)
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return FAIL_UNDER
    if ns.command is None:
        build_parser().print_help()
        return OK
    try:
        cwd = os.getcwd()
        config, warnings = load_config(ns.rcfile, cwd=cwd, overrides=_overrides(ns))
        for warning in warnings:
            _warn(warning)
        return int(COMMANDS[ns.command](ns, config, cwd))
    except MpcovError as exc:
        if ns.debug:
            import traceback

            traceback.print_exc()
        print(f"mpcov: {exc}", file=sys.stderr)
        return ERR
    except KeyboardInterrupt:
        print("mpcov: interrupted", file=sys.stderr)
        return 130


def cmd_run(ns: argparse.Namespace, config: Config, cwd: str) -> int:
    if not ns.module and not os.path.exists(os.path.join(cwd, ns.target)):
        raise MpcovError(f"No file to run: '{ns.target}'")
    try:
        if not ns.append:
            api.erase(config, cwd)
        prepared = api.prepare_run(config, cwd=cwd, environ=os.environ, warn=_warn)
    except MpcovError as exc:
        # Measurement failing must not stop the program: run it unmeasured.
        _warn(f"{exc}; running the program without measuring it")
        return api.exit_like(api.run_program([ns.target, *ns.args], module=ns.module,
                                             env=dict(os.environ)))
    pids: list[int] = []
    status = api.run_program([ns.target, *ns.args], module=ns.module, env=prepared.env,
                             started=pids.append)
    if not ns.no_combine:
        still = api.wait_for_processes(config, cwd)
        exit_status = (pids[0], status) if pids and status >= 0 else None
        result = api.combine_data(config, cwd=cwd, warn=_warn, exit_status=exit_status)
        if still:
            _warn(f"{still} measured process(es) still running after "
                  f"{config.wait_for_children:g} s; run 'mpcov combine' later to add their data")
        if result.damaged:
            _warn(result.summary())
    return api.exit_like(status)


def cmd_combine(ns: argparse.Namespace, config: Config, cwd: str) -> int:
    result = api.combine_data(config, cwd=cwd, inputs=ns.inputs, keep=ns.keep, warn=_warn)
    if not ns.quiet:
        print(result.summary())
    return OK


def _fail_under(total: Any, config: Config) -> int:
    from mpcov.results import fail_under_message, fail_under_met

    if config.fail_under and not fail_under_met(total, config.fail_under, config.precision):
        print(fail_under_message(total, config.fail_under, config.precision), file=sys.stderr)
        return FAIL_UNDER
    return OK


def cmd_report(ns: argparse.Namespace, config: Config, cwd: str) -> int:
    from mpcov.report.text import render_table

    if ns.processes:
        api.write_process_tree(config, cwd=cwd, out=sys.stdout)
        return OK

    results, branch = api.load_results(config, cwd=cwd, warn=_warn)
    total = render_table(
        results, sys.stdout, fmt=ns.format, show_missing=config.show_missing,
        skip_covered=config.skip_covered, skip_empty=config.skip_empty, sort=config.sort,
        precision=config.precision, branch=branch,
    )
    return _fail_under(total, config)


def cmd_json(ns: argparse.Namespace, config: Config, cwd: str) -> int:
    from mpcov.report.jsonreport import render_json

    results, branch = api.load_results(config, cwd=cwd, warn=_warn,
                                       with_contexts=config.show_contexts)
    output = ns.output or config.json_output
    buf = io.StringIO()
    total = render_json(results, buf, branch=branch, show_contexts=config.show_contexts,
                        pretty=config.json_pretty_print, version=mpcov.__version__,
                        timestamp=api.timestamp(), precision=config.precision)
    _write_output(output, buf.getvalue(), cwd)
    return _fail_under(total, config)


def _write_output(output: str, text: str, cwd: str) -> None:
    if output == "-":
        sys.stdout.write(text)
        return
    path = os.path.join(cwd, output)
    try:
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise MpcovError(f"Couldn't write report {path}: {exc.strerror}") from None
    print(f"Wrote JSON report to {output}")


def cmd_shell_env(ns: argparse.Namespace, config: Config, cwd: str) -> int:
    import shlex

    if ns.unset:
        print("unset MPCOV_RUN")
        return OK
    prepared = api.prepare_run(config, cwd=cwd, environ=os.environ, warn=_warn)
    for name in ("MPCOV_RUN", "PYTHONPATH"):
        if prepared.env.get(name):
            print(f"export {name}={shlex.quote(prepared.env[name])}")
    return OK


def cmd_erase(ns: argparse.Namespace, config: Config, cwd: str) -> int:
    api.erase(config, cwd)
    return OK


def cmd_debug(ns: argparse.Namespace, config: Config, cwd: str) -> int:
    from mpcov.debuginfo import write_debug

    write_debug(ns.topic, config, cwd, sys.stdout)
    return OK


COMMANDS: dict[str, Any] = {
    "run": cmd_run,
    "combine": cmd_combine,
    "report": cmd_report,
    "json": cmd_json,
    "erase": cmd_erase,
    "shell-env": cmd_shell_env,
    "debug": cmd_debug,
}
