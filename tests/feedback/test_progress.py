"""Progress lines of long backfills: quiet on short runs, one line per project every interval."""

from __future__ import annotations

import logging

import pytest

from fake_usersnap import FakeUsersnap, filter_time
from tap_usersnap.feedback.progress import BackfillProgress
from tap_usersnap.feedback.requests import FeedbackCounts
from tap_usersnap.feedback.state import ProjectState
from tap_usersnap.tap import TapUsersnap


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Totals:
    """Stands in for the count requests: answers ``total`` and records who asked."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.asked: list[str] = []

    def __call__(self, project_id: str) -> int:
        self.asked.append(project_id)
        return self.total


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("Progress")]


@pytest.fixture
def logger(caplog: pytest.LogCaptureFixture) -> logging.Logger:
    caplog.set_level(logging.INFO)
    return logging.getLogger("progress-test")


def test_a_short_read_logs_nothing_and_asks_no_total(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    totals, clock = Totals(1000), Clock()
    progress = BackfillProgress(totals, logger, clock=clock)
    for _ in range(5):
        clock.now += 1
        progress.read("p1", 100)
    progress.done("p1")
    assert lines(caplog) == []
    assert totals.asked == []


def test_a_long_read_says_how_far_of_how_many_and_the_time_left(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    progress = BackfillProgress(lambda pid: 50_000, logger, clock=clock)
    progress.read("p1", 0)  # the project starts at 100 s
    for _ in range(12):  # 100 items a second
        clock.now += 1
        progress.read("p1", 100)
    assert lines(caplog) == [
        "Progress: project p1, 1000 of 50000 items read (2.0%), about 8m10s left"
    ]
    clock.now += 3
    progress.done("p1")
    assert lines(caplog)[-1] == "Progress: project p1 done, 1200 items read in 15s"


def test_every_project_in_progress_gets_its_line_and_one_total_each(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    totals, clock = Totals(400), Clock()
    progress = BackfillProgress(totals, logger, clock=clock)
    for _ in range(3):
        for pid in ("a", "b"):
            clock.now += 5
            progress.read(pid, 100)
    assert totals.asked == ["a", "b"]
    # Lines fall due at 110, 120 and 130 s: each time one per project in progress.
    assert [line.split(",")[0] for line in lines(caplog)] == [
        "Progress: project a",
        "Progress: project b",
    ] * 3


def test_an_unknown_total_still_says_how_far(
    logger: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    progress = BackfillProgress(lambda pid: None, logger, clock=clock)
    clock.now += 11
    progress.read("p1", 300)
    assert lines(caplog) == ["Progress: project p1, 300 items read"]


def test_the_total_is_what_the_read_asks_for(fake: FakeUsersnap) -> None:
    """The count endpoint with the read's own filter: created at or after its start."""
    project_id = next(iter(fake.projects))
    items = sorted(fake.feedback[project_id], key=lambda i: i["created_at"])
    start = items[5]["created_at"]
    stream = TapUsersnap(config=fake.config()).streams["feedback"]
    counts = FeedbackCounts(
        stream.count,  # type: ignore[attr-defined]
        scope_start=None,
        logger=logging.getLogger("progress-test"),
    )
    project = ProjectState(project_id, None, None, start, partition=dict)
    assert counts.to_read(project) == len(items) - 5
    (request,) = fake.requests_to(r"/filter/count$")
    assert request.body == {
        "query": [{"filter_type": "created_at", "operator": "gte", "value": filter_time(start)}]
    }
