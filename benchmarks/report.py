"""Turning runs into medians, the goals, the floors of latency-bound runs, tables."""

from __future__ import annotations

import dataclasses
import math
import statistics
import typing as t

if t.TYPE_CHECKING:
    from benchmarks.measure import Measurement

#: The benchmark's goals (docs/performance.md).
CPU_RATIO_LIMIT = 1.5
WALL_RATIO_LIMIT = 1.1
RSS_RATIO_LIMIT = 1.2
RSS_LIMIT_MB = 100.0
#: A run with nothing to read (the ``startup`` scenario), wall time.
STARTUP_LIMIT_S = 0.6
#: A latency-bound run's wall time against its floor (:class:`Floor`): one project read
#: page by page, and many projects with nothing new, read some at once.
ONE_PROJECT_LIMIT, NOTHING_NEW_LIMIT = 1.15, 1.5


@dataclasses.dataclass
class ClientResult:
    """Every run of one client in one scenario, and their medians."""

    client: str
    items: int
    runs: list[Measurement] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)

    def _median(self, values: t.Iterable[float]) -> float:
        collected = list(values)
        return statistics.median(collected) if collected else float("nan")

    @property
    def good_runs(self) -> list[Measurement]:
        return [run for run in self.runs if run.ok]

    @property
    def wall_s(self) -> float:
        return self._median(run.wall_s for run in self.good_runs)

    @property
    def cpu_s(self) -> float:
        return self._median(run.cpu_s for run in self.good_runs)

    @property
    def cpu_us_per_record(self) -> float:
        if not self.items:
            return float("nan")
        return self._median(run.cpu_s / self.items * 1e6 for run in self.good_runs)

    @property
    def records_per_s(self) -> float:
        return self.items / self.wall_s if self.good_runs and self.items else float("nan")

    @property
    def peak_rss_mb(self) -> float:
        return self._median(run.peak_rss_mb for run in self.good_runs)

    @property
    def server_cpu_s(self) -> float:
        return self._median(
            run.server_cpu_s for run in self.good_runs if run.server_cpu_s is not None
        )

    @property
    def others_cpu_s(self) -> float:
        return self._median(
            run.others_cpu_s for run in self.good_runs if run.others_cpu_s is not None
        )

    @property
    def requests(self) -> float:
        """The requests the server received during a run (median), by its own count."""
        return self._median(
            run.requests["total"] for run in self.good_runs if run.requests is not None
        )

    @property
    def worst_disturbance(self) -> float:
        """The largest share of a core others used during one run (0.5 = half a core)."""
        shares = [
            run.others_cpu_s / run.wall_s
            for run in self.good_runs
            if run.others_cpu_s is not None and run.wall_s > 0
        ]
        return max(shares, default=0.0)

    def summary(self) -> dict[str, t.Any]:
        return {
            "client": self.client,
            "items": self.items,
            "runs": len(self.runs),
            "good_runs": len(self.good_runs),
            "records_per_s": self.records_per_s,
            "cpu_us_per_record": self.cpu_us_per_record,
            "cpu_s": self.cpu_s,
            "wall_s": self.wall_s,
            "peak_rss_mb": self.peak_rss_mb,
            "server_cpu_s": self.server_cpu_s,
            "others_cpu_s": self.others_cpu_s,
            "requests": self.requests,
            "errors": self.errors,
            "all_runs": [dataclasses.asdict(run) for run in self.runs],
        }


@dataclasses.dataclass
class ScenarioResult:
    """One scenario: its data and latency, and a result per client (in run order)."""

    key: str
    title: str
    latency_ms: float
    projects: int
    per_project: int
    clients: dict[str, ClientResult] = dataclasses.field(default_factory=dict)
    #: Records a run may write beyond ``items`` (a run from state re-reads a few).
    rereads: int = 0

    @property
    def items(self) -> int:
        return self.projects * self.per_project


@dataclasses.dataclass
class Goal:
    """One of the issue's goals, evaluated."""

    name: str
    measured: str
    target: str
    ratio: float
    passed: bool | None  # None: not measured in this run
    info: bool = False  # a figure shown beside the goals, with no target

    @property
    def verdict(self) -> str:
        if self.info:
            return "info"
        return {True: "PASS", False: "FAIL", None: "n/a"}[self.passed]


@dataclasses.dataclass(frozen=True)
class Floor:
    """The least wall time a latency-bound run can take, and the tap's.

    ``start-up + ceil(requests / concurrency) x latency``: the tap's own fixed cost (its
    wall time for a run with nothing to read, at 0 ms, measured in the same bench run),
    plus the requests it must send, ``concurrency`` at a time, each waiting ``latency``.
    """

    scenario: str
    title: str
    requests: int  # the requests the floor counts (pages, or every request sent)
    counted_as: str  # what ``requests`` are, for the table
    concurrency: int
    latency_ms: float
    startup_s: float
    tap_wall_s: float
    sent: float = math.nan  # the requests the fake API counted in the tap's run

    @property
    def floor_s(self) -> float:
        waits = math.ceil(self.requests / self.concurrency) if self.concurrency else math.nan
        return self.startup_s + waits * self.latency_ms / 1000

    @property
    def ratio(self) -> float:
        return _ratio(self.tap_wall_s, self.floor_s)


def _ratio(numerator: float, denominator: float) -> float:
    if denominator and not math.isnan(denominator) and not math.isnan(numerator):
        return numerator / denominator
    return float("nan")


def _client(scenarios: dict[str, ScenarioResult], key: str, client: str) -> ClientResult | None:
    scenario = scenarios.get(key)
    result = scenario.clients.get(client) if scenario else None
    return result if result and result.good_runs else None


def evaluate_goals(
    scenarios: dict[str, ScenarioResult],
    *,
    tap: str,
    sequential: str,
    concurrent: str,
    floors: t.Mapping[str, Floor] | None = None,
    imports: t.Mapping[str, float] | None = None,
) -> list[Goal]:
    """The performance goals, from whatever scenarios ran (n/a for the others)."""
    floors = floors or {}
    goals = [
        _cpu_goal(scenarios, tap, sequential),
        _wall_goal(scenarios, tap, concurrent),
        _rss_goal(scenarios, tap),
        _startup_goal(scenarios, tap, sequential),
        _floor_goal(
            "5. one project: tap wall / floor", floors.get("one_project"), ONE_PROJECT_LIMIT
        ),
        _floor_goal(
            "6. nothing new: tap wall / floor", floors.get("nothing_new"), NOTHING_NEW_LIMIT
        ),
    ]
    if imports:
        goals.append(_import_info(imports))
    return goals


def _startup_goal(scenarios: dict[str, ScenarioResult], tap: str, sequential: str) -> Goal:
    name = "4. start-up: tap wall, nothing to read, 0 ms"
    target = f"<= {STARTUP_LIMIT_S:g} s"
    tap_run = _client(scenarios, "startup", tap)
    if not tap_run:
        return Goal(name, "-", target, math.nan, None)
    loop = _client(scenarios, "startup", sequential)
    beside = (
        f" (loop {loop.wall_s:.2f} s, {_ratio(tap_run.wall_s, loop.wall_s):.1f}x)" if loop else ""
    )
    measured = f"{tap_run.wall_s:.2f} s{beside}"
    ratio = tap_run.wall_s / STARTUP_LIMIT_S
    return Goal(name, measured, target, ratio, tap_run.wall_s <= STARTUP_LIMIT_S)


def _floor_goal(name: str, floor: Floor | None, limit: float) -> Goal:
    target = f"<= {limit}x"
    if floor is None or math.isnan(floor.ratio):
        return Goal(name, "-", target, math.nan, None)
    measured = f"{floor.tap_wall_s:.2f} / {floor.floor_s:.2f} s"
    return Goal(name, measured, target, floor.ratio, floor.ratio <= limit)


def _import_info(imports: t.Mapping[str, float]) -> Goal:
    """What importing costs, net of a bare interpreter's start (medians of a few runs)."""
    bare = imports.get("pass", math.nan)
    parts = [
        f"{name} +{seconds - bare:.2f} s" for name, seconds in imports.items() if name != "pass"
    ]
    measured = ", ".join(parts) + f" (python -c pass {bare:.2f} s)"
    return Goal("import cost, wall over a bare python", measured, "-", math.nan, None, info=True)


def _cpu_goal(scenarios: dict[str, ScenarioResult], tap: str, sequential: str) -> Goal:
    name = "1. CPU per record: tap / sequential loop, 0 ms"
    target = f"<= {CPU_RATIO_LIMIT}x"
    tap_run, loop = _client(scenarios, "cpu", tap), _client(scenarios, "cpu", sequential)
    if not (tap_run and loop):
        return Goal(name, "-", target, math.nan, None)
    ratio = _ratio(tap_run.cpu_us_per_record, loop.cpu_us_per_record)
    measured = f"{tap_run.cpu_us_per_record:.0f} / {loop.cpu_us_per_record:.0f} us"
    return Goal(name, measured, target, ratio, ratio <= CPU_RATIO_LIMIT)


def _wall_goal(scenarios: dict[str, ScenarioResult], tap: str, concurrent: str) -> Goal:
    per_page = (
        f", {scenarios['latency'].latency_ms:g} ms per page" if "latency" in scenarios else ""
    )
    name = f"2. wall: tap / {concurrent}{per_page}"
    target = f"<= {WALL_RATIO_LIMIT}x"
    tap_run, loop = _client(scenarios, "latency", tap), _client(scenarios, "latency", concurrent)
    if not (tap_run and loop):
        return Goal(name, "-", target, math.nan, None)
    ratio = _ratio(tap_run.wall_s, loop.wall_s)
    measured = f"{tap_run.wall_s:.1f} / {loop.wall_s:.1f} s"
    return Goal(name, measured, target, ratio, ratio <= WALL_RATIO_LIMIT)


def _rss_goal(scenarios: dict[str, ScenarioResult], tap: str) -> Goal:
    sizes = [f"{scenarios[k].items // 1000}k" for k in ("rss_large", "rss_small") if k in scenarios]
    name = f"3. peak RSS: tap at {' / '.join(sizes) or 'large / small'} items"
    target = f"<= {RSS_RATIO_LIMIT}x and < {RSS_LIMIT_MB:.0f} MB"
    small, large = _client(scenarios, "rss_small", tap), _client(scenarios, "rss_large", tap)
    if not (small and large):
        return Goal(name, "-", target, math.nan, None)
    ratio = _ratio(large.peak_rss_mb, small.peak_rss_mb)
    measured = f"{large.peak_rss_mb:.0f} / {small.peak_rss_mb:.0f} MB"
    passed = ratio <= RSS_RATIO_LIMIT and large.peak_rss_mb < RSS_LIMIT_MB
    return Goal(name, measured, target, ratio, passed)


COLUMNS = (
    "scenario",
    "client",
    "runs",
    "records",
    "records/s",
    "CPU us/record",
    "CPU s",
    "wall s",
    "peak RSS MB",
    "server CPU s",
    "others' CPU s",
)


def table_rows(scenarios: t.Iterable[ScenarioResult]) -> list[list[str]]:
    rows = []
    for scenario in scenarios:
        for result in scenario.clients.values():
            failed = len(result.runs) - len(result.good_runs)
            runs = f"{len(result.good_runs)}" + (f" ({failed} failed)" if failed else "")
            rows.append(
                [
                    scenario.title,
                    result.client,
                    runs,
                    f"{result.items:,}",
                    _number(result.records_per_s, "{:,.0f}"),
                    _number(result.cpu_us_per_record, "{:.1f}"),
                    _number(result.cpu_s, "{:.2f}"),
                    _number(result.wall_s, "{:.2f}"),
                    _number(result.peak_rss_mb, "{:.1f}"),
                    _number(result.server_cpu_s, "{:.2f}"),
                    _number(result.others_cpu_s, "{:.2f}"),
                ]
            )
    return rows


def goal_rows(goals: t.Iterable[Goal]) -> list[list[str]]:
    return [
        [
            goal.name,
            goal.measured,
            f"{goal.ratio:.2f}x" if goal.passed is not None and not goal.info else "-",
            goal.target,
            goal.verdict,
        ]
        for goal in goals
    ]


GOAL_COLUMNS = ("goal", "measured", "ratio", "target", "result")

FLOOR_COLUMNS = (
    "scenario",
    "requests",
    "counted as",
    "sent",
    "concurrency",
    "latency ms",
    "start-up s",
    "floor s",
    "tap wall s",
    "tap / floor",
)


def floor_rows(floors: t.Iterable[Floor]) -> list[list[str]]:
    return [
        [
            floor.title,
            f"{floor.requests:,}",
            floor.counted_as,
            _number(floor.sent, "{:,.0f}"),
            str(floor.concurrency),
            f"{floor.latency_ms:g}",
            _number(floor.startup_s, "{:.2f}"),
            _number(floor.floor_s, "{:.2f}"),
            _number(floor.tap_wall_s, "{:.2f}"),
            _number(floor.ratio, "{:.2f}x"),
        ]
        for floor in floors
    ]


def text_table(header: t.Sequence[str], rows: list[list[str]]) -> str:
    """A plain aligned table: numbers right-aligned, text left-aligned."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=False)]
    numeric = [
        bool(rows) and all(_looks_numeric(row[n]) for row in rows) for n in range(len(header))
    ]

    def line(cells: t.Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric, strict=False)
        ).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


#: The README's table leaves out the columns that only help judge a run.
README_COLUMNS = (
    "scenario",
    "client",
    "records/s",
    "CPU us/record",
    "wall s",
    "peak RSS MB",
)


def markdown_table(
    header: t.Sequence[str], rows: list[list[str]], keep: t.Sequence[str] | None = None
) -> str:
    """A GitHub table, optionally of some columns only; numbers right-aligned."""
    picked = [n for n, name in enumerate(header) if keep is None or name in keep]
    rows = [[row[n] for n in picked] for row in rows]
    names = [header[n] for n in picked]
    align = [
        "---:" if rows and all(_looks_numeric(row[n]) for row in rows) else "---"
        for n in range(len(names))
    ]
    lines = ["| " + " | ".join(names) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _number(value: float, form: str) -> str:
    return "-" if math.isnan(value) else form.format(value)


def _looks_numeric(cell: str) -> bool:
    """``12,345``, ``3.5``, ``1.20x``, ``nan``, ``-``, or a run count like ``2 (1 failed)``."""
    head = cell.split(" (", maxsplit=1)[0].removesuffix("x").replace(",", "").replace(".", "", 1)
    return head.isdigit() or head in {"nan", "-"}
