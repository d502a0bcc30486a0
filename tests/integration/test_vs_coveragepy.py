"""mpcov against the yardstick: coverage.py, on the same real programs.

Each test runs a program under ``coverage run`` (then ``coverage json``) and
under ``mpcov run`` (then ``mpcov json``) in the same directory, with the same
configuration file, and compares, file by file, the executed, missing and
excluded lines (and so the statements). They must be identical, except for the
differences listed in :data:`KNOWN_DIFFERENCES`, each with its reason. Those
are asserted exactly too: when a difference goes away or a new one appears,
the test fails and the list must be brought up to date.

The programs are written to cover Python's syntax broadly; one exercises the
pure-Python modules of the running interpreter's standard library (copied into
the project under other names, so that both tools measure them) to compare
thousands of lines of real code.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .helpers import Result, run, write

coverage = pytest.importorskip("coverage", reason="coverage.py is the yardstick")

#: mpcov's cores on this interpreter (sys.monitoring needs 3.12).
CORES = ("settrace", "monitoring") if sys.version_info >= (3, 12) else ("settrace",)

LineSets = dict[str, dict[str, list[int]]]
Diff = dict[str, Any]


@dataclass(frozen=True)
class KnownDifference:
    """A deliberate difference between mpcov and coverage.py.

    `diff` is exactly what :func:`differences` reports for the program:
    file name -> either ``"only measured by mpcov"`` / ``"only measured by
    coverage.py"``, or a mapping of ``"<key> only in mpcov"`` / ``"<key> only in
    coverage.py"`` to line numbers.
    """

    reason: str
    diff: Diff = field(default_factory=dict)


KNOWN_DIFFERENCES: dict[str, KnownDifference] = {
    "atexit": KnownDifference(
        reason="'coverage run' stops measuring when the main module returns, before the "
        "interpreter runs atexit handlers; mpcov measures a process until it ends, so "
        "code run by atexit handlers is covered",
        diff={"prog.py": {"executed_lines only in mpcov": [5, 6],
                          "missing_lines only in coverage.py": [5, 6]}},
    ),
    "subprocess-default": KnownDifference(
        reason="coverage.py measures child processes only when told to ([run] patch = "
        "subprocess); mpcov measures every Python process the program starts, always",
        diff={"child.py": "only measured by mpcov"},
    ),
    "os-exit": KnownDifference(
        reason="a process that ends with os._exit() skips coverage.py's save (unless "
        "[run] patch = _exit); mpcov saves before os._exit",
        diff={"prog.py": "only measured by mpcov"},
    ),
    "sigterm": KnownDifference(
        reason="a process killed by SIGTERM loses coverage.py's data (unless [run] sigterm "
        "= true); mpcov saves on SIGTERM and then dies of it",
        diff={"prog.py": "only measured by mpcov"},
    ),
    "json-format": KnownDifference(
        reason="mpcov writes coverage.py's JSON format 2: no per-function and per-class "
        "sections ('functions', 'classes', format 3), and meta says tool = mpcov",
        diff={"meta.format": (3, 2), "meta keys only in mpcov": ["tool"],
              "file keys only in coverage.py": ["classes", "functions"]},
    ),
    "messages-on-stderr": KnownDifference(
        reason="mpcov prints errors and the --fail-under verdict on stderr (errors with an "
        "'mpcov: ' prefix) where coverage.py prints them on stdout, the verdict after "
        "'Coverage failure: '",
        diff={"no data": ("No data to report.\n", "mpcov: No data to report.\n"),
              "fail-under": ("Coverage failure: total of 50 is less than fail-under=60\n",
                             "total of 50 is less than fail-under=60\n")},
    ),
}


def clean_env() -> dict[str, str]:
    """This environment without any setting of either tool."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("COVERAGE_", "MPCOV_"))}


def tool(module: str, *args: str, cwd: Path) -> Result:
    """``python -m <module> ARGS`` in `cwd`."""
    return run([sys.executable, "-m", module, *args], cwd, env=clean_env(), timeout=300)


@dataclass
class Measured:
    """One tool's run of a program: how the program ended, and the JSON report."""

    run: Result
    report: dict[str, Any] | None  # None: the tool had no data to report


def with_coverage(root: Path, argv: list[str]) -> Measured:
    """The program under ``coverage run``, its data combined, as ``coverage json``."""
    for old in root.glob(".coverage*"):
        if old.name != ".coveragerc":
            old.unlink()
    ran = tool("coverage", "run", *argv, cwd=root)
    if list(root.glob(".coverage.*")):  # per-process files ([run] patch = subprocess)
        assert tool("coverage", "combine", "-q", cwd=root).returncode == 0
    out = root / "coverage-py.json"
    res = tool("coverage", "json", "-o", str(out), cwd=root)
    if res.returncode != 0:
        assert "No data to report." in res.stdout + res.stderr, res.stderr
        return Measured(ran, None)
    return Measured(ran, json.loads(out.read_text()))


def with_mpcov(root: Path, argv: list[str], *options: str) -> Measured:
    """The program under ``mpcov run``, as ``mpcov json``."""
    ran = tool("mpcov", "run", *options, *argv, cwd=root)
    out = root / "mpcov.json"
    res = tool("mpcov", "json", "-o", str(out), cwd=root)
    assert res.returncode == 0, res.stderr
    return Measured(ran, json.loads(out.read_text()))


def line_sets(report: dict[str, Any] | None) -> LineSets:
    """File name -> executed, missing, excluded lines and statements."""
    files = (report or {}).get("files", {})
    out: LineSets = {}
    for name, entry in files.items():
        out[name] = {
            key: sorted(entry[key]) for key in ("executed_lines", "missing_lines",
                                                 "excluded_lines")
        }
        out[name]["statements"] = sorted(set(entry["executed_lines"]) |
                                         set(entry["missing_lines"]))
    return out


def differences(cov: LineSets, mp: LineSets) -> Diff:
    """What mpcov's line sets have that coverage.py's don't, and the reverse."""
    diff: Diff = {}
    for name in sorted(set(cov) | set(mp)):
        if name not in cov:
            diff[name] = "only measured by mpcov"
        elif name not in mp:
            diff[name] = "only measured by coverage.py"
        else:
            found = {}
            for key, lines in cov[name].items():
                extra = sorted(set(mp[name][key]) - set(lines))
                lacking = sorted(set(lines) - set(mp[name][key]))
                if extra:
                    found[f"{key} only in mpcov"] = extra
                if lacking:
                    found[f"{key} only in coverage.py"] = lacking
            if found:
                diff[name] = found
    return diff


def expected(known: str | None) -> Diff:
    return KNOWN_DIFFERENCES[known].diff if known else {}


def compare(
    root: Path, argv: list[str], *, known: str | None = None, cores: tuple[str, ...] = CORES
) -> tuple[Measured, LineSets]:
    """Run `argv` under both tools (mpcov with each core) and assert they agree.

    The program must behave the same (output, exit status) under both, and the
    line sets must differ exactly as the known difference says. Returns
    coverage.py's measurement and line sets.
    """
    cov = with_coverage(root, argv)
    cov_lines = line_sets(cov.report)
    for core in cores:
        mp = with_mpcov(root, argv, "--core", core)
        assert (mp.run.returncode, mp.run.stdout) == (cov.run.returncode, cov.run.stdout), core
        assert differences(cov_lines, line_sets(mp.report)) == expected(known), core
    return cov, cov_lines


def statement_count(lines: LineSets) -> int:
    return sum(len(entry["statements"]) for entry in lines.values())


def src(text: str) -> str:
    """A program's text, from the line after the opening quotes."""
    return text[1:]


# -- the programs --------------------------------------------------------------------

CLASSES_DECORATORS = src(r'''
"""Classes, decorators, closures, properties."""
import functools
from dataclasses import dataclass, field


def trace(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        wrapper.calls += 1
        return func(*args, **kwargs)

    wrapper.calls = 0
    return wrapper


def repeat(times):
    def decorate(func):
        def inner(*args):
            result = None
            for _ in range(times):
                result = func(*args)
            return result
        return inner
    return decorate


def register(cls):
    REGISTRY[cls.__name__] = cls
    return cls


REGISTRY = {}


@register
class Shape:
    sides = 0

    def __init__(self, name):
        self.name = name

    def area(self):
        raise NotImplementedError

    @property
    def label(self):
        return f"{self.name} with {self.sides} sides"

    @label.setter
    def label(self, value):
        self.name = value.split()[0]

    @staticmethod
    def unit():
        return 1

    @classmethod
    def make(cls, *args):
        return cls(*args)

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r})"


@register
class Square(Shape):
    sides = 4

    def __init__(self, side):
        super().__init__("square")
        self.side = side

    @trace
    def area(self):
        return self.side ** 2

    def unused(self):
        return "never called"


@dataclass(order=True)
class Point:
    x: int
    y: int = 0
    tags: list = field(default_factory=list)

    def dist2(self, other=None):
        if other is None:
            other = Point(0, 0)
        dx = self.x - other.x
        dy = (
            self.y
            - other.y
        )
        return dx * dx + dy * dy


class Meta(type):
    def __new__(mcs, name, bases, ns):
        ns.setdefault("created_by", "Meta")
        return super().__new__(mcs, name, bases, ns)


class WithMeta(metaclass=Meta):
    pass


def counter():
    count = 0

    def incr(step=1):
        nonlocal count
        count += step
        return count

    return incr


@repeat(3)
def shout(word):
    return word.upper() + "!"


def classify(n):
    if n < 0:
        return "negative"
    if n == 0:
        return "zero"
    elif n < 10:
        return "small"
    return "large"


def main():
    sq = Square.make(3)
    print(sq, sq.area(), sq.area(), Square.area.calls, sq.label)
    sq.label = "box shape"
    print(sq.name, Shape.unit(), sorted(REGISTRY))
    p, q = Point(3, 4), Point(1, 1, ["a"])
    print(p.dist2(), p.dist2(q), p < q, WithMeta.created_by)
    incr = counter()
    incr(); incr(5)
    print(incr(), shout("hey"))
    print([classify(n) for n in (-1, 0, 5)])
    key = lambda s: (len(s), s)  # noqa: E731
    print(sorted(["bb", "a", "ccc"], key=key))
    try:
        Shape("x").area()
    except NotImplementedError:
        print("abstract")


if __name__ == "__main__":
    main()
''')

GENERATORS_ASYNC = src(r'''
import asyncio
import itertools


def countdown(n):
    while n > 0:
        yield n
        n -= 1
    else:
        yield "liftoff"


def chain(*iterables):
    for it in iterables:
        yield from it


def fib():
    a, b = 0, 1
    while True:
        yield a
        a, b = b, a + b


def accumulate():
    total = 0
    while True:
        value = yield total
        if value is None:
            break
        total += value
    return total


async def fetch(i, delay=0):
    await asyncio.sleep(delay)
    if i % 2:
        return i * 10
    return -i


async def agen(n):
    for i in range(n):
        await asyncio.sleep(0)
        yield i


async def never_awaited():
    await asyncio.sleep(1)
    return "never"


def never_iterated():
    yield from range(3)


class Resource:
    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return False


async def main():
    results = await asyncio.gather(*(fetch(i) for i in range(4)))
    collected = [x async for x in agen(3)]
    async with Resource() as r:
        print(type(r).__name__)
    async for x in agen(2):
        print("agen", x)
    try:
        await asyncio.wait_for(fetch(1, 10), timeout=0.01)
    except asyncio.TimeoutError:
        print("timeout")
    return results, collected


squares = [x * x for x in range(5)]
evens = {x for x in range(10) if x % 2 == 0}
table = {k: v for k, v in zip("abc", range(3))}
nested = [[i * j for j in range(3)] for i in range(3)]
genexp = sum(x for x in range(100) if x % 7 == 0)
pairs = [(a, b) for a in range(3)
         for b in range(3)
         if a != b]
print(list(countdown(3)), list(chain([1], (2, 3))), list(itertools.islice(fib(), 8)))
acc = accumulate()
next(acc)
acc.send(5)
acc.send(7)
try:
    acc.send(None)
except StopIteration as stop:
    print("total", stop.value)
print(squares, sorted(evens), table, nested, genexp, len(pairs))
print(asyncio.run(main()))
''')

CONTROL_FLOW = src(r'''
import contextlib
import sys


@contextlib.contextmanager
def managed(name, log):
    log.append(f"enter {name}")
    try:
        yield name.upper()
    except KeyError:
        log.append("swallowed")
    finally:
        log.append(f"exit {name}")


def parse(value):
    try:
        number = int(value)
    except ValueError:
        return None
    except TypeError as exc:
        raise RuntimeError("bad type") from exc
    else:
        number += 1
    finally:
        parse.calls = getattr(parse, "calls", 0) + 1
    return number


def describe(command):
    match command:
        case {"action": "move", "to": (x, y)}:
            return f"move {x},{y}"
        case ["say", *words] if words:
            return " ".join(words)
        case ["say"]:
            return "silence"
        case int(n) | float(n) if n > 100:
            return "big"
        case str() as text:
            return f"text {text}"
        case _:
            return "unknown"


def search(items, target):
    for i, item in enumerate(items):
        if item == target:
            break
        if item is None:
            continue
    else:
        return -1
    return i


def drain(n):
    steps = 0
    while n > 1:
        if n % 2:
            n = 3 * n + 1
        else:
            n //= 2
        steps += 1
    else:
        steps = -steps if steps > 1000 else steps
    return steps


def long_call(a, b, c=3, *rest, flag=False, **extra):
    total = (a +
             b +
             c)
    value = total \
        if flag else -total
    data = {
        "total": total,
        "rest": rest,
        "extra": sorted(
            extra.items(),
        ),
    }
    text = """multi
line
string"""
    assert total > 0, (
        "must be positive"
    )
    return value, data, len(text)


def walrus(data):
    if (n := len(data)) > 3:
        return n
    return 0 if not data else 1 < n <= 3


def unreachable():
    return 1
    print("dead code")  # noqa


def excluded():  # pragma: no cover
    print("excluded")
    return 2


def stub(): ...


def groups():
    try:
        raise ExceptionGroup("eg", [ValueError(1), TypeError(2)])
    except* ValueError as eg:
        kinds = [type(e).__name__ for e in eg.exceptions]
    except* TypeError:
        kinds = ["type"]
    return kinds


GLOBAL = 0


def bump():
    global GLOBAL
    GLOBAL += 1
    del_me = [1]
    del del_me[0]
    return GLOBAL


def main(argv):
    log = []
    with managed("a", log) as a, managed("b", log) as b:
        log.append(a + b)
    with managed("c", log):
        raise KeyError("c")
    with (
        open(__file__) as f1,
        open(__file__) as f2,
    ):
        same = f1.readline() == f2.readline()
    print(log, same)
    print(parse("41"), parse("x"))
    try:
        parse(None)
    except RuntimeError as err:
        print(err, type(err.__cause__).__name__)
    for cmd in ({"action": "move", "to": (1, 2)}, ["say", "hi", "there"], ["say"], 1000,
                "str", 3.0):
        print(describe(cmd))
    print(search([1, None, 3], 3), search([], 1), drain(27))
    print(long_call(1, 2, 3, 4, flag=True, k=1))
    print(walrus([1, 2, 3, 4]), walrus([]), walrus([1, 2]))
    print(unreachable(), stub(), groups(), bump())
    if len(argv) > 5:
        print("many args")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
''')

EDGE_CASES = src(r'''
# -*- coding: utf-8 -*-
"""Module docstring
spanning lines."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import os

x: int
y: int = 1
DEBUG = False

if 0:
    print("constant false")

if False:
    print("also false")

if __debug__:
    z = 2

if DEBUG:
    print("debug")


def f(a,
      b=2,
      *args,
      **kwargs):
    """Docstring."""
    global y
    y += a
    return (
        a
        + b
    )


g = lambda n: (  # noqa: E731
    n * 2
)


class K:
    """Class doc."""
    attr: str
    other = [
        1,
        2,
    ]

    def method(self):
        pass

    def never(self) -> None:
        ...

    async def coro(self):
        return 1


def loop():
    while True:
        break
    while 1:
        return "one"


def unreachable_after_raise():
    try:
        raise ValueError
        print("dead")  # noqa
    except ValueError:
        pass
    for i in range(3):
        continue
        print("dead too")  # noqa


def fstr(name):
    return f"""hello {
        name
    } and {name!r:>10}"""


def chained(v):
    return (v > 1
            and v < 10
            or v == 100)


def empty_match(v):
    match v:
        case 1:
            return "one"
    return None


def with_else(v):
    for i in v:
        pass
    else:
        return "done"


print(f(1, 2), g(3), K().method(), loop(), unreachable_after_raise(), fstr("x"),
      chained(5), empty_match(2), with_else([1]))
if sys.argv[1:]:
    print("args")
else:
    pass
''')

LIBRARY_DRIVER = src(r'''
import io
import sys

import argparse_copy as argparse
import difflib_copy as difflib
import fractions_copy as fractions
import json_copy as json
import pprint_copy as pprint
import shlex_copy as shlex
import tw_copy as textwrap

TEXT = ("The quick brown fox jumps over the lazy dog. " * 6).strip()

# textwrap
print(textwrap.wrap(TEXT, width=30))
print(textwrap.fill(TEXT, width=25, initial_indent="> ", subsequent_indent="  "))
print(textwrap.shorten(TEXT, width=40, placeholder=" [...]"))
print(textwrap.dedent("    a\n      b\n    c\n"))
print(textwrap.indent("x\n\ny\n", "+ ", predicate=lambda line: True))
w = textwrap.TextWrapper(width=12, break_long_words=True, max_lines=3, tabsize=4,
                         expand_tabs=True, replace_whitespace=True, drop_whitespace=False)
print(w.wrap("supercalifragilistic\texpialidocious words here and there"))
print(textwrap.wrap("hyphen-ated-words-are-split-nicely", width=8, break_on_hyphens=True))

# shlex
print(shlex.split('a "b c" \'d e\' f\\ g # comment', comments=True))
print(shlex.quote("it's"), shlex.join(["a b", "c"]))
lex = shlex.shlex("x = 'y z'; w", posix=True, punctuation_chars=True)
lex.whitespace_split = False
print(list(lex))
lex = shlex.shlex(io.StringIO("one two\nthree"), posix=False)
print([tok for tok in lex])
try:
    shlex.split('unterminated "quote')
except ValueError as exc:
    print("error:", exc)

# fractions
F = fractions.Fraction
a, b = F(3, 4), F("5/6")
print(a + b, a - b, a * b, a / b, a ** 2, -a, abs(-b), a // b, a % b, divmod(a, b))
print(F(0.1), F("1.5e-3"), F(10, -4), F(1.5).limit_denominator(10),
      F(355, 113).limit_denominator(100))
print(a < b, a == 0.75, round(F(7, 2)), round(F(22, 7), 2), float(a), int(b),
      hash(a) == hash(0.75))
print(F(2) ** F(1, 2), 2 ** F(2), F(1, 3) + 1, 1 - F(1, 3), a.as_integer_ratio())
try:
    F(1, 0)
except ZeroDivisionError as exc:
    print("zero:", exc)

# argparse
parser = argparse.ArgumentParser(prog="demo", description="Demo program.",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--path", action="append", help="input paths")
parser.add_argument("-v", "--verbose", action="count", default=0)
parser.add_argument("--level", type=int, choices=[1, 2, 3], default=1)
parser.add_argument("--name", required=False, metavar="NAME")
parser.add_argument("--flag", action=argparse.BooleanOptionalAction, default=False)
group = parser.add_mutually_exclusive_group()
group.add_argument("--fast", action="store_true")
group.add_argument("--slow", action="store_true")
sub = parser.add_subparsers(dest="cmd")
sp = sub.add_parser("build", help="build it")
sp.add_argument("--jobs", "-j", type=int, default=1)
sp.add_argument("--define", "-D", action="append", default=[])
print(parser.parse_args(["-vv", "--level", "2", "--path", "a", "--flag",
                         "build", "-j", "4", "-Dx=1"]))
print(parser.parse_known_args(["--fast", "--unknown", "build"]))
print(parser.format_help())
print(sp.format_usage())
err = io.StringIO()
old = sys.stderr
sys.stderr = err
try:
    parser.parse_args(["--level", "9"])
except SystemExit as exc:
    print("exit", exc.code)
finally:
    sys.stderr = old
print(err.getvalue().splitlines()[-1])

# difflib
x = ["one", "two", "three", "four", "five"]
y = ["zero", "one", "three", "four", "5ive", "six"]
print("\n".join(difflib.unified_diff(x, y, "x", "y", lineterm="")))
print("\n".join(difflib.context_diff(x, y, lineterm="")))
print(list(difflib.ndiff(["abcde\n", "fgh\n"], ["abXde\n", "fgh\n", "ij\n"])))
sm = difflib.SequenceMatcher(None, "private volunteer", "private Volunteers")
print(sm.ratio(), sm.quick_ratio(), sm.get_opcodes(), sm.get_matching_blocks())
print(difflib.get_close_matches("appel", ["ape", "apple", "peach", "puppy"]))
print(len(difflib.HtmlDiff(wrapcolumn=20).make_table(x, y, context=True)))

# pprint
data = {"key%d" % i: list(range(i)) for i in range(8)}
data["nested"] = {"a": [{"b": (1, 2, {"c": "d" * 30})}] * 3, "s": {3, 1, 2}}
pprint.pprint(data, width=40, compact=True)
print(pprint.pformat(data, depth=2, sort_dicts=False)[:200])
print(pprint.isreadable(data), pprint.isrecursive(data), pprint.saferepr([data, data]))
rec = [1]
rec.append(rec)
print(pprint.pformat(rec).split(" with id=")[0])

# json
obj = {"a": [1, 2.5, None, True, "x\u00e9\n"], "b": {"c": []}, "d": "q\"uote"}
text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=True)
print(text)
print(json.loads(text) == obj, json.dumps(obj, separators=(",", ":")))
json.scanner.make_scanner = json.scanner.py_make_scanner  # the pure-Python parser
json.decoder.scanstring = json.decoder.py_scanstring
decoder = json.decoder.JSONDecoder(parse_float=str)
print(decoder.decode('[1, 2e3, -0.5, {"k": [true, false, null]}, "\\u00e9\\n"]'))
for bad in ("{bad json}", "[1, 2", '"unterminated', "[1] x"):
    try:
        decoder.decode(bad)
    except json.JSONDecodeError as exc:
        print("json error:", exc.msg, exc.pos)
''')

THREADS = src(r'''
import queue
import threading


def worker(q, out, lock):
    while True:
        item = q.get()
        if item is None:
            break
        with lock:
            out.append(item * 2)


def never_started():
    raise AssertionError("not run")


q, out, lock = queue.Queue(), [], threading.Lock()
threads = [threading.Thread(target=worker, args=(q, out, lock)) for _ in range(3)]
for t in threads:
    t.start()
for i in range(10):
    q.put(i)
for _ in threads:
    q.put(None)
for t in threads:
    t.join()
timer = threading.Timer(0.01, lambda: out.append("timer"))
timer.start()
timer.join()
print(sorted(map(str, out)))
''')

#: Sources that are odd as text: line endings, encodings, tabs, form feeds, a
#: script without ``.py``, code compiled from a file by exec.
ODD_SOURCES = {
    "main.py": "import crlf\nimport latin\n"
    "exec(compile(open('tabs.py').read(), 'tabs.py', 'exec'))\n"
    "import runpy\nrunpy.run_path('script')\n",
    "crlf.py": "x = 1\r\nif x:\r\n    y = 2\r\nelse:\r\n    y = 3\r\nprint(y)\r\n",
    "tabs.py": "def t():\n\tif 1:\n\t\treturn 1\n\treturn 2\nt()\n\x0c\nv = 3\n",
    "script": "print('no extension')\nif len('ab') > 2:\n    print('no')\n",
}
LATIN_1 = (
    b'# -*- coding: latin-1 -*-\ns = "caf\xe9"\n'
    b'if len(s) == 4:\n    print("ok")\nelse:\n    print("no")\n'
)

ATEXIT = src(r'''
import atexit


def goodbye():
    print("bye")
    return 0


atexit.register(goodbye)
print("main")
''')

PARENT = src(r'''
import subprocess
import sys

result = subprocess.run([sys.executable, "child.py", "x"], capture_output=True, text=True)
print(result.stdout.strip())
''')

CHILD = src(r'''
import sys

if sys.argv[1:] == ["x"]:
    print("child got x")
else:
    print("child got nothing")
''')

OS_EXIT = src(r'''
import os


def main():
    print("about to _exit", flush=True)
    os._exit(3)


main()
''')

SIGTERM = src(r'''
import os
import signal


def main():
    print("about to die", flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    print("never")


main()
''')

#: Standard-library modules copied into the project under other names.
LIBRARY = {
    "textwrap": "tw_copy",
    "shlex": "shlex_copy",
    "fractions": "fractions_copy",
    "argparse": "argparse_copy",
    "difflib": "difflib_copy",
    "pprint": "pprint_copy",
}


def copy_library(root: Path) -> None:
    """Copy the pure-Python stdlib modules the library driver exercises."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for module, name in LIBRARY.items():
        shutil.copy(stdlib / f"{module}.py", root / f"{name}.py")
    package = root / "json_copy"
    package.mkdir()
    for part in ("__init__", "decoder", "encoder", "scanner"):
        text = (stdlib / "json" / f"{part}.py").read_text(encoding="utf-8")
        text = text.replace("from json import scanner", "from json_copy import scanner")
        (package / f"{part}.py").write_text(text, encoding="utf-8")


# -- the comparisons ------------------------------------------------------------------


@pytest.mark.parametrize(
    "program",
    [CLASSES_DECORATORS, GENERATORS_ASYNC, CONTROL_FLOW, EDGE_CASES, THREADS],
    ids=["classes-decorators", "generators-async", "control-flow", "edge-cases", "threads"],
)
def test_single_process_programs(tmp_path: Path, program: str) -> None:
    write(tmp_path, {"prog.py": program})
    cov, lines = compare(tmp_path, ["prog.py", "some", "args"])
    assert cov.run.returncode == 0, cov.run.stderr
    assert list(lines) == ["prog.py"]
    assert lines["prog.py"]["executed_lines"]
    assert lines["prog.py"]["missing_lines"]


def test_odd_sources(tmp_path: Path) -> None:
    write(tmp_path, ODD_SOURCES)
    (tmp_path / "crlf.py").write_bytes(ODD_SOURCES["crlf.py"].encode())
    (tmp_path / "latin.py").write_bytes(LATIN_1)
    cov, lines = compare(tmp_path, ["main.py"])
    assert cov.run.stdout == "2\nok\nno extension\n"
    assert sorted(lines) == ["crlf.py", "latin.py", "main.py", "script", "tabs.py"]
    assert lines["latin.py"]["missing_lines"] == [6]


def test_standard_library_code(tmp_path: Path) -> None:
    copy_library(tmp_path)
    write(tmp_path, {"driver.py": LIBRARY_DRIVER})
    cov, lines = compare(tmp_path, ["driver.py"])
    assert cov.run.returncode == 0, cov.run.stderr
    assert sorted(lines) == sorted([
        "driver.py", "json_copy/__init__.py", "json_copy/decoder.py", "json_copy/encoder.py",
        "json_copy/scanner.py", *(f"{name}.py" for name in LIBRARY.values()),
    ])
    assert statement_count(lines) > 3500
    assert sum(len(entry["executed_lines"]) for entry in lines.values()) > 2000


def test_report_tables_are_identical(tmp_path: Path) -> None:
    """Same data, same table, character for character, in every layout."""
    copy_library(tmp_path)
    write(tmp_path, {"driver.py": LIBRARY_DRIVER})
    assert tool("coverage", "run", "driver.py", cwd=tmp_path).returncode == 0
    assert tool("mpcov", "run", "driver.py", cwd=tmp_path).returncode == 0
    for options in (
        ["-m"],
        ["--skip-covered", "--sort=-cover", "--precision=2"],
        ["--format=markdown", "-m", "--omit=json_copy/*"],
        ["--format=total", "--precision=3"],
        ["--include=*copy*", "--sort=miss"],
    ):
        theirs = tool("coverage", "report", *options, cwd=tmp_path)
        ours = tool("mpcov", "report", *options, cwd=tmp_path)
        assert (ours.returncode, ours.stdout, ours.stderr) == (
            theirs.returncode, theirs.stdout, theirs.stderr
        ), options


def test_json_documents_agree(tmp_path: Path) -> None:
    write(tmp_path, {"prog.py": CONTROL_FLOW})
    cov = with_coverage(tmp_path, ["prog.py"])
    mp = with_mpcov(tmp_path, ["prog.py"])
    assert cov.report is not None and mp.report is not None
    theirs, ours = cov.report, mp.report
    assert list(ours) == list(theirs) == ["meta", "files", "totals"]
    diff: Diff = {}
    if theirs["meta"]["format"] != ours["meta"]["format"]:
        diff["meta.format"] = (theirs["meta"]["format"], ours["meta"]["format"])
    extra_meta = [k for k in ours["meta"] if k not in theirs["meta"]]
    if extra_meta:
        diff["meta keys only in mpcov"] = extra_meta
    entry_theirs, entry_ours = theirs["files"]["prog.py"], ours["files"]["prog.py"]
    lacking = sorted(set(entry_theirs) - set(entry_ours))
    if lacking:
        diff["file keys only in coverage.py"] = lacking
    assert diff == KNOWN_DIFFERENCES["json-format"].diff
    # Everything both have is identical: shared keys in the same order, same values.
    shared = [k for k in entry_theirs if k in entry_ours]
    assert list(entry_ours) == shared
    assert {k: entry_ours[k] for k in shared} == {k: entry_theirs[k] for k in shared}
    assert ours["totals"] == theirs["totals"]
    for key in ("branch_coverage", "show_contexts"):
        assert ours["meta"][key] == theirs["meta"][key]


def test_messages(tmp_path: Path) -> None:
    write(tmp_path, {"prog.py": "if len('x') > 1:\n    print('no')\n"})
    assert tool("coverage", "run", "prog.py", cwd=tmp_path).returncode == 0
    assert tool("mpcov", "run", "prog.py", cwd=tmp_path).returncode == 0
    diff: Diff = {}
    for what, options in (("no data", ["--include=none/*"]),
                          ("fail-under", ["--fail-under=60", "--format=total"])):
        theirs = tool("coverage", "report", *options, cwd=tmp_path)
        ours = tool("mpcov", "report", *options, cwd=tmp_path)
        assert ours.returncode == theirs.returncode
        # coverage.py: everything on stdout; mpcov: the message on stderr.
        message = theirs.stdout.replace(ours.stdout, "", 1)
        diff[what] = (message, ours.stderr)
    assert diff == KNOWN_DIFFERENCES["messages-on-stderr"].diff


def test_branch_option(tmp_path: Path) -> None:
    write(tmp_path, {"prog.py": CONTROL_FLOW})
    cov = with_coverage(tmp_path, ["--branch", "prog.py"])
    mp = with_mpcov(tmp_path, ["prog.py"], "--branch")
    assert cov.report is not None and mp.report is not None
    assert mp.run.stderr == ""
    assert differences(line_sets(cov.report), line_sets(mp.report)) == {}
    # Branch figures are compared in test_branch.py.
    assert mp.report["meta"]["branch_coverage"] is cov.report["meta"]["branch_coverage"] is True


@pytest.mark.skipif(coverage.version_info < (7, 10), reason="[run] patch needs coverage 7.10")
def test_subprocess_measured_by_both(tmp_path: Path) -> None:
    # The same configuration file for both tools: mpcov accepts coverage.py's `patch`.
    write(tmp_path, {"parent.py": PARENT, "child.py": CHILD,
                     ".coveragerc": "[run]\npatch = subprocess\n"})
    cov, lines = compare(tmp_path, ["parent.py"], cores=CORES[-1:])
    assert cov.run.stdout == "child got x\n"
    assert lines["child.py"]["missing_lines"] == [6]


def test_subprocess_default(tmp_path: Path) -> None:
    write(tmp_path, {"parent.py": PARENT, "child.py": CHILD})
    compare(tmp_path, ["parent.py"], known="subprocess-default", cores=CORES[-1:])


def test_atexit_handlers(tmp_path: Path) -> None:
    write(tmp_path, {"prog.py": ATEXIT})
    cov, _ = compare(tmp_path, ["prog.py"], known="atexit")
    assert cov.run.stdout == "main\nbye\n"


def test_os_exit(tmp_path: Path) -> None:
    write(tmp_path, {"prog.py": OS_EXIT})
    cov, lines = compare(tmp_path, ["prog.py"], known="os-exit")
    assert (cov.run.returncode, lines) == (3, {})
    mp = with_mpcov(tmp_path, ["prog.py"])
    assert line_sets(mp.report)["prog.py"]["missing_lines"] == []


def test_killed_by_sigterm(tmp_path: Path) -> None:
    write(tmp_path, {"prog.py": SIGTERM})
    cov, lines = compare(tmp_path, ["prog.py"], known="sigterm")
    assert (cov.run.returncode, lines) == (-15, {})
    mp = with_mpcov(tmp_path, ["prog.py"])
    assert line_sets(mp.report)["prog.py"]["missing_lines"] == [8]


IDENTICAL_FUNCTIONS = {
    "main.py": "import a, b\na.f()\nb.f()\nb.g()\n",
    "a.py": "def f():\n    return 1\n",
    "b.py": "def f():\n    return 1\n\n\ndef g():\n    return 2\n",
}


@pytest.mark.parametrize(
    "core",
    [
        "settrace",
        *(["monitoring"] if "monitoring" in CORES else []),
    ],
)
def test_identical_functions_in_two_files(tmp_path: Path, core: str) -> None:
    write(tmp_path, IDENTICAL_FUNCTIONS)
    compare(tmp_path, ["main.py"], cores=(core,))


def test_every_known_difference_is_used() -> None:
    """Each entry is checked by a test above (json-format and messages-on-stderr
    by their own tests); none is left over from a fixed difference."""
    used = {"atexit", "subprocess-default", "os-exit", "sigterm", "json-format",
            "messages-on-stderr"}
    assert set(KNOWN_DIFFERENCES) == used
    assert all(len(d.reason) > 40 for d in KNOWN_DIFFERENCES.values())
