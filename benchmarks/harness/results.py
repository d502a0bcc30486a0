"""Medians, ratios, the text table, the budget summary and the JSON results."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from harness.measure import Sample, geomean, median
from harness.workloads import Workload


@dataclass(frozen=True)
class Row:
    """The medians of one (workload, item, tool) over its repetitions.

    `ratio` is the CPU median over the baseline tool's CPU median for the same
    item (NaN where the workload has no baseline); times are in seconds.
    """

    workload: str
    item: str
    tool: str
    runs: int
    failed: int
    cpu: float
    wall: float
    rss_mb: float
    ratio: float
    unit: str
    size: int


def summarize(workload: Workload, samples: Mapping[tuple[str, str], Sequence[Sample]]) -> list[Row]:
    """One row per case of `workload`, from `samples[(item, tool)]`."""
    def med(item: str, tool: str, attr: str) -> float:
        good = [s for s in samples.get((item, tool), ()) if s.error is None]
        return median([getattr(s, attr) for s in good])

    rows = []
    for case in workload.cases:
        runs = samples.get((case.item, case.tool), ())
        cpu = med(case.item, case.tool, "cpu")
        base = med(case.item, workload.baseline, "cpu") if workload.baseline else math.nan
        rows.append(Row(
            workload.name, case.item, case.tool, len(runs),
            sum(1 for s in runs if s.error), cpu, med(case.item, case.tool, "wall"),
            med(case.item, case.tool, "rss_mb"), cpu / base if base > 0 else math.nan,
            workload.unit, case.size,
        ))
    return rows


def geomeans(rows: Sequence[Row], items: Sequence[str]) -> dict[str, float]:
    """Per tool, the geometric mean of its CPU ratios over the cpu workload's `items`."""
    by_tool: dict[str, list[float]] = {}
    for row in rows:
        if row.workload == "cpu" and row.item in items:
            by_tool.setdefault(row.tool, []).append(row.ratio)
    return {tool: geomean(r) if len(r) == len(items) else math.nan for tool, r in by_tool.items()}


def _num(value: float, scale: float = 1.0, digits: int = 3) -> str:
    return "-" if math.isnan(value) else f"{value * scale:.{digits}f}"


def table(rows: Sequence[Row], means: Mapping[str, float], geo_items: Sequence[str]) -> str:
    """The plain-text table: medians of CPU and wall time, ratio, peak RSS."""
    head = ("workload", "item", "tool", "runs", "CPU", "ratio", "wall", "peak RSS MB")
    lines = [head]
    for r in rows:
        scale, unit = (1000.0, " ms") if r.unit == "ms" else (1.0, " s")
        runs = f"{r.runs}" + (f" ({r.failed} FAILED)" if r.failed else "")
        lines.append((r.workload, r.item, r.tool, runs, _num(r.cpu, scale) + unit,
                      _num(r.ratio, digits=2) + ("x" if not math.isnan(r.ratio) else ""),
                      _num(r.wall, scale) + unit, _num(r.rss_mb, digits=1)))
    for tool, value in means.items():
        lines.append(("cpu", f"geomean({','.join(geo_items)})", tool, "", "",
                      _num(value, digits=2) + ("x" if not math.isnan(value) else ""), "", ""))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = []
    for n, line in enumerate(lines):
        pairs = enumerate(zip(line, widths, strict=True))
        cells = [c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in pairs]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


@dataclass(frozen=True)
class Verdict:
    """One budget: what it is, the measured number, and PASS, MISS or n/a."""

    budget: str
    measured: str
    status: str


def _find(rows: Sequence[Row], workload: str, tool: str, size: int | None = None) -> list[Row]:
    return [r for r in rows if r.workload == workload and r.tool == tool
            and (size is None or r.size == size)]


def _versus(rows: Sequence[Row], means: Mapping[str, float], tool: str, other: str,
            per_item: bool) -> tuple[float, str]:
    """How `tool` compares with `other`: the largest ratio of their CPU ratios, and a text.

    Compared per workload (the cpu geomean, the suite), or with `per_item` per
    cpu benchmark (all of them, not only the geomean's) and the suite. The
    first number is below 1 when `tool` is cheaper everywhere; the text names the
    comparison least favourable to `tool`.
    """
    pairs: list[tuple[str, float, float]] = []
    if not per_item and not math.isnan(means.get(tool, math.nan) / means.get(other, math.nan)):
        pairs.append(("cpu geomean", means[tool], means[other]))
    for row in rows:
        if row.tool != tool or row.workload not in ("cpu", "suite"):
            continue
        if row.workload == "cpu" and not per_item:
            continue
        for o in _find(rows, row.workload, other):
            if o.item == row.item and not math.isnan(row.ratio / o.ratio):
                pairs.append((row.item, row.ratio, o.ratio))
    if not pairs:
        return math.nan, ""
    item, mine, theirs = max(pairs, key=lambda p: p[1] / p[2])
    below = sum(1 for _, a, b in pairs if a < b)
    return mine / theirs, (f"{below}/{len(pairs)} lower; worst: {item} "
                           f"{mine:.2f}x vs {theirs:.2f}x")


def budgets(rows: Sequence[Row], means: Mapping[str, float], version: tuple[int, int],
            limits: Mapping[str, float]) -> list[Verdict]:
    """Judge the issue's budgets against this Python's rows."""
    out = []

    def judge(budget: str, value: float, ok: bool, measured: str, applies: bool = True) -> None:
        status = "n/a" if math.isnan(value) else ("PASS" if ok else "MISS")
        if not applies and status != "n/a":
            status, measured = "info", f"{measured}; not this Python's budget ({status} if it were)"
        out.append(Verdict(budget, measured, status))

    g, env = means.get("mpcov", math.nan), means.get("mpcov-env", math.nan)
    judge(f"cpu geomean, mpcov run, line <= {limits['cpu_geomean']:.2f}x (3.12/3.13)", g,
          g <= limits["cpu_geomean"],
          f"{_num(g, digits=3)}x (tracing alone, mpcov-env: {_num(env, digits=3)}x)",
          version >= (3, 12))
    gb, envb = means.get("mpcov-branch", math.nan), means.get("mpcov-env-branch", math.nan)
    judge(f"cpu geomean, mpcov run, branch <= {limits['cpu_geomean_branch']:.2f}x (3.12/3.13)",
          gb, gb <= limits["cpu_geomean_branch"],
          f"{_num(gb, digits=3)}x (tracing alone, mpcov-env-branch: {_num(envb, digits=3)}x)",
          version >= (3, 12))
    closest, text = _versus(rows, means, "mpcov-branch", "slipcover-branch", per_item=True)
    judge("branch: mpcov run below SlipCover on every cpu item and the suite (3.12/3.13)",
          closest, closest < 1, text, version >= (3, 12))
    closest, text = _versus(rows, means, "mpcov", "coverage", per_item=False)
    judge("line: mpcov run <= coverage.py's C tracer, cpu geomean and suite (3.11)",
          closest, closest <= 1, text, version < (3, 12))
    closest, text = _versus(rows, means, "mpcov-branch", "coverage-branch", per_item=False)
    judge("branch: mpcov run <= coverage.py's C tracer, cpu geomean and suite (3.11)",
          closest, closest <= 1, text, version < (3, 12))
    for tool, mode in (("mpcov", "line"), ("mpcov-branch", "branch")):
        value = means.get(tool, math.nan)
        judge(f"cpu geomean, mpcov run, {mode} <= {limits['cpu_geomean_311']:.2f}x "
              "(3.11 stretch: bytecode probes)", value, value <= limits["cpu_geomean_311"],
              f"{_num(value, digits=3)}x", version < (3, 12))
    base = _find(rows, "startup", "baseline")
    for tool, key, word in (("mpcov-inactive", "startup_inactive_ms", "<"),
                            ("mpcov-active", "startup_active_ms", "<=")):
        found = _find(rows, "startup", tool)
        value = found[0].cpu - base[0].cpu if found and base else math.nan
        wall = found[0].wall - base[0].wall if found and base else math.nan
        limit = limits[key]
        ok = value < limit / 1000 if word == "<" else value <= limit / 1000
        judge(f"start-up {tool[6:]} overhead {word} {limit:g} ms (CPU)", value, ok,
              f"{_num(value, 1000, 2)} ms CPU ({_num(wall, 1000, 2)} ms wall)")
    anchor = _find(rows, "startup", "bare-active")
    active = _find(rows, "startup", "mpcov-active")
    if anchor and active and base:
        floor = anchor[0].cpu - base[0].cpu
        ours = active[0].cpu - base[0].cpu
        out.append(Verdict(
            "start-up active overhead vs the bare sys.monitoring bootstrap (the floor)",
            f"{_num(ours, 1000, 2)} ms vs {_num(floor, 1000, 2)} ms CPU "
            f"({_num(ours / floor if floor > 0 else math.nan, digits=1)}x the floor)", "info"))
    for size, key in ((1000, "combine_1000_s"), (10000, "combine_10000_s")):
        found = _find(rows, "combine", "mpcov", size)
        value = found[0].wall if found else math.nan
        judge(f"combine {size:,} fragments < {limits[key]:g} s (wall)", value,
              value < limits[key], f"{_num(value, digits=2)} s wall, "
              f"{_num(found[0].cpu if found else math.nan, digits=2)} s CPU, "
              f"{_num(found[0].rss_mb if found else math.nan, digits=0)} MB peak")
    deltas = [(r.rss_mb - b.rss_mb, r.item) for r in _find(rows, "cpu", "mpcov-env")
              for b in _find(rows, "cpu", "python") if b.item == r.item]
    worst = max(deltas) if deltas else (math.nan, "")
    judge(f"peak RSS overhead per measured process < {limits['rss_mb']:g} MB", worst[0],
          worst[0] < limits["rss_mb"],
          f"{_num(worst[0], digits=1)} MB ({worst[1]}, measured process alone)")
    return out


def budget_text(verdicts: Sequence[Verdict]) -> str:
    """The budget summary, one line each; budgets of workloads not run are left out."""
    verdicts = [v for v in verdicts if v.status != "n/a"] or list(verdicts)
    width = max(len(v.budget) for v in verdicts)
    return "\n".join(f"{v.status:<5} {v.budget.ljust(width)}  {v.measured}" for v in verdicts)


def as_json(rows: Sequence[Row], means: Mapping[str, float], verdicts: Sequence[Verdict],
            samples: Mapping[str, Mapping[tuple[str, str], Sequence[Sample]]]) -> dict[str, object]:
    """Machine-readable results for one Python (NaN becomes null)."""
    def clean(value: object) -> object:
        return None if isinstance(value, float) and math.isnan(value) else value

    return {
        "rows": [{k: clean(v) for k, v in asdict(r).items()} for r in rows],
        "geomean": {k: clean(v) for k, v in means.items()},
        "budgets": [asdict(v) for v in verdicts],
        "samples": [
            {"workload": w, "item": item, "tool": tool,
             "runs": [{k: clean(v) for k, v in asdict(s).items()} for s in runs]}
            for w, by_case in samples.items() for (item, tool), runs in by_case.items()
        ],
    }
