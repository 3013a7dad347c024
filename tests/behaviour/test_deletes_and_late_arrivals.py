"""The warehouse equals Usersnap: the newest deletions, late items, renames, resumed sweeps.

Each run's messages go to both model warehouses (target-postgres's rule and the SDK SQL
sink's, see ``Run``); after every run their live rows must equal the fake's items.
"""

from __future__ import annotations

import datetime as dt
import logging
import typing as t

import pytest

from harness.singer_run import run_sync
from harness.sql_target import live_ids, load
from tap_usersnap.deletes import PENDING, SWEPT_AT
from tests.behaviour.test_deletes_keep_live_rows import (
    COUNT,
    FILTER,
    FOREVER,
    Run,
    activated,
    items_of,
    record_messages,
    warnings,
)

if t.TYPE_CHECKING:
    from pathlib import Path

    from fake_usersnap import FakeUsersnap


def shifted(timestamp: str, seconds: float) -> str:
    moment = dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return (moment + dt.timedelta(seconds=seconds)).isoformat(timespec="microseconds")[:26] + "Z"


def feedback_state(run: Run) -> dict[str, t.Any]:
    return run.saved["bookmarks"]["feedback"]


def test_the_newest_item_deleted_leaves_at_the_next_run(fake: FakeUsersnap) -> None:
    run = Run(fake)
    run()
    project = next(iter(fake.projects))
    newest = items_of(fake, project)[-1]
    fake.add_feedback(project, created_at=newest["created_at"])  # tied at the bookmark
    run()
    run.assert_live_rows_are_usersnaps()
    fake.delete_feedback(newest["feedback_id"])
    deleted = run()
    assert "feedback" in activated(deleted)
    run.assert_live_rows_are_usersnaps()


def test_spam_deleted_soon_after_it_loaded_leaves_while_new_items_arrive(
    fake: FakeUsersnap,
) -> None:
    run = Run(fake)
    run()
    project = next(iter(fake.projects))
    spam = fake.add_feedback(project, comment="Buy cheap watches")
    run()
    fake.delete_feedback(spam["feedback_id"])
    for _ in range(3):
        for project_id in fake.projects:
            fake.add_feedback(project_id)
        run()
        run.assert_live_rows_are_usersnaps()


def test_an_item_that_becomes_visible_late_arrives_at_the_next_run(fake: FakeUsersnap) -> None:
    run = Run(fake)
    run()
    project = next(iter(fake.projects))
    bookmark = items_of(fake, project)[-1]["created_at"]
    late = fake.add_feedback(project, created_at=shifted(bookmark, -3))
    second = run()
    assert late["feedback_id"] in {m["record"]["feedback_id"] for m in record_messages(second)}
    run.assert_live_rows_are_usersnaps()
    third = run()  # found once: the count now agrees (the item at each bookmark comes again)
    assert len(record_messages(third)) == len(fake.projects)
    assert len(fake.requests_to(FILTER)) == 2 * len(fake.projects)


def test_a_count_that_leaves_out_demo_items_costs_no_re_read(fake: FakeUsersnap) -> None:
    fake.count_leaves_out_demo = True
    project = next(iter(fake.projects))
    for _ in range(3):
        fake.add_feedback(project, is_demo=True)
    run = Run(fake)
    run()
    run.assert_live_rows_are_usersnaps()
    for _ in range(3):
        quiet = run()
        assert "feedback" not in activated(quiet)
        assert len(record_messages(quiet)) == len(fake.projects)  # each bookmark's item
        requests = [r for r in fake.requests if "/feedbacks/" in r.path]
        assert len(requests) <= 4 * len(fake.projects)
    fake.delete_feedback(items_of(fake, project)[5]["feedback_id"])
    deleted = run()
    assert "feedback" in activated(deleted)
    run.assert_live_rows_are_usersnaps()
    assert "feedback" not in activated(run())  # one sweep, not one every run


def test_a_sweep_cut_short_goes_on_where_it_stopped_and_new_feedback_keeps_loading(
    empty_fake: FakeUsersnap, sleeps: list[float]
) -> None:
    fake = empty_fake
    fake.seed(projects=3, per_project=40)
    run = Run(fake)
    run()
    _, project_b, project_c = list(fake.projects)
    fake.delete_feedback(items_of(fake, project_b)[10]["feedback_id"])
    new: list[str] = []
    rereads_from_start = 0
    for attempt in range(10):
        new += [fake.add_feedback(pid)["feedback_id"] for pid in fake.projects]
        # The job is cut short: project C's filter fails after a few pages each run.
        fake.inject(
            "status", status=503, match=rf"/{project_c}/feedbacks/filter$", skip=4, times=FOREVER
        )
        result = run()
        fake.clear_faults()
        loaded = run.warehouses[0].ids("feedback", "feedback_id")
        assert set(new) <= loaded, attempt  # new feedback loads in every run
        run.assert_no_live_row_lost()
        rereads_from_start += sum(
            1
            for r in fake.requests_to(rf"/{project_c}/feedbacks/filter$")
            if r.status == 200
            and r.body["order_by"]["order_by_type"] == "created_at"
            and "query" not in r.body
            and "after" not in r.params
        )
        if "feedback" in activated(result):
            break
    else:
        pytest.fail("the sweep never finished")
    assert rereads_from_start == 1  # resumed from its position, never from scratch again
    assert PENDING not in feedback_state(run)
    run.assert_live_rows_are_usersnaps()
    assert attempt > 0


def test_a_project_missing_from_the_listing_but_answering_is_read_by_its_id(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    run = Run(fake)
    run()
    hidden, other, _ = list(fake.projects)
    fake.delete_feedback(items_of(fake, other)[0]["feedback_id"])
    fresh = fake.add_feedback(hidden)

    def leave_out(envelope: dict, request: t.Any) -> dict:
        projects = envelope["data"]["projects"]
        envelope["data"]["projects"] = [p for p in projects if p["project_id"] != hidden]
        return envelope

    for _ in range(2):
        fake.inject("mangle", transform=leave_out, match="GET /projects$")
        with caplog.at_level(logging.WARNING):
            result = run()
        for warehouse in run.warehouses:
            assert warehouse.ids("feedback", "feedback_id") == fake.all_feedback_ids()
            assert warehouse.ids("projects", "project_id") == set(fake.projects)
            row = warehouse.row("feedback", fresh["feedback_id"])
            assert row["project_name"] == fake.projects[hidden]["name"]
        assert "projects" not in activated(result)
    missing = f"project {hidden} is missing from the project listing"
    assert any(missing in w for w in warnings(caplog))


def test_a_renamed_project_s_rows_all_carry_the_new_name_after_the_next_run(
    fake: FakeUsersnap,
) -> None:
    run = Run(fake)
    run()
    project = next(iter(fake.projects))
    fake.projects[project]["name"] = "Checkout (renamed)"
    fake.add_feedback(project)
    renamed = run()
    assert "feedback" not in activated(renamed)
    for warehouse in run.warehouses:
        names = {
            r["project_name"]
            for r in warehouse.tables["feedback"].rows.values()
            if r["project_id"] == project
        }
        assert names == {"Checkout (renamed)"}
    assert len(fake.requests_to(FILTER)) < 2 * len(fake.projects) + 5  # one project re-read
    run()
    assert len(fake.requests_to(FILTER)) == 2 * len(fake.projects)


@pytest.mark.parametrize(
    ("items", "deleted", "applied"),
    [(20, 15, False), (40, 20, True), (19, 19, True)],
    ids=["20 losing 15: held", "40 losing 20 (50%): applied", "19 losing all: applied"],
)
def test_the_mass_deletion_guard_counts_the_whole_project(
    empty_fake: FakeUsersnap, items: int, deleted: int, applied: bool
) -> None:
    fake = empty_fake
    fake.seed(projects=1, per_project=items)
    run = Run(fake)
    run()
    project = next(iter(fake.projects))
    for item in items_of(fake, project)[-deleted:]:  # the newest included
        fake.delete_feedback(item["feedback_id"])
    result = run()
    assert ("feedback" in activated(result)) is applied
    if applied:
        run.assert_live_rows_are_usersnaps()
    else:
        run.assert_no_live_row_lost()


def test_a_due_sweep_finds_a_deletion_and_a_late_item_that_cancel_out_in_the_count(
    fake: FakeUsersnap,
) -> None:
    run = Run(fake)
    run()
    project = next(iter(fake.projects))
    items = items_of(fake, project)
    fake.delete_feedback(items[4]["feedback_id"])
    fake.add_feedback(project, created_at=shifted(items[6]["created_at"], -1))
    unseen = run()
    assert "feedback" not in activated(unseen)  # the count is the same: no way to see it
    state = feedback_state(run)
    state[SWEPT_AT] = "2020-01-01T00:00:00.000000Z"
    swept = run()
    assert "feedback" in activated(swept)
    run.assert_live_rows_are_usersnaps()
    assert feedback_state(run)[SWEPT_AT] > "2020-01-02"
    assert "feedback" not in activated(run(sweep_days=0))


def test_deletions_and_late_items_through_an_sdk_sql_target(
    fake: FakeUsersnap, tmp_path: Path
) -> None:
    database = tmp_path / "warehouse.db"
    config = fake.config(concurrency=1, page_size=5)
    state = None
    project = next(iter(fake.projects))
    changes = [
        lambda: None,
        lambda: fake.delete_feedback(items_of(fake, project)[-1]["feedback_id"]),
        lambda: fake.add_feedback(
            project, created_at=shifted(items_of(fake, project)[-1]["created_at"], -2)
        ),
        lambda: [fake.add_feedback(pid) for pid in fake.projects],
        lambda: fake.delete_feedback(fake.add_feedback(project)["feedback_id"]),
    ]
    for change in changes:
        change()
        result = run_sync(config, state)
        load(result.messages, database, hard_delete=True)
        state = result.final_state
        assert live_ids(database, "feedback", "feedback_id") == fake.all_feedback_ids()
    assert fake.requests_to(COUNT)


def test_a_sweep_read_several_projects_at_once_keeps_order_and_mirrors_usersnap(
    empty_fake: FakeUsersnap, read_ahead: None, caplog: pytest.LogCaptureFixture
) -> None:
    fake = empty_fake
    fake.seed(projects=4, per_project=30)
    run = Run(fake)
    run.config["concurrency"] = 4
    run()
    loaded_newest = items_of(fake, next(iter(fake.projects)))[-1]["feedback_id"]
    for project_id in fake.projects:
        for _ in range(7):
            fake.add_feedback(project_id)
    fake.delete_feedback(loaded_newest)
    with caplog.at_level(logging.WARNING):
        swept = run()
    assert "feedback" in activated(swept)
    run.assert_live_rows_are_usersnaps()
    assert not [w for w in warnings(caplog) if "out of created_at order" in w]
    saved = {p["context"]["project_id"]: p for p in feedback_state(run)["partitions"]}
    for project_id in fake.projects:
        newest = max(i["created_at"] for i in fake.feedback[project_id])
        assert saved[project_id]["replication_key_value"] == newest
        assert "reread_from" not in saved[project_id]


def test_new_items_in_the_bookmark_s_second_or_instant_are_not_taken_for_late_ones(
    fake: FakeUsersnap,
) -> None:
    run = Run(fake)
    run()
    project = next(iter(fake.projects))
    bookmark = items_of(fake, project)[-1]["created_at"]
    tie = fake.add_feedback(project, created_at=bookmark)
    after = fake.add_feedback(project, created_at=shifted(bookmark, 0.000001))
    second = run()
    sent = {m["record"]["feedback_id"] for m in record_messages(second)}
    assert {tie["feedback_id"], after["feedback_id"]} <= sent
    assert len(sent) == len(fake.projects) + 2  # each bookmark's item again, and the two
    assert len(fake.requests_to(FILTER)) == 2 * len(fake.projects)  # nothing re-read
    run.assert_live_rows_are_usersnaps()
