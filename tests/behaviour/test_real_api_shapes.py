"""The tap against an API that reads ``openapi.json`` strictly, or differs only where it is silent.

Each test runs the ``tap-usersnap`` command against the fake over HTTP and judges the run by
what a user sees: the records delivered, the exit code, the one error line, the state. The
fake refuses what the spec does not allow (a query parameter on ``GET /projects``, a filter
timestamp with a fraction of a second) and its switches play the answers the spec leaves
open: a listing that says ``has_more`` with no way on, a project refused with 403 or 404,
a filter that ignores ``after``.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
import typing as t

import pytest

from fake_usersnap import FakeUsersnap, ProjectsPaging, filter_time
from harness.expect import error_lines, oldest_first
from harness.singer_run import SyncResult, bookmarks, run_cli

#: The one form of a filter value the spec shows.
WHOLE_SECOND = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
PAGE_SIZE = 5


def cli(fake: FakeUsersnap, state: dict | None = None, **settings: t.Any) -> SyncResult:
    """One run of the command, as a user or an orchestrator starts it."""
    return run_cli(config=fake.config(page_size=PAGE_SIZE, **settings), state=state)


def filter_values(fake: FakeUsersnap) -> list[str]:
    """Every ``created_at`` value the tap sent in a filter or count body."""
    return [
        condition["value"]
        for request in fake.requests_to(r"POST .*/filter(/count)?$")
        for condition in (request.body or {}).get("query") or []
        if condition.get("filter_type") == "created_at"
    ]


def activations(result: SyncResult) -> list[str]:
    """The streams an ACTIVATE_VERSION went out for (each retires the rows not re-sent)."""
    return [m["stream"] for m in result.messages if m["type"] == "ACTIVATE_VERSION"]


def ids_of(fake: FakeUsersnap, project_id: str, since: str | None = None) -> set[str]:
    """A project's feedback ids (created at or after ``since``)."""
    return {
        i["feedback_id"]
        for i in fake.feedback[project_id]
        if since is None or i["created_at"] >= since
    }


def later(timestamp: str, **delta: float) -> str:
    """``timestamp`` moved on by ``delta``, in Usersnap's own form (microseconds, ``Z``)."""
    moment = dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00")) + dt.timedelta(**delta)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ended_cleanly(result: SyncResult) -> None:
    """No traceback, whatever the exit code: a failure is told in lines a user can read."""
    assert "Traceback" not in result.stderr, result.stderr


# ------------------------------------------------------------------ timestamps, whole seconds


def test_a_start_date_with_a_fraction_reads_everything_from_it_in_whole_seconds(
    fake: FakeUsersnap,
) -> None:
    project = next(iter(fake.projects))
    start = oldest_first(fake, project)[3]["created_at"]  # e.g. 2024-01-01T00:28:00.493828Z
    assert not WHOLE_SECOND.match(start)
    # Created in start_date's second, before it: outside the scope, yet inside its second.
    early = fake.add_feedback(project, created_at=filter_time(start).replace("Z", ".000000Z"))

    result = cli(fake, start_date=start)

    assert result.returncode == 0, result.stderr
    wanted = {i for p in fake.projects for i in ids_of(fake, p, since=start)}
    assert set(result.ids()) == wanted
    assert early["feedback_id"] not in result.ids()
    values = filter_values(fake)
    assert values
    assert all(WHOLE_SECOND.match(v) for v in values), values
    assert filter_time(start) in values  # gte on start_date's own second: nothing lost
    assert "ignored the created_at filter" not in result.stderr
    assert error_lines(result.stderr) == []


def test_incremental_runs_after_a_first_run_without_start_date_lose_nothing(
    fake: FakeUsersnap,
) -> None:
    first = cli(fake)
    assert first.returncode == 0, first.stderr
    assert set(first.ids()) == fake.all_feedback_ids()
    marks = bookmarks(first.final_state)
    assert not any(WHOLE_SECOND.match(mark) for mark in marks.values())  # Usersnap's form
    new: set[str] = set()
    for project_id, mark in marks.items():
        # One in the bookmark's own second, after it; two later on.
        new.add(
            fake.add_feedback(project_id, created_at=later(mark, microseconds=1))["feedback_id"]
        )
        new |= {fake.add_feedback(project_id)["feedback_id"] for _ in range(2)}

    for _ in range(2):  # every incremental run, not only the first one
        fake.requests.clear()
        second = cli(fake, first.final_state)

        assert second.returncode == 0, second.stderr
        at_bookmarks = {
            i["feedback_id"]
            for p, mark in marks.items()
            for i in fake.feedback[p]
            if i["created_at"] == mark
        }
        assert set(second.ids()) == new | at_bookmarks
        assert all(WHOLE_SECOND.match(v) for v in filter_values(fake))
        assert bookmarks(second.final_state) == {
            p: max(i["created_at"] for i in fake.feedback[p]) for p in fake.projects
        }
        assert error_lines(second.stderr) == []


def test_items_sharing_the_bookmarks_second_are_neither_lost_nor_sent_twice(
    empty_fake: FakeUsersnap,
) -> None:
    fake = empty_fake
    project = fake.add_project("One second, three items")["project_id"]
    for n in range(6):
        fake.add_feedback(project, created_at=f"2024-03-01T10:0{n}:00.000000Z")
    before = fake.add_feedback(project, created_at="2024-03-01T10:07:30.100000Z")
    marked = fake.add_feedback(project, created_at="2024-03-01T10:07:30.500000Z")
    first = cli(fake)
    assert first.returncode == 0, first.stderr
    assert bookmarks(first.final_state) == {project: marked["created_at"]}
    after = fake.add_feedback(project, created_at="2024-03-01T10:07:30.900000Z")

    second = cli(fake, first.final_state)
    third = cli(fake, second.final_state)

    assert second.returncode == third.returncode == 0, second.stderr + third.stderr
    # gte 10:07:30 answers all three; the one before the bookmark was delivered already.
    assert second.ids() == [marked["feedback_id"], after["feedback_id"]]
    assert third.ids() == [after["feedback_id"]]  # the item at the bookmark, as ever
    assert before["feedback_id"] not in second.ids() + third.ids()
    # Reads start at the bookmark's second; counts end at the next one (the newest included).
    # The first run's full read is also counted up to the second that run began.
    values = set(filter_values(fake))
    run_start = {v for v in values if v > "2025"}
    assert values - run_start == {"2024-03-01T10:07:30Z", "2024-03-01T10:07:31Z"}
    assert len(run_start) == 1
    # Counted the same way as the API counts (whole seconds): no deletion is suspected, so
    # no full re-read and nothing retired.
    assert "feedback" not in activations(second) + activations(third)
    for run in (second, third):
        assert "ignored the created_at filter" not in run.stderr
        assert "Deletions to apply" not in run.stderr


# --------------------------------------------------------------------------- GET /projects


def test_the_listing_is_one_get_projects_without_parameters_and_every_request_accepts_json(
    fake: FakeUsersnap,
) -> None:
    result = cli(fake)

    assert result.returncode == 0, result.stderr
    assert set(result.ids()) == fake.all_feedback_ids()
    assert sorted(result.ids("projects", "project_id")) == sorted(fake.projects)
    assert [r.params for r in fake.requests_to("GET /projects$")] == [{}]
    assert {r.headers.get("Accept") for r in fake.requests} == {"application/json"}


@pytest.mark.parametrize(
    ("paging", "count"),
    [
        (ProjectsPaging(shown=2), 3),
        (ProjectsPaging(shown=2, cursor="ignored"), 3),
        (ProjectsPaging(shown=2, count=9), 9),
    ],
    ids=["has_more, no next", "has_more, next leads to the same page", "a count of its own"],
)
def test_a_listing_with_no_way_on_delivers_the_listed_projects_and_retires_nothing(
    fake: FakeUsersnap, paging: ProjectsPaging, count: int
) -> None:
    first = cli(fake)
    assert first.returncode == 0, first.stderr
    listed, (unlisted,) = list(fake.projects)[:2], list(fake.projects)[2:]
    new = {p: {fake.add_feedback(p)["feedback_id"] for _ in range(3)} for p in fake.projects}
    fake.projects_paging = paging
    fake.requests.clear()

    second = cli(fake, first.final_state)

    ended_cleanly(second)
    assert second.returncode == 1
    assert error_lines(second.stderr)[-1].endswith(
        "The Usersnap project listing (GET /projects) is not complete: it listed 2 project(s) "
        f"of a count of {count}, said has_more, and gives no way to the rest (the API "
        "documents no cursor for it); the listed projects were synced, no deletion was applied"
    )
    assert len(error_lines(second.stderr)) == 1
    assert new[listed[0]] | new[listed[1]] <= set(second.ids())
    assert not new[unlisted] & set(second.ids())
    assert sorted(second.ids("projects", "project_id")) == sorted(listed)
    assert activations(second) == []  # no table loses a row on the strength of this listing
    state = second.final_state
    assert unlisted in state["bookmarks"]["projects"]["project_ids"]  # still known
    assert bookmarks(state)[unlisted] == bookmarks(first.final_state)[unlisted]
    assert [r.params for r in fake.requests_to("GET /projects$")] == [{}]


# ------------------------------------------------------------------- a project refused


@pytest.mark.parametrize(
    ("status", "answer"),
    [(403, "403 FORBIDDEN"), (404, "404 NOT_FOUND"), (400, "400 SITE_NOT_FOUND")],
)
def test_a_refused_project_is_skipped_by_name_and_the_others_are_delivered(
    fake: FakeUsersnap, status: int, answer: str
) -> None:
    first = cli(fake)
    assert first.returncode == 0, first.stderr
    refused, *others = fake.projects
    new = {p: {fake.add_feedback(p)["feedback_id"] for _ in range(7)} for p in fake.projects}
    fake.refuse_project(refused, status)

    second = cli(fake, first.final_state)

    ended_cleanly(second)
    assert second.returncode == 1
    last = error_lines(second.stderr)[-1]
    assert f"Skipped 1 Usersnap project(s) that Usersnap refused or does not know: '{refused}'" in (
        last
    )
    assert f"Usersnap answered '{refused}': {answer}" in last
    delivered = set(second.ids())
    assert new[others[0]] | new[others[1]] <= delivered
    assert not new[refused] & delivered
    assert activations(second) == []  # the refused project's rows stay
    marks = bookmarks(second.final_state)
    assert marks[refused] == bookmarks(first.final_state)[refused]
    for project in others:
        assert marks[project] == max(i["created_at"] for i in fake.feedback[project])

    fake.refuse_project(refused, 0)  # the next run tries it again
    third = cli(fake, second.final_state)

    assert third.returncode == 0, third.stderr
    assert new[refused] <= set(third.ids())
    assert bookmarks(third.final_state)[refused] == max(
        i["created_at"] for i in fake.feedback[refused]
    )


def test_a_project_refused_on_the_first_run_costs_the_others_nothing(fake: FakeUsersnap) -> None:
    refused, *others = fake.projects
    fake.refuse_project(refused, 404)

    result = cli(fake)

    ended_cleanly(result)
    assert result.returncode == 1
    assert set(result.ids()) == ids_of(fake, others[0]) | ids_of(fake, others[1])
    assert f"'{refused}'" in error_lines(result.stderr)[-1]
    assert activations(result) == []
    assert refused not in bookmarks(result.final_state)


# ----------------------------------------------------------------- a state from outside


def test_a_state_naming_a_project_twice_keeps_the_later_bookmark(fake: FakeUsersnap) -> None:
    first = cli(fake)
    assert first.returncode == 0, first.stderr
    project = next(iter(fake.projects))
    state = copy.deepcopy(first.final_state)
    partitions = state["bookmarks"]["feedback"]["partitions"]
    entry = next(p for p in partitions if p["context"]["project_id"] == project)
    stale = {
        **copy.deepcopy(entry),
        "replication_key_value": oldest_first(fake, project)[0]["created_at"],
    }
    partitions.append(stale)  # a hand-merged state: the same project, an older bookmark
    new = fake.add_feedback(project)

    second = cli(fake, state)

    ended_cleanly(second)
    assert second.returncode == 0, second.stderr
    assert "duplicate entries" not in second.stderr
    warnings = [line for line in second.stderr.splitlines() if "| WARNING" in line]
    assert any(
        f"names project {project} twice" in line and entry["replication_key_value"] in line
        for line in warnings
    ), second.stderr
    mine = [r for r in second.records("feedback") if r["project_id"] == project]
    assert {r["feedback_id"] for r in mine} == {
        i["feedback_id"]
        for i in fake.feedback[project]
        if i["created_at"] >= entry["replication_key_value"]
    }
    assert new["feedback_id"] in second.ids()
    final = second.final_state["bookmarks"]["feedback"]["partitions"]
    assert [p["context"]["project_id"] for p in final].count(project) == 1


# ------------------------------------------------------------------ a cursor ignored


def test_a_filter_that_ignores_after_stops_the_run_in_one_line(fake: FakeUsersnap) -> None:
    fake.filter_ignores_after = True

    result = cli(fake)

    ended_cleanly(result)
    assert result.returncode == 1
    (line,) = error_lines(result.stderr)
    assert "a second time" in line
    assert "stopping rather than looping forever" in line
    # Nothing is read twice, and no page beyond the first was invented.
    assert len(result.ids()) == len(set(result.ids()))
    assert activations(result) == []
