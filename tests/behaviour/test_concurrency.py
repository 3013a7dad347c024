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


@pytest.mark.parametrize("concurrency", [1, 4])
def test_projects_are_read_at_once_when_the_api_is_slow(
    empty_fake: FakeUsersnap, concurrency: int
) -> None:
    """With ``concurrency`` n, up to n projects are read at once while the API is slow, each
    project's pages in order; with 1, one project after another."""
    fake = empty_fake
    for number in range(4):
        project = fake.add_project(f"Project {number}")
        for _ in range(15):
            fake.add_feedback(project["project_id"])
    first = run_sync(fake.config(concurrency=1, page_size=5, capture_edits=False))
    fake.requests.clear()
    fake.latency_seconds = 0.05

    result = run_sync(fake.config(concurrency=concurrency, page_size=5, capture_edits=False))

    assert result.ids() != []
    assert sorted(result.ids()) == sorted(first.ids())
    for pid in fake.projects:
        created = [r["created_at"] for r in result.records("feedback") if r["project_id"] == pid]
        assert created == sorted(created)
    pages = [r for r in fake.requests if r.path.endswith("/filter")]
    projects_at = [
        {r.path.split("/")[2] for r in pages if abs(r.at - page.at) < 0.03} for page in pages
    ]
    most_at_once = max(len(projects) for projects in projects_at)
    if concurrency == 1:
        assert most_at_once == 1
    else:
        assert most_at_once >= 3
