"""The benchmark's bookkeeping, without running it: floors, goals, scenario list, counts.

``make bench`` itself is timed and slow; these check that its arithmetic and its tables say
what docs/performance.md says they do.
"""

from __future__ import annotations

import math

import pytest

from benchmarks import bench
from benchmarks.fake_api import CountingFake, kind_of
from benchmarks.measure import Measurement
from benchmarks.report import (
    FLOOR_COLUMNS,
    GOAL_COLUMNS,
    ClientResult,
    Floor,
    ScenarioResult,
    evaluate_goals,
    floor_rows,
    goal_rows,
)
from fake_usersnap.faults import RecordedRequest

TAP, LOOP, LOOP4 = "tap-usersnap", "requests loop, sequential", "requests loop, 4 threads"


def measurement(wall_s: float, *, records: int = 0, total: int | None = None) -> Measurement:
    return Measurement(
        wall_s=wall_s,
        cpu_s=0.1,
        user_s=0.1,
        sys_s=0.0,
        peak_rss_mb=50.0,
        lines=records,
        record_messages=records,
        returncode=0,
        requests=None if total is None else {"total": total},
    )


def floor(**changes: float) -> Floor:
    values = {
        "requests": 200,
        "concurrency": 4,
        "latency_ms": 30.0,
        "startup_s": 0.5,
        "tap_wall_s": 6.0,
    } | changes
    return Floor(
        "one_project",
        "one project",
        requests=int(values["requests"]),
        counted_as="pages of 100",
        concurrency=int(values["concurrency"]),
        latency_ms=values["latency_ms"],
        startup_s=values["startup_s"],
        tap_wall_s=values["tap_wall_s"],
    )


def test_the_floor_is_start_up_plus_rounds_of_concurrent_requests() -> None:
    assert floor().floor_s == pytest.approx(0.5 + 50 * 0.030)
    # A partial round waits a whole latency: 81 requests, 4 at a time, are 21 rounds.
    assert floor(requests=81, latency_ms=50).floor_s == pytest.approx(0.5 + 21 * 0.050)
    assert floor().ratio == pytest.approx(6.0 / 2.0)
    assert math.isnan(floor(startup_s=math.nan).ratio)


def scenarios_with_startup(wall_s: float) -> dict[str, ScenarioResult]:
    startup = ScenarioResult("startup", "startup: 0 items, 0 ms", 0.0, 5, 0)
    for client, wall in ((TAP, wall_s), (LOOP, 0.1)):
        startup.clients[client] = ClientResult(client, 0, [measurement(wall)])
    return {"startup": startup}


def goals_by_number(
    scenarios: dict[str, ScenarioResult], floors: dict[str, Floor] | None = None
) -> dict[str, str]:
    goals = evaluate_goals(scenarios, tap=TAP, sequential=LOOP, concurrent=LOOP4, floors=floors)
    return {goal.name.split(" ", 1)[0]: goal.verdict for goal in goals}


def test_start_up_and_floor_goals_pass_and_fail_at_their_limits() -> None:
    floors = {"one_project": floor(tap_wall_s=2.3), "nothing_new": floor(tap_wall_s=3.0)}
    verdicts = goals_by_number(scenarios_with_startup(0.6), floors)
    assert verdicts == {
        "1.": "n/a",
        "2.": "n/a",
        "3.": "n/a",
        "4.": "PASS",  # 0.6 s is within 0.6 s
        "5.": "PASS",  # 2.3 / 2.0 = 1.15x
        "6.": "PASS",  # 3.0 / 2.0 = 1.5x
    }
    floors = {"one_project": floor(tap_wall_s=2.32), "nothing_new": floor(tap_wall_s=3.02)}
    verdicts = goals_by_number(scenarios_with_startup(0.6), floors)
    assert (verdicts["5."], verdicts["6."]) == ("FAIL", "FAIL")
    assert goals_by_number(scenarios_with_startup(0.61))["4."] == "FAIL"


def test_the_import_cost_is_an_info_row_net_of_a_bare_interpreter() -> None:
    imports = {"pass": 0.02, "import singer_sdk": 0.30, "import tap_usersnap.tap": 0.35}
    goals = evaluate_goals({}, tap=TAP, sequential=LOOP, concurrent=LOOP4, imports=imports)
    info = goals[-1]
    assert info.verdict == "info"
    assert "import singer_sdk +0.28 s" in info.measured
    assert "import tap_usersnap.tap +0.33 s" in info.measured
    row = goal_rows([info])[0]
    assert len(row) == len(GOAL_COLUMNS)
    assert row[2] == "-"


def test_the_floor_table_has_a_cell_per_column() -> None:
    (row,) = floor_rows([floor()])
    assert len(row) == len(FLOOR_COLUMNS)
    assert row[FLOOR_COLUMNS.index("floor s")] == "2.00"
    assert row[FLOOR_COLUMNS.index("tap / floor")] == "3.00x"


def test_the_default_and_quick_runs_include_the_floor_scenarios() -> None:
    options = bench.parse_args([])
    assert set(options.scenarios.split(",")) == bench.SCENARIOS
    assert {"startup", "one_project", "nothing_new"} <= bench.SCENARIOS
    full = bench.make_plan(options)
    assert (full.one_project_items, full.one_project_latency_ms) == (20_000, 30.0)
    assert (full.nothing_new, full.nothing_new_latency_ms) == ((20, 500), 50.0)
    quick = bench.make_plan(bench.parse_args(["--quick"]))
    assert quick.one_project_items < full.one_project_items
    assert quick.nothing_new[0] * quick.nothing_new[1] < full.nothing_new[0] * full.nothing_new[1]


def test_a_run_from_state_may_re_read_a_few_records_but_not_more() -> None:
    tap = bench.Client(TAP, 0, is_tap=True)
    scenario = ScenarioResult("nothing_new", "nothing new", 50.0, 20, 0, rereads=40)
    # 20 projects records, plus 0 to 40 re-read feedback records.
    assert tap.check(measurement(1.0, records=20), scenario) is None
    assert tap.check(measurement(1.0, records=60), scenario) is None
    assert (
        tap.check(measurement(1.0, records=61), scenario) == "61 records written, expected 20 to 60"
    )
    first_run = ScenarioResult("one_project", "one project", 30.0, 1, 2_000)
    assert tap.check(measurement(1.0, records=2_001), first_run) is None
    assert tap.check(measurement(1.0, records=2_000), first_run) is not None


def test_the_median_of_the_requests_counted() -> None:
    result = ClientResult(TAP, 0, [measurement(1.0, total=n) for n in (81, 83, 82)])
    assert result.requests == 82
    assert math.isnan(ClientResult(TAP, 0, [measurement(1.0)]).requests)


def test_the_bench_fake_counts_every_request_by_kind() -> None:
    assert kind_of("POST", "/projects/p1/feedbacks/filter") == "filter"
    assert kind_of("POST", "/projects/p1/feedbacks/filter/count") == "count"
    assert kind_of("GET", "/projects") == "projects"
    assert kind_of("GET", "/projects/p1/assignees") == "assignees"
    assert kind_of("GET", "/projects/p1/feedbacks") == "other"
    fake = CountingFake()
    fake.seed_benchmark(projects=1, per_project=10)
    for method, path in (
        ("GET", "/projects"),
        ("POST", "/projects/p1/feedbacks/filter/count"),
        ("POST", "/projects/p1/feedbacks/filter"),
        ("POST", "/projects/p1/feedbacks/filter"),
    ):
        fake.record(RecordedRequest(method, path, {}, None, None))
    counts = fake.request_counts()
    assert counts == {
        "filter": 2,
        "count": 1,
        "projects": 1,
        "assignees": 0,
        "other": 0,
        "total": 4,
    }
    assert not fake.requests  # benchmark mode still keeps no request log
