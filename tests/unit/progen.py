"""Random Python programs full of branches, for differential tests against coverage.py.

`make_program(seed)` writes a module of a few functions built from every
statement that can branch (``if``/``elif``/``else``, ``for`` and ``while``
with ``break``/``continue``/``else``, ``match``, ``try``/``except``/
``finally``, ``with``, early ``return``, one-line bodies, functions and
lambdas defined on one line, generators), then
calls each function with a handful of arguments. The same seed always gives
the same program, and every program terminates: loops are bounded.
"""

from __future__ import annotations

import random

_CONDITIONS = ("x > {n}", "x == {n}", "x % {m} == 0", "not x", "x < {n} and x != {m}", "flag")


class _Gen:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.lines: list[str] = []
        self.loop_depth = 0

    def cond(self) -> str:
        template = self.rng.choice(_CONDITIONS)
        return template.format(n=self.rng.randint(0, 6), m=self.rng.randint(2, 4))

    def emit(self, indent: int, text: str) -> None:
        self.lines.append("    " * indent + text)

    def simple(self, indent: int) -> None:
        choice = self.rng.random()
        if choice < 0.45:
            self.emit(indent, f"t += {self.rng.randint(1, 3)}")
        elif choice < 0.62:
            self.emit(indent, "x += 1")
        elif choice < 0.72:
            self.emit(indent, "t = (t +\n" + "    " * (indent + 1) + "1)")
        elif choice < 0.86:
            self.emit(indent, "log.append(t)")
        else:
            self.scope(indent)

    def scope(self, indent: int) -> None:
        """A function or lambda defined on one line, called or not."""
        name = f"h{len(self.lines)}"
        n = self.rng.randint(1, 3)
        kind = self.rng.random()
        if kind < 0.45:
            self.emit(indent, f"def {name}(v): return v + {n}")
        elif kind < 0.6:
            self.emit(indent, f"def {name}(v): w = v * {n}; return w")
        elif kind < 0.75:
            self.emit(indent, f'def {name}(v): "doc"; return v')
        else:
            self.emit(indent, f"{name} = lambda v: v - {n}")
        if self.rng.random() < 0.6:
            self.emit(indent, f"t += {name}(x)")

    def jump(self) -> str | None:
        options = ["return t"]
        if self.loop_depth:
            options += ["break", "continue"]
        options.append("raise ValueError(x)")
        return self.rng.choice(options)

    def block(self, indent: int, depth: int, size: int | None = None) -> None:
        count = size if size is not None else self.rng.randint(1, 3)
        for _ in range(count):
            self.statement(indent, depth)

    def statement(self, indent: int, depth: int) -> None:
        r = self.rng.random()
        if depth <= 0 or r < 0.3:
            self.simple(indent)
            return
        if r < 0.45:
            self.if_(indent, depth)
        elif r < 0.55:
            self.one_liner(indent)
        elif r < 0.67:
            self.for_(indent, depth)
        elif r < 0.75:
            self.while_(indent, depth)
        elif r < 0.83:
            self.match(indent, depth)
        elif r < 0.92:
            self.try_(indent, depth)
        else:
            self.with_(indent, depth)

    def maybe_jump(self, indent: int) -> None:
        if self.rng.random() < 0.25:
            jump = self.jump()
            if jump:
                self.emit(indent, jump)

    def if_(self, indent: int, depth: int) -> None:
        self.emit(indent, f"if {self.cond()}:")
        self.block(indent + 1, depth - 1)
        self.maybe_jump(indent + 1)
        for _ in range(self.rng.randint(0, 2)):
            self.emit(indent, f"elif {self.cond()}:")
            self.block(indent + 1, depth - 1)
        if self.rng.random() < 0.4:
            self.emit(indent, "else:")
            self.block(indent + 1, depth - 1)

    def one_liner(self, indent: int) -> None:
        body = self.jump() if self.rng.random() < 0.6 else "t += 1"
        keyword = "if"
        if self.loop_depth and self.rng.random() < 0.2:
            keyword = "while"
            body = "x -= 1; break" if self.rng.random() < 0.5 else "x -= 1"
        # A one-line `while` only counts down, so it always ends.
        test = f"x > {self.rng.randint(0, 6)}" if keyword == "while" else self.cond()
        self.emit(indent, f"{keyword} {test}: {body}")
        if self.rng.random() < 0.3 and keyword == "if":
            self.emit(indent, "else:")
            self.block(indent + 1, 0, 1)

    def for_(self, indent: int, depth: int) -> None:
        var = f"i{indent}"
        self.emit(indent, f"for {var} in range({self.rng.randint(0, 3)}):")
        self.loop_depth += 1
        self.block(indent + 1, depth - 1)
        self.maybe_jump(indent + 1)
        self.loop_depth -= 1
        if self.rng.random() < 0.3:
            self.emit(indent, "else:")
            self.block(indent + 1, depth - 1)

    def while_(self, indent: int, depth: int) -> None:
        var = f"w{indent}"
        self.emit(indent, f"{var} = {self.rng.randint(0, 3)}")
        self.emit(indent, f"while {var} > 0:")
        self.emit(indent + 1, f"{var} -= 1")
        self.loop_depth += 1
        self.block(indent + 1, depth - 1)
        self.loop_depth -= 1
        if self.rng.random() < 0.3:
            self.emit(indent, "else:")
            self.block(indent + 1, depth - 1)

    def match(self, indent: int, depth: int) -> None:
        self.emit(indent, "match x % 4:")
        for value in self.rng.sample(range(4), self.rng.randint(1, 3)):
            if self.rng.random() < 0.3:
                self.emit(indent + 1, f"case {value}: t += {value}")
            else:
                self.emit(indent + 1, f"case {value}:")
                self.block(indent + 2, depth - 1)
        if self.rng.random() < 0.3:
            self.emit(indent + 1, "case _:")
            self.block(indent + 2, depth - 1)

    def try_(self, indent: int, depth: int) -> None:
        self.emit(indent, "try:")
        self.block(indent + 1, depth - 1)
        kind = self.rng.random()
        if kind < 0.7:
            self.emit(indent, "except ValueError:")
            self.block(indent + 1, depth - 1)
        if kind > 0.5:
            self.emit(indent, "finally:")
            self.block(indent + 1, depth - 1)

    def with_(self, indent: int, depth: int) -> None:
        self.emit(indent, "with ctx():")
        self.block(indent + 1, depth - 1)

    def function(self, name: str) -> None:
        generator = self.rng.random() < 0.15
        self.emit(0, f"def {name}(x, flag=False):")
        self.emit(1, "t = 0")
        self.block(1, 3, self.rng.randint(2, 5))
        if generator:
            self.emit(1, "yield t")
        self.emit(1, "return t")


def make_program(seed: int, functions: int = 3) -> str:
    """The source of random branchy program number `seed`."""
    gen = _Gen(seed)
    gen.emit(0, "import contextlib")
    gen.emit(0, "log = []")
    gen.emit(0, "ctx = contextlib.nullcontext")
    names = [f"f{n}" for n in range(functions)]
    for name in names:
        gen.function(name)
    gen.emit(0, f"for func in ({', '.join(names)},):")
    gen.emit(1, f"for arg in {sorted(gen.rng.sample(range(-2, 9), 4))}:")
    gen.emit(2, "for flag in (False, True):")
    gen.emit(3, "try:")
    gen.emit(4, "result = func(arg, flag)")
    gen.emit(4, "if hasattr(result, '__next__'):")
    gen.emit(5, "list(result)")
    gen.emit(3, "except ValueError:")
    gen.emit(4, "pass")
    return "\n".join(gen.lines) + "\n"
