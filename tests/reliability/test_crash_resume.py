"""Crash and resume: SIGKILL the tap at random points, resume from its last STATE each time.

Each trial runs the console script against a long multi-project sync, kills it with SIGKILL
as soon as it has printed a random number of lines, and resumes from the last STATE among
those lines, several times, then lets a last run finish. The union of what the runs
delivered must hold every feedback_id, and a resume may re-read at most the page it was in
plus the item(s) at each other project's bookmark: the tap writes STATE after every page,
so that is all a kill can cost.
"""

from __future__ import annotations

import random
import signal
import typing as t

import pytest

from fake_usersnap import FakeUsersnap
from harness.reliability import (
    canaries_in,
    item_index,
    plant_canaries,
    resume_duplicates,
    secrets_in,
    unexpected_requests,
    unsafe_states,
)
from harness.singer_run import SyncResult, run_cli, run_cli_killed
from tap_usersnap.feedback import FeedbackStream

PROJECTS = 4
PER_PROJECT = 150
PAGE_SIZE = 7
KILLS = 4
#: A kill lands after 5 to 110 printed lines. A full run prints about 690, and projects are
#: read concurrently, so each resume has less left: four kills still land mid-sync.
KILL_AFTER_LINES = (5, 110)
#: Items of the first project created in one instant, across its pages 1 and 2.
TIED = 5
#: What one resume may re-read: the records since the last STATE (the tap writes one every
#: ``STATE_MSG_FREQUENCY`` records), the page each project was in, plus the item(s) at each
#: project's bookmark (read again on purpose, so that none sharing that instant is lost).
MOST_RE_READ = FeedbackStream.STATE_MSG_FREQUENCY + PROJECTS * PAGE_SIZE + TIED


@pytest.fixture
def long_fake() -> t.Iterator[FakeUsersnap]:
    """Four projects of 150 items, canaries planted, with ties across a page boundary."""
    with FakeUsersnap() as api:
        api.seed(projects=PROJECTS, per_project=PER_PROJECT, seed=11)
        api.latency_seconds = 0.012  # slow enough that the tap reads projects concurrently
        plant_canaries(api)
        first = api.feedback[next(iter(api.projects))]
        for item in first[5 : 5 + TIED]:  # created in the same instant: pages 1 and 2
            item["created_at"] = first[5]["created_at"]
        yield api


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_at_random_points_then_resume_loses_nothing(
    long_fake: FakeUsersnap, trial_log: list[dict[str, t.Any]], seed: int
) -> None:
    kill_and_resume(long_fake, trial_log, seed)


def kill_and_resume(fake: FakeUsersnap, trial_log: list[dict[str, t.Any]], seed: int) -> None:
    """Kill the tap :data:`KILLS` times at random points, resuming each time, then finish."""
    items = item_index(fake)
    expected = fake.all_feedback_ids()
    config = fake.config(page_size=PAGE_SIZE)
    rng = random.Random(seed)
    runs: list[SyncResult] = []
    state: dict[str, t.Any] | None = None
    kill_points = []
    for _ in range(KILLS):
        after_lines = rng.randint(*KILL_AFTER_LINES)
        run = run_cli_killed(after_lines=after_lines, config=config, state=state)
        assert run.returncode == -signal.SIGKILL, run.stderr  # killed mid-sync, not done
        kill_points.append(after_lines)
        runs.append(run)
        state = run.resume_state(state)
    last = run_cli(config=config, state=state, timeout=60)
    assert last.returncode == 0, last.stderr
    runs.append(last)

    delivered = {fid for run in runs for fid in run.ids()}
    duplicates = resume_duplicates(runs)
    output = "".join(run.stdout + run.stderr for run in runs)
    leaked = secrets_in(output, fake)
    bodies = canaries_in("".join(run.stderr for run in runs))
    unsafe = unsafe_states(runs, items, expected)
    trial_log.append(
        {
            "seed": seed,
            "projects": len(fake.projects),
            "items": len(expected),
            "page_size": PAGE_SIZE,
            "kills": [
                {"after_lines": point, "records_delivered": len(run.ids())}
                for point, run in zip(kill_points, runs, strict=False)
            ],
            "duplicates_per_resume": duplicates,
            "most_allowed_per_resume": MOST_RE_READ,
            "lost": len(expected - delivered),
            "unsafe_states": len(unsafe),
            "secrets_leaked": len(leaked),
            "bodies_in_errors": len(bodies),
        }
    )
    assert delivered == expected, f"lost {len(expected - delivered)} feedback items"
    assert not unsafe, unsafe
    assert all(count <= MOST_RE_READ for count in duplicates), duplicates
    assert not leaked
    assert not bodies
    assert not unexpected_requests(fake)
