"""``make bench``: tap-usersnap against a plain ``requests`` loop, on the same data, same run.

Scenarios:

1. ``cpu``: 0 ms latency, 5 projects x 10k items of ~1.9 KB: CPU per record.
2. ``latency``: 30 ms per request, the same data: wall time.
3. ``rss_small`` / ``rss_large``: the tap's peak RSS at 20k and at 200k items.

The fake API runs in its own process with pre-rendered pages; every client run is its own
subprocess measured by the kernel (see :mod:`benchmarks.measure`). Goal-deciding clients
run ``--repeat`` times (medians are reported); the others ``--info-repeat`` times.
Results go to ``benchmarks/results/<name>.json`` and ``<name>.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

from benchmarks.measure import (
    Measurement,
    harness_peak_rss_mb,
    machine_busy_seconds,
    own_cpu_seconds,
    run_measured,
)
from benchmarks.report import (
    COLUMNS,
    GOAL_COLUMNS,
    README_COLUMNS,
    ClientResult,
    Goal,
    ScenarioResult,
    evaluate_goals,
    goal_rows,
    markdown_table,
    table_rows,
    text_table,
)
from benchmarks.server import FakeServer

REPO = Path(__file__).resolve().parents[1]
TAP = "tap-usersnap"
#: Others using more than this share of a core during a run make its wall time suspect.
BUSY_MACHINE_SHARE = 0.15
#: A start_date after every benchmark item (they start in 2023, a minute apart): a run that
#: reads nothing, to cost the startup. Now, as the tap refuses a start_date in the future.
AFTER_ALL_DATA = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass(frozen=True)
class Client:
    """A client to measure: how to start it, and how many output lines prove it finished."""

    name: str
    concurrency: int  # baseline threads; 0 for the tap
    is_tap: bool = False

    def command(self, options: argparse.Namespace, config_path: Path) -> list[str]:
        if self.is_tap:
            return [str(options.tap_executable), "--config", str(config_path)]
        return [
            sys.executable,
            "-m",
            "benchmarks.baseline",
            "--config",
            str(config_path),
            "--concurrency",
            str(self.concurrency),
        ]

    def check(self, run: Measurement, projects: int, items: int) -> str | None:
        """Why the run does not count (crashed, or lost/duplicated records), else None."""
        if not run.ok:
            return f"exit code {run.returncode}: {run.stderr_tail.strip()[-600:]}"
        # The tap also emits one RECORD per project (the projects stream).
        got, want = (run.record_messages, items + projects) if self.is_tap else (run.lines, items)
        if got != want:
            return f"{got} records written, expected {want}"
        return None


def baseline(concurrency: int) -> Client:
    if concurrency <= 1:
        return Client("requests loop, sequential", 1)
    return Client(f"requests loop, {concurrency} threads", concurrency)


@dataclasses.dataclass(frozen=True)
class Stage:
    """A running fake API and the config files that point clients at it."""

    server: FakeServer
    config: Path

    def config_with(self, name: str, **settings: t.Any) -> Path:
        """A copy of the config with some settings changed (for one scenario)."""
        path = self.config.with_name(f"{self.config.stem}-{name}.json")
        path.write_text(json.dumps({**json.loads(self.config.read_text()), **settings}))
        return path


@dataclasses.dataclass
class Plan:
    """The sizes and repetitions of one benchmark run."""

    projects: int
    per_project: int
    latency_ms: float
    rss_items: tuple[int, int]
    repeat: int
    info_repeat: int
    rss_repeat: int


def make_plan(options: argparse.Namespace) -> Plan:
    if options.quick:
        return Plan(5, 400, options.latency_ms, (2_000, 20_000), 1, 1, 1)
    return Plan(
        options.projects,
        options.per_project,
        options.latency_ms,
        (options.rss_small, options.rss_large),
        options.repeat,
        options.info_repeat,
        options.rss_repeat,
    )


class Bench:
    """Runs the scenarios and collects their results."""

    def __init__(self, options: argparse.Namespace, plan: Plan) -> None:
        self.options = options
        self.plan = plan
        self.scenarios: dict[str, ScenarioResult] = {}
        self.tap = Client(TAP, 0, is_tap=True)
        self.sequential = baseline(1)
        self.concurrent = baseline(options.concurrency)
        self._tmp = tempfile.TemporaryDirectory(prefix="tap-usersnap-bench-")

    def close(self) -> None:
        self._tmp.cleanup()

    # ------------------------------------------------------------------ scenarios

    def run(self) -> None:
        wanted = set(self.options.scenarios.split(","))
        plan = self.plan
        if wanted & {"cpu", "latency"}:
            with self._stage(plan.projects, plan.per_project, eager=True) as stage:
                self._warm_up()
                if "cpu" in wanted:
                    self._latency_scenario(stage, "cpu", 0.0, self.sequential)
                    self._startup_scenario(stage)
                if "latency" in wanted:
                    self._latency_scenario(stage, "latency", plan.latency_ms, self.concurrent)
        if "rss" in wanted:
            for key, items in zip(("rss_small", "rss_large"), plan.rss_items, strict=True):
                per_project = max(1, items // plan.projects)
                with self._stage(plan.projects, per_project, eager=False) as stage:
                    title = f"RSS, {plan.projects * per_project:,} items, 0 ms"
                    scenario = self._scenario(key, title, 0.0, per_project)
                    for number in range(plan.rss_repeat):
                        self._measure(stage, scenario, self.tap, f"{number + 1}/{plan.rss_repeat}")

    def _latency_scenario(
        self, stage: Stage, key: str, latency_ms: float, goal_baseline: Client
    ) -> None:
        """Interleave the clients run by run, so drift on the machine hits all alike."""
        stage.server.set_latency(latency_ms)
        plan = self.plan
        title = f"{latency_ms:g} ms/page, {plan.projects} x {plan.per_project:,} items"
        scenario = self._scenario(key, title, latency_ms, plan.per_project)
        concurrencies = sorted({1, *self.options.baseline_concurrency})
        clients = [baseline(n) for n in concurrencies] + [self.tap]
        repeats = {
            client: plan.repeat if client in (self.tap, goal_baseline) else plan.info_repeat
            for client in clients
        }
        for number in range(max(repeats.values())):
            for client in clients:
                if number < repeats[client]:
                    self._measure(stage, scenario, client, f"{number + 1}/{repeats[client]}")

    def _startup_scenario(self, stage: Stage) -> None:
        """What a run costs before its first record: start_date after all data, 0 items.

        Not a goal, but it splits the tap's CPU per record into a fixed part (imports,
        catalog, one request per project) and a part that grows with the data.
        """
        stage.server.set_latency(0.0)
        config = stage.config_with("startup", start_date=AFTER_ALL_DATA)
        scenario = self._scenario("startup", "startup: 0 items, 0 ms", 0.0, 0)
        for number in range(self.plan.repeat):
            for client in (self.sequential, self.tap):
                self._measure(stage, scenario, client, f"{number + 1}/{self.plan.repeat}", config)

    def _scenario(
        self, key: str, title: str, latency_ms: float, per_project: int
    ) -> ScenarioResult:
        scenario = ScenarioResult(key, title, latency_ms, self.plan.projects, per_project)
        self.scenarios[key] = scenario
        return scenario

    # ----------------------------------------------------------------- one run

    def _measure(
        self,
        stage: Stage,
        scenario: ScenarioResult,
        client: Client,
        label: str,
        config: Path | None = None,
    ) -> None:
        """One run of one client; the server's and everyone else's CPU are noted beside it."""
        result = scenario.clients.setdefault(client.name, ClientResult(client.name, scenario.items))
        command = client.command(self.options, config or stage.config)
        server_before, busy_before = stage.server.cpu_seconds(), machine_busy_seconds()
        own_before = own_cpu_seconds()
        run = run_measured(command, cwd=str(REPO))
        own = own_cpu_seconds() - own_before
        run.server_cpu_s = stage.server.cpu_seconds() - server_before
        busy_after = machine_busy_seconds()
        if busy_before is not None and busy_after is not None:
            used = busy_after - busy_before
            run.others_cpu_s = max(0.0, used - run.cpu_s - run.server_cpu_s - own)
        problem = client.check(run, scenario.projects, scenario.items)
        if problem:
            run.returncode = run.returncode or -1
            result.errors.append(problem)
        result.runs.append(run)
        status = f"FAILED: {problem}" if problem else "ok"
        others = f"{run.others_cpu_s:.2f}" if run.others_cpu_s is not None else "?"
        print(
            f"  {scenario.title:<30} {client.name:<26} run {label}: {run.wall_s:6.2f} s wall, "
            f"{run.cpu_s:6.2f} s CPU, {run.peak_rss_mb:5.1f} MB; server {run.server_cpu_s:.2f} s, "
            f"others {others} s CPU  {status}",
            flush=True,
        )

    @contextlib.contextmanager
    def _stage(self, projects: int, per_project: int, *, eager: bool) -> t.Iterator[Stage]:
        """A fake API process with this data, and a tap config file pointing at it."""
        started = time.perf_counter()
        with FakeServer(
            REPO,
            projects=projects,
            per_project=per_project,
            item_bytes=self.options.item_bytes,
            eager=eager,
        ) as server:
            mode = "pre-rendered" if eager else "rendered on request"
            print(
                f"fake API: {projects} x {per_project:,} items of ~{self.options.item_bytes} B, "
                f"{mode}, ready in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
            config = {**server.config, **self.options.tap_config}
            path = Path(self._tmp.name, f"config-{server.items}.json")
            path.write_text(json.dumps(config))
            yield Stage(server, path)

    def _warm_up(self) -> None:
        """One untimed start of each program, so no timed run pays for a cold disk cache."""
        for command in (
            [str(self.options.tap_executable), "--about"],
            [sys.executable, "-m", "benchmarks.baseline", "--help"],
        ):
            subprocess.run(command, cwd=REPO, capture_output=True, check=False)

    # ------------------------------------------------------------------ results

    def goals(self) -> list[Goal]:
        return evaluate_goals(
            self.scenarios,
            tap=self.tap.name,
            sequential=self.sequential.name,
            concurrent=self.concurrent.name,
        )


def machine() -> dict[str, t.Any]:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def git_revision() -> str:
    """The tap code's revision, ``-dirty`` when tap_usersnap/ has uncommitted changes."""

    def git(*args: str) -> str:
        completed = subprocess.run(
            ["git", *args],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        return completed.stdout.strip()

    # The last commit that changed the tap's code names the code measured.
    revision = git("log", "-1", "--format=%h", "--", "tap_usersnap") or "unknown"
    return revision + ("-dirty" if git("status", "--porcelain", "--", "tap_usersnap") else "")


def observations(bench: Bench, harness_rss_mb: float) -> list[str]:
    """What a reader needs to weigh the figures: fixed costs, a busy machine, RSS floor."""
    notes = []
    startup, cpu = bench.scenarios.get("startup"), bench.scenarios.get("cpu")
    if startup and cpu:
        parts = []
        for client in (bench.tap, bench.sequential):
            fixed = startup.clients.get(client.name)
            if fixed and fixed.good_runs:
                share = fixed.cpu_s / cpu.items * 1e6
                parts.append(f"{client.name} {fixed.cpu_s:.2f} s ({share:.0f} us/record)")
        if parts:
            notes.append(
                f"fixed CPU cost of a run (startup row), spread over {cpu.items:,} records: "
                + ", ".join(parts)
            )
    results = [r for scenario in bench.scenarios.values() for r in scenario.clients.values()]
    disturbance = max((r.worst_disturbance for r in results), default=0.0)
    if disturbance > BUSY_MACHINE_SHARE:
        notes.append(
            f"WARNING: the machine was busy: other processes used up to {disturbance:.0%} of "
            "a core during a run (others' CPU column); wall times may be inflated"
        )
    floor = [r.client for r in results if r.good_runs and r.peak_rss_mb <= harness_rss_mb + 2]
    if floor:
        notes.append(
            f"WARNING: peak RSS of {', '.join(sorted(set(floor)))} is at the harness's own "
            f"{harness_rss_mb:.0f} MB, which a child inherits as its floor: not measured"
        )
    return notes


def render(bench: Bench, goals: list[Goal], meta: dict[str, t.Any]) -> tuple[str, str]:
    """The console report and the markdown snippet for the README."""
    rows = table_rows(bench.scenarios.values())
    notes = [
        f"tap_usersnap/ at {meta['revision']}, extra tap config {json.dumps(meta['tap_config'])}; "
        f"{meta['machine']['cores']} cores ({meta['machine']['cpu']}), "
        f"Python {meta['machine']['python']}",
        f"medians of {meta['plan']['repeat']} runs for the tap and the goal baselines "
        f"({meta['plan']['info_repeat']} for the other baselines); "
        f"bench took {meta['bench_wall_s']:.0f} s",
    ]
    notes += observations(bench, meta["harness_peak_rss_mb"])
    if meta["quick"]:
        notes.append("QUICK MODE: small data, single runs; the verdicts are only indicative")
    text = "\n\n".join(
        [
            text_table(COLUMNS, rows),
            text_table(GOAL_COLUMNS, goal_rows(goals)),
            "\n".join(notes),
        ]
    )
    markdown = "\n\n".join(
        [
            markdown_table(COLUMNS, rows, keep=README_COLUMNS),
            markdown_table(GOAL_COLUMNS, goal_rows(goals)),
            "\n".join(f"_{note}_  " for note in notes),
        ]
    )
    return text, markdown + "\n"


def json_safe(value: t.Any) -> t.Any:
    """NaN (a figure that was not measured) as null, so the file is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small data, one run: a smoke test")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the tap and goal baselines")
    parser.add_argument(
        "--info-repeat", type=int, default=1, help="runs of the other baselines (0 skips them)"
    )
    parser.add_argument("--rss-repeat", type=int, default=1, help="runs per RSS scenario")
    parser.add_argument("--projects", type=int, default=5)
    parser.add_argument("--per-project", type=int, default=10_000)
    parser.add_argument("--item-bytes", type=int, default=1900)
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--rss-small", type=int, default=20_000, help="items, RSS scenario")
    parser.add_argument("--rss-large", type=int, default=200_000, help="items, RSS scenario")
    parser.add_argument(
        "--concurrency", type=int, default=4, help="the baseline the tap's wall time is held to"
    )
    parser.add_argument(
        "--baseline-concurrency",
        type=lambda text: [int(n) for n in text.split(",") if n],
        default=[4, 5],
        help="thread counts of the concurrent baselines (the sequential one always runs)",
    )
    parser.add_argument(
        "--tap-config",
        type=json.loads,
        default={},
        help="extra tap settings as JSON, e.g. '{\"max_concurrency\": 4}'",
    )
    parser.add_argument(
        "--tap-executable",
        type=Path,
        default=Path(sys.executable).with_name(TAP),
        help="the tap's console script",
    )
    parser.add_argument("--scenarios", default="cpu,latency,rss", help="any of cpu,latency,rss")
    parser.add_argument("--output-dir", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--name", help="results file name (default: latest, or quick)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal fails")
    options = parser.parse_args(argv)
    if options.concurrency > 1 and options.concurrency not in options.baseline_concurrency:
        options.baseline_concurrency.append(options.concurrency)
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    plan = make_plan(options)
    started = time.perf_counter()
    bench = Bench(options, plan)
    try:
        bench.run()
    finally:
        bench.close()
    goals = bench.goals()
    meta = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "revision": git_revision(),
        "tap_config": options.tap_config,
        "quick": options.quick,
        "plan": dataclasses.asdict(plan),
        "item_bytes": options.item_bytes,
        "machine": machine(),
        "harness_peak_rss_mb": harness_peak_rss_mb(),
        "bench_wall_s": time.perf_counter() - started,
    }
    text, markdown = render(bench, goals, meta)
    print("\n" + text)
    name = options.name or ("quick" if options.quick else "latest")
    options.output_dir.mkdir(parents=True, exist_ok=True)
    results = {
        "meta": meta,
        "scenarios": {
            key: {
                "title": scenario.title,
                "latency_ms": scenario.latency_ms,
                "projects": scenario.projects,
                "per_project": scenario.per_project,
                "clients": {name: r.summary() for name, r in scenario.clients.items()},
            }
            for key, scenario in bench.scenarios.items()
        },
        "goals": [dataclasses.asdict(goal) | {"verdict": goal.verdict} for goal in goals],
    }
    (options.output_dir / f"{name}.json").write_text(
        json.dumps(json_safe(results), indent=2, allow_nan=False) + "\n"
    )
    (options.output_dir / f"{name}.md").write_text(markdown)
    print(f"\nwrote {options.output_dir / name}.json and .md")
    if any(result.errors for s in bench.scenarios.values() for result in s.clients.values()):
        print("some runs failed (see above); their figures are left out", file=sys.stderr)
        return 2
    if options.strict and any(goal.passed is False for goal in goals):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
