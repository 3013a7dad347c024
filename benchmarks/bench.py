"""``make bench``: tap-usersnap against a plain ``requests`` loop, on the same data, same run.

Scenarios:

1. ``cpu``: 0 ms latency, 5 projects x 10k items of ~1.9 KB: CPU per record.
2. ``latency``: 30 ms per request, the same data: wall time.
3. ``rss_small`` / ``rss_large``: the tap's peak RSS at 20k and at 200k items.
4. ``startup``: a run with nothing to read (start_date after all data), 0 ms: the tap's
   fixed cost, and what importing the SDK and the tap costs (``python -c``, a few runs).
5. ``one_project``: 1 project x 20k items, 30 ms per page, a first run: against its floor.
6. ``nothing_new``: 20 projects x 500 items, 50 ms per request, a run from the state of a
   first one (nothing new): the requests sent, counted by the fake, against their floor.

A latency-bound run's floor is ``start-up + ceil(requests / concurrency) x latency``, with
the start-up measured in the same bench run and concurrency the tap's setting
(:class:`benchmarks.report.Floor`).

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
import statistics
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
    FLOOR_COLUMNS,
    GOAL_COLUMNS,
    README_COLUMNS,
    ClientResult,
    Floor,
    Goal,
    ScenarioResult,
    evaluate_goals,
    floor_rows,
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
#: Every ``--scenarios`` key.
DEFAULT_SCENARIOS = ("cpu", "latency", "rss", "startup", "one_project", "nothing_new")
SCENARIOS = set(DEFAULT_SCENARIOS)
#: Items per project of the start-up stage (its runs read none).
STARTUP_PER_PROJECT = 100
#: A start_date after every benchmark item (they start in 2023, a minute apart): a run that
#: reads nothing, to cost the startup. Now, as the tap refuses a start_date in the future.
AFTER_ALL_DATA = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass(frozen=True)
class Client:
    """A client to measure: how to start it, and how many output lines prove it finished."""

    name: str
    concurrency: int  # baseline threads; 0 for the tap
    is_tap: bool = False

    def command(
        self, options: argparse.Namespace, config_path: Path, state_path: Path | None = None
    ) -> list[str]:
        if self.is_tap:
            state = ["--state", str(state_path)] if state_path else []
            return [str(options.tap_executable), "--config", str(config_path), *state]
        return [
            sys.executable,
            "-m",
            "benchmarks.baseline",
            "--config",
            str(config_path),
            "--concurrency",
            str(self.concurrency),
        ]

    def check(self, run: Measurement, scenario: ScenarioResult) -> str | None:
        """Why the run does not count (crashed, or lost/duplicated records), else None."""
        if not run.ok:
            return f"exit code {run.returncode}: {run.stderr_tail.strip()[-600:]}"
        # The tap also emits one RECORD per project (the projects stream).
        items = scenario.items
        got, want = (
            (run.record_messages, items + scenario.projects) if self.is_tap else (run.lines, items)
        )
        if scenario.rereads and want <= got <= want + scenario.rereads:
            return None
        if got != want:
            more = f" to {want + scenario.rereads}" if scenario.rereads else ""
            return f"{got} records written, expected {want}{more}"
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
    one_project_items: int = 20_000
    one_project_latency_ms: float = 30.0
    nothing_new: tuple[int, int] = (20, 500)  # projects, items per project
    nothing_new_latency_ms: float = 50.0
    floor_repeat: int = 3  # runs of the tap in the latency-bound floor scenarios (median)
    import_repeat: int = 5  # runs of each ``python -c`` import timing


def make_plan(options: argparse.Namespace) -> Plan:
    if options.quick:
        return Plan(
            5,
            400,
            options.latency_ms,
            (2_000, 20_000),
            1,
            1,
            1,
            one_project_items=2_000,
            one_project_latency_ms=options.one_project_latency_ms,
            nothing_new=(5, 200),
            nothing_new_latency_ms=options.nothing_new_latency_ms,
            floor_repeat=1,
            import_repeat=3,
        )
    return Plan(
        options.projects,
        options.per_project,
        options.latency_ms,
        (options.rss_small, options.rss_large),
        options.repeat,
        options.info_repeat,
        options.rss_repeat,
        one_project_items=options.one_project_items,
        one_project_latency_ms=options.one_project_latency_ms,
        nothing_new=(options.nothing_new_projects, options.nothing_new_per_project),
        nothing_new_latency_ms=options.nothing_new_latency_ms,
        floor_repeat=options.floor_repeat,
        import_repeat=options.import_repeat,
    )


#: What ``python -c`` runs to cost an import (``pass``: the bare interpreter's start).
IMPORTS = {
    "pass": "pass",
    "import singer_sdk": "import singer_sdk",
    "import tap_usersnap.tap": "import tap_usersnap.tap",
}


class Bench:
    """Runs the scenarios and collects their results."""

    def __init__(self, options: argparse.Namespace, plan: Plan) -> None:
        self.options = options
        self.plan = plan
        self.scenarios: dict[str, ScenarioResult] = {}
        self.floors: dict[str, Floor] = {}
        self.imports: dict[str, float] = {}  # median wall of ``python -c``, by IMPORTS key
        self.tap_defaults: dict[str, t.Any] = {}  # the tap's setting defaults (--about)
        self.tap = Client(TAP, 0, is_tap=True)
        self.sequential = baseline(1)
        self.concurrent = baseline(options.concurrency)
        self._tmp = tempfile.TemporaryDirectory(prefix="tap-usersnap-bench-")

    def close(self) -> None:
        self._tmp.cleanup()

    # ------------------------------------------------------------------ scenarios

    def run(self) -> None:
        wanted = set(self.options.scenarios.split(","))
        unknown = wanted - SCENARIOS
        if unknown:
            raise SystemExit(f"unknown scenarios {sorted(unknown)}; any of {sorted(SCENARIOS)}")
        plan = self.plan
        self._warm_up()
        if wanted & {"cpu", "latency"}:
            with self._stage(plan.projects, plan.per_project, eager=True) as stage:
                if "cpu" in wanted:
                    self._latency_scenario(stage, "cpu", 0.0, self.sequential)
                if "latency" in wanted:
                    self._latency_scenario(stage, "latency", plan.latency_ms, self.concurrent)
        # Its own small stage: the edit scan's answer is sorted per request, which on the cpu
        # stage's 10k items a project costs the fake ~60 ms a project, not the tap. The floors
        # need this start-up, from this same bench run.
        if wanted & {"cpu", "startup", "one_project", "nothing_new"}:
            with self._stage(plan.projects, STARTUP_PER_PROJECT, eager=True) as stage:
                self._startup_scenario(stage)
        if "startup" in self.scenarios:
            self._import_costs()
        if "one_project" in wanted:
            self._one_project_scenario()
        if "nothing_new" in wanted:
            self._nothing_new_scenario()
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

        It splits the tap's CPU per record into a fixed part (imports, catalog, a few
        requests per project) and a part that grows with the data; its wall time is a goal
        (``STARTUP_LIMIT_S``) and the start-up term of every floor.
        """
        stage.server.set_latency(0.0)
        config = stage.config_with("startup", start_date=AFTER_ALL_DATA)
        scenario = self._scenario(
            "startup", "startup: 0 items, 0 ms", 0.0, 0, projects=stage.server.projects
        )
        for number in range(self.plan.repeat):
            for client in (self.sequential, self.tap):
                self._measure(stage, scenario, client, f"{number + 1}/{self.plan.repeat}", config)

    def _import_costs(self) -> None:
        """Median wall of ``python -c <import>`` per IMPORTS entry, interleaved run by run."""
        walls: dict[str, list[float]] = {name: [] for name in IMPORTS}
        for _ in range(self.plan.import_repeat):
            for name, code in IMPORTS.items():
                run = run_measured([sys.executable, "-c", code], cwd=str(REPO))
                if run.ok:
                    walls[name].append(run.wall_s)
        self.imports = {name: statistics.median(w) for name, w in walls.items() if w}
        print(
            "  import cost (median wall of python -c): "
            + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in self.imports.items()),
            flush=True,
        )

    def _startup_s(self) -> float:
        startup = self.scenarios.get("startup")
        result = startup.clients.get(self.tap.name) if startup else None
        return result.wall_s if result and result.good_runs else math.nan

    def _tap_setting(self, name: str) -> int:
        """The tap's setting in this bench's config, else its default (from --about)."""
        return int(self.options.tap_config.get(name, self.tap_defaults[name]))

    def _one_project_scenario(self) -> None:
        """One project's first run, 30 ms per page: pages one after another cost the most."""
        plan = self.plan
        items, latency = plan.one_project_items, plan.one_project_latency_ms
        with self._stage(1, items, eager=True) as stage:
            stage.server.set_latency(latency)
            title = f"one project: {latency:g} ms/page, 1 x {items:,} items"
            scenario = self._scenario("one_project", title, latency, items, projects=1)
            for number in range(plan.floor_repeat):
                self._measure(stage, scenario, self.tap, f"{number + 1}/{plan.floor_repeat}")
        result = scenario.clients[self.tap.name]
        page_size = self._tap_setting("page_size")
        self.floors["one_project"] = Floor(
            "one_project",
            title,
            requests=math.ceil(items / page_size),
            counted_as=f"pages of {page_size}",
            concurrency=1,  # one project is read page by page
            latency_ms=latency,
            startup_s=self._startup_s(),
            tap_wall_s=result.wall_s,
            sent=result.requests,
        )

    def _nothing_new_scenario(self) -> None:
        """A run from the state of a first run, nothing new: per-project requests only."""
        plan = self.plan
        (projects, per_project), latency = plan.nothing_new, plan.nothing_new_latency_ms
        with self._stage(projects, per_project, eager=True) as stage:
            state = self._first_run_state(stage)
            stage.server.set_latency(latency)
            title = f"nothing new: {latency:g} ms/request, {projects} x {per_project:,} items"
            # Nothing new is 0 items; a run from state re-reads each project's newest item
            # and the edit scan's item at its mark (at most two per project).
            scenario = self._scenario("nothing_new", title, latency, 0, projects=projects)
            scenario.rereads = 2 * projects
            for number in range(plan.floor_repeat):
                label = f"{number + 1}/{plan.floor_repeat}"
                self._measure(stage, scenario, self.tap, label, state=state)
        result = scenario.clients[self.tap.name]
        sent = result.requests
        self.floors["nothing_new"] = Floor(
            "nothing_new",
            title,
            requests=0 if math.isnan(sent) else math.ceil(sent),
            counted_as="every request sent",
            concurrency=self._tap_setting("concurrency"),
            latency_ms=latency,
            startup_s=self._startup_s(),
            tap_wall_s=result.wall_s,
            sent=sent,
        )

    def _first_run_state(self, stage: Stage) -> Path:
        """An untimed first run at 0 ms; its last STATE message, as a state file."""
        stage.server.set_latency(0.0)
        command = self.tap.command(self.options, stage.config)
        last_state = None
        with tempfile.TemporaryFile() as output:
            completed = subprocess.run(
                command, cwd=REPO, stdout=output, stderr=subprocess.PIPE, check=False
            )
            if completed.returncode:
                tail = completed.stderr.decode("utf-8", "replace")[-2000:]
                raise RuntimeError(f"the first run (for its state) failed:\n{tail}")
            output.seek(0)
            for line in output:
                if b'"STATE"' in line[:40]:
                    last_state = line
        if last_state is None:
            raise RuntimeError("the first run wrote no STATE message")
        path = Path(self._tmp.name, f"state-{stage.server.items}.json")
        path.write_text(json.dumps(json.loads(last_state)["value"]))
        print(f"  first run (untimed, 0 ms) wrote its state to {path.name}", flush=True)
        return path

    def _scenario(
        self,
        key: str,
        title: str,
        latency_ms: float,
        per_project: int,
        *,
        projects: int | None = None,
    ) -> ScenarioResult:
        scenario = ScenarioResult(
            key, title, latency_ms, projects or self.plan.projects, per_project
        )
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
        *,
        state: Path | None = None,
    ) -> None:
        """One run of one client; the server's and everyone else's CPU are noted beside it."""
        result = scenario.clients.setdefault(client.name, ClientResult(client.name, scenario.items))
        command = client.command(self.options, config or stage.config, state)
        requests_before = stage.server.requests()
        server_before, busy_before = stage.server.cpu_seconds(), machine_busy_seconds()
        own_before = own_cpu_seconds()
        run = run_measured(command, cwd=str(REPO))
        own = own_cpu_seconds() - own_before
        run.server_cpu_s = stage.server.cpu_seconds() - server_before
        busy_after = machine_busy_seconds()
        if busy_before is not None and busy_after is not None:
            used = busy_after - busy_before
            run.others_cpu_s = max(0.0, used - run.cpu_s - run.server_cpu_s - own)
        requests_after = stage.server.requests()
        run.requests = {
            kind: requests_after[kind] - requests_before[kind] for kind in requests_after
        }
        problem = client.check(run, scenario)
        if problem:
            run.returncode = run.returncode or -1
            result.errors.append(problem)
        result.runs.append(run)
        status = f"FAILED: {problem}" if problem else "ok"
        others = f"{run.others_cpu_s:.2f}" if run.others_cpu_s is not None else "?"
        print(
            f"  {scenario.title:<30} {client.name:<26} run {label}: {run.wall_s:6.2f} s wall, "
            f"{run.cpu_s:6.2f} s CPU, {run.peak_rss_mb:5.1f} MB; server {run.server_cpu_s:.2f} s, "
            f"others {others} s CPU; {requests_text(run.requests)}  {status}",
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
        """One untimed start of each program, so no timed run pays for a cold disk cache.

        The tap's start also tells its settings' defaults (``--about``), for the floors.
        """
        about = subprocess.run(
            [str(self.options.tap_executable), "--about", "--format", "json"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        properties = json.loads(about.stdout)["settings"]["properties"]
        self.tap_defaults = {
            name: spec.get("default") for name, spec in properties.items() if "default" in spec
        }
        subprocess.run(
            [sys.executable, "-m", "benchmarks.baseline", "--help"],
            cwd=REPO,
            capture_output=True,
            check=False,
        )

    # ------------------------------------------------------------------ results

    def goals(self) -> list[Goal]:
        return evaluate_goals(
            self.scenarios,
            tap=self.tap.name,
            sequential=self.sequential.name,
            concurrent=self.concurrent.name,
            floors=self.floors,
            imports=self.imports,
        )


def requests_text(requests: t.Mapping[str, int]) -> str:
    """``81 requests (filter 40, count 20, assignees 20, projects 1)``: the kinds sent."""
    kinds = ", ".join(f"{kind} {n}" for kind, n in requests.items() if kind != "total" and n)
    return f"{requests['total']} requests" + (f" ({kinds})" if kinds else "")


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
    if bench.floors:
        notes.append(
            "floor = start-up + ceil(requests / concurrency) x latency; start-up is the tap's "
            f"wall in the startup row; {meta['plan']['floor_repeat']} run(s) of the tap per "
            "floor scenario; 'sent' is every request the fake API counted in the tap's run"
        )
    if meta["quick"]:
        notes.append("QUICK MODE: small data, single runs; the verdicts are only indicative")
    floors = floor_rows(bench.floors.values())
    text = "\n\n".join(
        [
            text_table(COLUMNS, rows),
            *([text_table(FLOOR_COLUMNS, floors)] if floors else []),
            text_table(GOAL_COLUMNS, goal_rows(goals)),
            "\n".join(notes),
        ]
    )
    markdown = "\n\n".join(
        [
            markdown_table(COLUMNS, rows, keep=README_COLUMNS),
            *([markdown_table(FLOOR_COLUMNS, floors)] if floors else []),
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
    parser.add_argument("--one-project-items", type=int, default=20_000)
    parser.add_argument("--one-project-latency-ms", type=float, default=30.0)
    parser.add_argument("--nothing-new-projects", type=int, default=20)
    parser.add_argument("--nothing-new-per-project", type=int, default=500)
    parser.add_argument("--nothing-new-latency-ms", type=float, default=50.0)
    parser.add_argument(
        "--floor-repeat", type=int, default=3, help="tap runs per floor scenario (the median)"
    )
    parser.add_argument(
        "--import-repeat", type=int, default=5, help="runs of each python -c import timing"
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(DEFAULT_SCENARIOS),
        help=f"comma-separated, any of {','.join(DEFAULT_SCENARIOS)}; startup also runs "
        "with cpu (for its fixed-cost note) and for the floors of one_project and nothing_new",
    )
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
        "floors": {
            key: dataclasses.asdict(floor) | {"floor_s": floor.floor_s, "ratio": floor.ratio}
            for key, floor in bench.floors.items()
        },
        "imports_wall_s": bench.imports,
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
