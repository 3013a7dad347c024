"""Per-project requests overlap: a run with nothing new waits about requests x latency / n.

With n = ``concurrency``, the deletion counts and the assignees requests go out some at
once, never more than n at a time; with ``concurrency`` 1 they go one after another. The
records and the state are those of the sequential read.
"""

from __future__ import annotations

import re
import typing as t

import pytest

from harness.singer_run import run_sync

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap

LATENCY = 0.25
COUNTS = r"/filter/count$"
ASSIGNEES = r"/assignees$"


def spread(fake: FakeUsersnap, pattern: str, since: int) -> float:
    """Seconds between the first and the last arrival of the matching requests of a run."""
    arrivals = [r.at for r in fake.requests[since:] if re.search(pattern, r.path)]
    assert len(arrivals) == len(fake.projects)
    return max(arrivals) - min(arrivals)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_counts_and_assignees_of_a_run_with_nothing_new_overlap(
    empty_fake: FakeUsersnap, concurrency: int
) -> None:
    fake = empty_fake
    for number in range(4):
        project = fake.add_project(f"Project {number}")
        for _ in range(3):
            fake.add_feedback(project["project_id"])
        fake.add_assignee(project["project_id"])
    config = fake.config(concurrency=concurrency)
    first = run_sync(config)
    fake.latency_seconds = LATENCY
    since = len(fake.requests)
    second = run_sync(config, state=first.final_state)

    counts, assignees = spread(fake, COUNTS, since), spread(fake, ASSIGNEES, since)
    if concurrency == 1:  # one after another: each waits for the one before
        assert counts >= 3 * LATENCY
        assert assignees >= 3 * LATENCY
    else:  # all four in flight before the first answer
        assert counts < LATENCY
        assert assignees < LATENCY
    assert sorted(second.ids("project_assignees", "user_id")) == sorted(
        first.ids("project_assignees", "user_id")
    )
    assert second.final_state["bookmarks"]["feedback"] == first.final_state["bookmarks"]["feedback"]


def sliced_requests(fake: FakeUsersnap, since: int = 0) -> int:
    """Feedback reads of a run that asked for a created_at range (a slice)."""
    return sum(
        1
        for r in fake.requests[since:]
        if isinstance(r.body, dict)
        and any(c.get("operator") == "lt" for c in r.body.get("query") or [])
        and not r.path.endswith("/count")
    )
