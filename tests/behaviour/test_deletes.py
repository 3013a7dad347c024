"""Deletions in Usersnap leave the warehouse: feedback, projects and assignees.

Each run's messages are applied to tables the way SDK targets apply them
(:mod:`harness.warehouse`); after every run the live rows must equal the fake's data.
"""

from __future__ import annotations

import typing as t

import pytest

from fake_usersnap import filter_time
from harness.singer_run import SyncResult, bookmarks, run_sync
from harness.warehouse import Warehouse
from tap_usersnap.client import CursorRejectedError, UsersnapError
from tap_usersnap.deletes import PENDING

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap

COUNT = r"POST .*/filter/count$"
FILTER = r"POST .*/filter$"


def assignee_keys(fake: FakeUsersnap) -> set[tuple[str, str]]:
    return {
        (pid, user["user_id"])
        for pid, project in fake.projects.items()
        for user in fake.assignees[project["api_key"]]
    }


def assert_mirrors(warehouse: Warehouse, fake: FakeUsersnap) -> None:
    assert warehouse.ids("feedback", "feedback_id") == fake.all_feedback_ids()
    assert warehouse.ids("projects", "project_id") == set(fake.projects)
    live_assignees = {
        (r["project_id"], r["user_id"]) for r in warehouse.tables["project_assignees"].rows.values()
    }
    assert live_assignees == assignee_keys(fake)
    for items in fake.feedback.values():
        for item in items:
            assert (
                warehouse.row("feedback", item["feedback_id"])["status_type"]
                == (item["status_type"])
            )


def sync(fake: FakeUsersnap, warehouse: Warehouse, state: dict | None) -> SyncResult:
    fake.requests.clear()
    result = run_sync(fake.config(concurrency=1, page_size=5), state)
    warehouse.apply(result.messages)
    return result


def test_three_runs_full_then_deletes_edits_and_new_then_nothing(fake: FakeUsersnap) -> None:
    warehouse = Warehouse()
    first = sync(fake, warehouse, None)
    assert_mirrors(warehouse, fake)
    # A first run is a full read: two counts per project prove it complete before activation
    # (to the bookmark, and to the run's start: a read that ended early matches the first).
    assert len(fake.requests_to(COUNT)) == 2 * len(fake.projects)
    assert [m["stream"] for m in first.messages if m["type"] == "ACTIVATE_VERSION"] == [
        "feedback",
        "projects",
        "project_assignees",
    ]

    project_a, project_b, project_c = list(fake.projects)
    gone = [fake.feedback[project_a][3]["feedback_id"], fake.feedback[project_b][0]["feedback_id"]]
    for feedback_id in gone:
        fake.delete_feedback(feedback_id)
    edited = fake.feedback[project_c][2]
    fake.update_feedback(edited["feedback_id"], status_type="done")
    new = fake.add_feedback(project_c)
    staffed = next(pid for pid, p in fake.projects.items() if fake.assignees[p["api_key"]])
    fake.remove_assignee(staffed, fake.assignees[fake.projects[staffed]["api_key"]][0]["user_id"])

    second = sync(fake, warehouse, first.final_state)
    assert_mirrors(warehouse, fake)
    assert not set(gone) & warehouse.ids("feedback", "feedback_id")
    assert new["feedback_id"] in warehouse.ids("feedback", "feedback_id")
    assert warehouse.row("feedback", edited["feedback_id"])["status_type"] == "done"
    activations = [m for m in second.messages if m["type"] == "ACTIVATE_VERSION"]
    assert {m["stream"] for m in activations} == {"feedback", "projects", "project_assignees"}
    assert PENDING not in second.final_state["bookmarks"]["feedback"]

    third = sync(fake, warehouse, second.final_state)
    assert_mirrors(warehouse, fake)
    assert len(fake.requests_to(COUNT)) == len(fake.projects)  # one count each, nothing else
    assert [m["stream"] for m in third.messages if m["type"] == "ACTIVATE_VERSION"] == [
        "projects",
        "project_assignees",
    ]
    assert bookmarks(third.final_state) == bookmarks(second.final_state)


def test_nothing_deleted_costs_one_count_request_per_project(fake: FakeUsersnap) -> None:
    warehouse = Warehouse()
    first = sync(fake, warehouse, None)
    full_read = len(fake.requests_to(FILTER))
    second = sync(fake, warehouse, first.final_state)
    assert len(fake.requests_to(COUNT)) == len(fake.projects)
    assert len(fake.requests_to(FILTER)) < full_read
    assert all(
        m["stream"] != "feedback" for m in second.messages if m["type"] == "ACTIVATE_VERSION"
    )


def test_a_project_deleted_as_a_whole_leaves_with_its_feedback(fake: FakeUsersnap) -> None:
    warehouse = Warehouse()
    first = sync(fake, warehouse, None)
    doomed = next(iter(fake.projects))
    fake.remove_project(doomed)
    second = sync(fake, warehouse, first.final_state)
    assert_mirrors(warehouse, fake)
    assert doomed not in bookmarks(second.final_state)


def test_start_date_bounds_what_is_counted_and_read_again(fake: FakeUsersnap) -> None:
    project = next(iter(fake.projects))
    start = fake.feedback[project][4]["created_at"]
    config = fake.config(concurrency=1, page_size=5, start_date=start)
    warehouse = Warehouse()
    first = run_sync(config)
    warehouse.apply(first.messages)
    fake.delete_feedback(fake.feedback[project][6]["feedback_id"])
    fake.requests.clear()
    second = run_sync(config, first.final_state)
    warehouse.apply(second.messages)
    wanted = {
        i["feedback_id"]
        for items in fake.feedback.values()
        for i in items
        if i["created_at"] >= start
    }
    assert warehouse.ids("feedback", "feedback_id") == wanted
    for request in fake.requests_to(COUNT):
        value = filter_time(start)  # the scope's second: the count counts from it
        assert {"filter_type": "created_at", "operator": "gte", "value": value} in request.body[
            "query"
        ]


def test_a_failed_reconciliation_deletes_nothing_and_the_next_run_finishes_it(
    fake: FakeUsersnap, sleeps: list[float]
) -> None:
    warehouse = Warehouse()
    first = sync(fake, warehouse, None)
    project_a, project_b, _ = list(fake.projects)
    fake.delete_feedback(fake.feedback[project_a][0]["feedback_id"])
    fake.inject("status", status=503, match=rf"POST .*/{project_b}/feedbacks/filter$", times=10**6)
    fake.requests.clear()
    failed = run_sync(fake.config(concurrency=1, page_size=5), first.final_state, check=False)
    assert isinstance(failed.error, UsersnapError)
    warehouse.apply(failed.messages)
    assert [m for m in failed.messages if m["type"] == "ACTIVATE_VERSION"] == []
    still_there = {i["feedback_id"] for items in fake.feedback.values() for i in items}
    assert still_there <= warehouse.ids("feedback", "feedback_id")  # nothing live was lost
    assert failed.final_state["bookmarks"]["feedback"][PENDING]

    fake.clear_faults()
    resumed = sync(fake, warehouse, failed.final_state)
    assert_mirrors(warehouse, fake)
    assert PENDING not in resumed.final_state["bookmarks"]["feedback"]


def test_an_item_deleted_while_paging_past_it_restarts_its_project_once(
    fake: FakeUsersnap,
) -> None:
    project = next(iter(fake.projects))
    cursor_item = fake.feedback[project][4]  # the last item of the first page (page_size 5)
    # The project's filter requests: the edit scan's one item, page 1, then page 2 after it.

    def delete_it(*_: t.Any) -> None:
        fake.delete_feedback(cursor_item["feedback_id"])

    fake.inject(
        "call", action=delete_it, match=rf"POST .*/{project}/feedbacks/filter$", skip=2, times=1
    )
    warehouse = Warehouse()
    result = sync(fake, warehouse, None)
    assert warehouse.ids("feedback", "feedback_id") >= fake.all_feedback_ids()
    rejected = [r for r in fake.requests_to(FILTER) if r.status == 400]
    assert len(rejected) == 1
    assert result.returncode == 0


@pytest.mark.parametrize("setting", [False])
def test_capture_deletes_off_sends_no_activate_version_and_no_version(
    fake: FakeUsersnap, setting: bool
) -> None:
    config = fake.config(capture_deletes=setting)
    first = run_sync(config)
    fake.delete_feedback(next(iter(fake.feedback.values()))[0]["feedback_id"])
    fake.requests.clear()
    second = run_sync(config, first.final_state)
    assert len(fake.requests_to(COUNT)) == len(fake.projects)  # late arrivals are still found
    assert len(fake.requests_to(FILTER)) == 2 * len(fake.projects)  # no re-read: edits, new
    assert [m for m in first.messages + second.messages if m["type"] == "ACTIVATE_VERSION"] == []
    assert all("version" not in m for m in second.messages if m["type"] == "RECORD")


def test_a_second_refused_cursor_in_one_read_is_one_clear_failure(
    empty_fake: FakeUsersnap,
) -> None:
    fake = empty_fake
    fake.seed(projects=1, per_project=40)
    project = next(iter(fake.projects))

    def delete_the_item_each_page_ends_with(envelope: dict, request: t.Any) -> dict:
        items = envelope["data"]["feedbacks"]
        if items and envelope["data"]["has_more"]:
            fake.delete_feedback(items[-1]["feedback_id"])  # the next page's cursor
        return envelope

    fake.inject(
        "mangle",
        transform=delete_the_item_each_page_ends_with,
        match=rf"POST .*/{project}/feedbacks/filter$",
        times=10**6,
    )
    result = run_sync(fake.config(concurrency=1, page_size=5), check=False)
    assert isinstance(result.error, CursorRejectedError)
    assert "rejected the page cursor" in str(result.error)
    assert len([r for r in fake.requests_to(FILTER) if r.status == 400]) == 2


def test_a_skipped_item_does_not_hide_a_deletion(fake: FakeUsersnap) -> None:
    """The API counts an item the tap skips (no feedback_id), so the tap counts it too."""
    project = next(iter(fake.projects))
    items = sorted(fake.feedback[project], key=lambda i: i["created_at"])
    keyless = items[3]["feedback_id"]

    def drop_its_key(envelope: dict, request: t.Any) -> dict:
        for item in envelope["data"]["feedbacks"]:
            if item.get("feedback_id") == keyless:
                del item["feedback_id"]
        return envelope

    fake.inject("mangle", transform=drop_its_key, match=FILTER, times=10**6)
    warehouse = Warehouse()
    first = sync(fake, warehouse, None)
    fake.delete_feedback(items[6]["feedback_id"])
    second = sync(fake, warehouse, first.final_state)
    assert "feedback" in {m["stream"] for m in second.messages if m["type"] == "ACTIVATE_VERSION"}
    assert warehouse.ids("feedback", "feedback_id") == fake.all_feedback_ids() - {keyless}
