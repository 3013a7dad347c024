"""Hard cases of deletes and late items: runs cut short, old states, odd counts, shards.

Each test drives the tap in-process through both model warehouses (see ``Run``): after it,
no live row is lost and what Usersnap deleted is gone (or, where marked, waits for the
periodic sweep: a known limit).
"""

from __future__ import annotations

import copy
import logging
import typing as t

import pytest

from tap_usersnap.deletes import ACTIVE, PENDING, SWEEP_AGAIN
from tap_usersnap.tap import TapUsersnap
from tests.behaviour.test_deletes_and_late_arrivals import feedback_state, shifted
from tests.behaviour.test_deletes_keep_live_rows import (
    FOREVER,
    Run,
    activated,
    items_of,
    record_messages,
    warnings,
)

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap


def full_table_catalog(fake: FakeUsersnap) -> dict[str, t.Any]:
    catalog = TapUsersnap(config=fake.config()).catalog_dict
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] == "feedback":
            entry["replication_method"] = "FULL_TABLE"
    return catalog


def fail_filter_of(fake: FakeUsersnap, project_id: str, skip: int = 0) -> None:
    """Every ``feedbacks/filter`` request of one project fails (after ``skip``): the run dies."""
    fake.inject(
        "status", status=503, match=rf"/{project_id}/feedbacks/filter$", skip=skip, times=FOREVER
    )


def live_everywhere(run: Run, feedback_id: str) -> bool:
    return any(feedback_id in w.ids("feedback", "feedback_id") for w in run.warehouses)


def test_a_full_table_run_cut_short_then_an_incremental_one_retires_no_live_row(
    fake: FakeUsersnap, sleeps: list[float]
) -> None:
    """A FULL_TABLE run that dies marks every project for the sweep: the next incremental
    run re-reads those it never reached before anything is activated."""
    run = Run(fake)
    run()
    project_c = list(fake.projects)[2]
    fail_filter_of(fake, project_c)
    cut = run(full_table_catalog(fake))
    assert cut.returncode != 0
    fake.clear_faults()
    run()  # back to INCREMENTAL
    run.assert_no_live_row_lost()


def test_a_late_item_arrives_even_when_the_run_that_counted_it_dies(
    fake: FakeUsersnap, sleeps: list[float]
) -> None:
    """A count that rose stays the baseline only once the late re-read is done: a run that
    dies in between leaves the surplus for the next run to find."""
    run = Run(fake)
    run()
    project_a, _, project_c = list(fake.projects)
    bookmark = items_of(fake, project_a)[-1]["created_at"]
    late = fake.add_feedback(project_a, created_at=shifted(bookmark, -3))
    fail_filter_of(fake, project_c, skip=1)  # C's edit scan passes, its new read fails
    assert run().returncode != 0
    fake.clear_faults()
    for _ in range(2):
        run()
    assert live_everywhere(run, late["feedback_id"])
    run.assert_live_rows_are_usersnaps()


def test_a_deletion_a_resumed_sweep_already_passed_is_applied_by_the_next_sweep(
    fake: FakeUsersnap, sleeps: list[float]
) -> None:
    """A sweep dies after re-reading project A; an A item it passed is then deleted: the
    resumed sweep ends, and the next run sweeps again and retires the row."""
    run = Run(fake)
    run()
    project_a, project_b, project_c = list(fake.projects)
    fake.delete_feedback(items_of(fake, project_b)[10]["feedback_id"])
    fail_filter_of(fake, project_c, skip=2)  # scan + new read pass; the re-read dies
    assert run().returncode != 0
    gone = fake.delete_feedback(items_of(fake, project_a)[3]["feedback_id"])
    fake.clear_faults()
    for _ in range(3):
        run()
    assert not live_everywhere(run, gone["feedback_id"])


@pytest.mark.xfail(
    strict=True,
    reason="known limit: a first read cut short leaves no count to compare, so a deletion "
    "among items it already delivered waits for the periodic sweep (sweep_days)",
)
def test_a_deletion_during_a_first_run_cut_short_waits_for_the_periodic_sweep(
    fake: FakeUsersnap, sleeps: list[float]
) -> None:
    """The first run dies after project A; an A item is deleted: no count exists yet to
    see it, so the row waits for the periodic sweep (a known limit)."""
    run = Run(fake)
    project_a, _, project_c = list(fake.projects)
    fail_filter_of(fake, project_c, skip=1)
    assert run().returncode != 0
    gone = fake.delete_feedback(items_of(fake, project_a)[3]["feedback_id"])
    fake.clear_faults()
    for _ in range(3):
        run()
    assert not live_everywhere(run, gone["feedback_id"])


def test_a_new_item_deleted_while_the_run_goes_on_leaves_at_the_next_run(
    fake: FakeUsersnap,
) -> None:
    """Spam delivered by a run and deleted before that run's end: the next count must be
    at least what was delivered, so the next run sees one fewer and retires it."""
    run = Run(fake)
    run()
    project_a = next(iter(fake.projects))
    spam = fake.add_feedback(project_a, comment="Buy cheap watches")
    # The 2nd count request of project A is finish()'s recount: delete the spam just before.
    fake.inject(
        "call",
        action=lambda: fake.delete_feedback(spam["feedback_id"]),
        match=rf"/{project_a}/feedbacks/filter/count$",
        skip=1,
    )
    second = run()
    assert spam["feedback_id"] in second.ids()
    for _ in range(3):
        run()
    assert not live_everywhere(run, spam["feedback_id"])


def test_turning_capture_deletes_off_mid_sweep_retires_no_live_row_later(
    fake: FakeUsersnap, sleeps: list[float]
) -> None:
    """With capture_deletes off, a pending sweep is dropped: turned back on, no version
    is activated that the unversioned rows would fall to."""
    run = Run(fake)
    run()
    _, project_b, project_c = list(fake.projects)
    fake.delete_feedback(items_of(fake, project_b)[10]["feedback_id"])
    fail_filter_of(fake, project_c, skip=2)
    assert run().returncode != 0
    fake.clear_faults()
    for project_id in fake.projects:
        fake.add_feedback(project_id)
    run(capture_deletes=False)
    run.assert_no_live_row_lost()
    run(capture_deletes=True)
    run.assert_no_live_row_lost()


def test_a_count_above_the_list_ends_the_sweep_without_retiring_a_row(fake: FakeUsersnap) -> None:
    """A count 2 above what the list gives, the same at two re-reads in a row: the list may
    be hiding live items, so which are gone cannot be told. The sweep ends holding every row
    (the deletion elsewhere waits for the next sweep), and later runs read nothing again."""
    project_a, project_b, _ = list(fake.projects)

    def plus_two(envelope: dict, request: t.Any) -> dict:
        envelope["data"]["total_count"] += 2
        return envelope

    fake.inject(
        "mangle", transform=plus_two, match=rf"/{project_a}/feedbacks/filter/count$", times=FOREVER
    )
    run = Run(fake)
    run()
    run()
    deleted = items_of(fake, project_b)[4]["feedback_id"]
    fake.delete_feedback(deleted)
    for _ in range(3):
        result = run()
        assert "feedback" not in activated(result)
        run.assert_no_live_row_lost()
    assert all(deleted in w.ids("feedback", "feedback_id") for w in run.warehouses)
    assert PENDING not in run.saved["bookmarks"]["feedback"]
    run()  # the Run clears the fake's requests first
    assert len(fake.filter_requests("created_at")) == len(fake.projects)  # new feedback only


def test_a_sweep_given_up_asks_for_no_other_before_sweep_days(fake: FakeUsersnap) -> None:
    """A sweep that ends without retiring a row says the next is due in sweep_days: a
    request for one more sweep (a deletion during it) ends with it, or every run would
    start one at once and give it up again."""
    project_a, project_b, _ = list(fake.projects)

    def plus_two(envelope: dict, request: t.Any) -> dict:
        envelope["data"]["total_count"] += 2
        return envelope

    run = Run(fake)
    run()
    fake.inject(
        "mangle", transform=plus_two, match=rf"/{project_a}/feedbacks/filter/count$", times=FOREVER
    )
    fake.delete_feedback(items_of(fake, project_b)[4]["feedback_id"])
    run()  # a sweep begins; project a's re-read is short once
    assert PENDING in run.saved["bookmarks"]["feedback"]
    run.saved["bookmarks"]["feedback"][SWEEP_AGAIN] = True  # as a deletion during it would
    run()  # short twice: given up
    feedback = run.saved["bookmarks"]["feedback"]
    assert PENDING not in feedback
    assert SWEEP_AGAIN not in feedback
    quiet = run()
    assert "feedback" not in activated(quiet)
    assert len(fake.filter_requests("created_at")) == len(fake.projects)  # new feedback only
    run.assert_no_live_row_lost()


def test_a_late_item_re_read_that_the_list_never_matches_ends_with_a_warning(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    """A count that rises 2 above the list after a first run looks like late items: the
    re-read comes back short twice by the same number, and it stops, saying so."""
    project_a = next(iter(fake.projects))
    run = Run(fake)
    run()

    def plus_two(envelope: dict, request: t.Any) -> dict:
        envelope["data"]["total_count"] += 2
        return envelope

    fake.inject(
        "mangle", transform=plus_two, match=rf"/{project_a}/feedbacks/filter/count$", times=FOREVER
    )
    run()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        third = run()

    assert third.returncode == 0
    given_up = [w for w in warnings(caplog) if "Usersnap lists fewer items than it counts" in w]
    assert len(given_up) == 1
    assert f"the re-read of project {project_a} delivered" in given_up[0]
    run.assert_no_live_row_lost()


def test_a_new_item_in_the_bookmark_s_second_does_not_mask_a_deletion(fake: FakeUsersnap) -> None:
    """A new item in the bookmark's second and a deleted one leave the count equal: the
    read explains the new item, so the next run sees the deletion."""
    run = Run(fake)
    run()
    project_a = next(iter(fake.projects))
    items = items_of(fake, project_a)
    bookmark = items[-1]["created_at"]
    same_second = bookmark[:19] + ".999999Z"
    assert same_second > bookmark
    fake.add_feedback(project_a, created_at=same_second)
    gone = fake.delete_feedback(items[2]["feedback_id"])
    for _ in range(3):
        run()
    assert not live_everywhere(run, gone["feedback_id"])


def test_a_deletion_and_a_late_item_in_one_run_re_read_the_late_project_once(
    fake: FakeUsersnap,
) -> None:
    """A deletion in A starts a sweep that re-reads B in full; B's late item, counted
    before that re-read began, costs no second re-read."""
    run = Run(fake)
    run()
    project_a, project_b, _ = list(fake.projects)
    fake.delete_feedback(items_of(fake, project_a)[2]["feedback_id"])
    bookmark = items_of(fake, project_b)[-1]["created_at"]
    late = fake.add_feedback(project_b, created_at=shifted(bookmark, -3))
    swept = run()
    assert "feedback" in activated(swept)
    run.assert_live_rows_are_usersnaps()
    emitted = [r for r in swept.ids() if r == late["feedback_id"]]
    from_start = [
        r
        for r in fake.requests_to(rf"POST .*/{project_b}/feedbacks/filter$")
        if r.body["order_by"]["order_by_type"] == "created_at"
        and "query" not in r.body
        and "after" not in r.params
    ]
    assert (len(emitted), len(from_start)) == (1, 1)


def test_an_older_tap_s_pending_read_is_redone_under_a_new_version(
    fake: FakeUsersnap,
) -> None:
    """An older tap's pending read (no sweep_started_at), and a FULL_TABLE run after one
    cut short, start every project from scratch under a new version: a row emitted under
    the old pending version and deleted since is retired."""
    run = Run(fake)
    run()
    state = copy.deepcopy(run.saved)
    feedback = state["bookmarks"]["feedback"]
    feedback[PENDING] = feedback.pop(ACTIVE)
    for key in ("swept_at", "sweep_started_at"):
        feedback.pop(key, None)
    run.state = state
    gone = fake.delete_feedback(items_of(fake, next(iter(fake.projects)))[4]["feedback_id"])
    for _ in range(2):
        run()
    assert not live_everywhere(run, gone["feedback_id"])


def test_full_table_after_a_cut_short_run_retires_a_deleted_row(
    fake: FakeUsersnap, sleeps: list[float]
) -> None:
    """FULL_TABLE run cut short after A; an A item deleted: the next FULL_TABLE run's new
    version retires it."""
    catalog = full_table_catalog(fake)
    run = Run(fake)
    run(catalog)
    project_a, _, project_c = list(fake.projects)
    fail_filter_of(fake, project_c)
    assert run(catalog).returncode != 0
    gone = fake.delete_feedback(items_of(fake, project_a)[4]["feedback_id"])
    fake.clear_faults()
    assert "feedback" in activated(run(catalog))
    assert not live_everywhere(run, gone["feedback_id"])


def test_a_sweep_with_a_late_item_and_new_feedback_read_four_at_once(
    empty_fake: FakeUsersnap, read_ahead: None
) -> None:
    fake = empty_fake
    fake.seed(projects=4, per_project=23)
    run = Run(fake)
    run.config["concurrency"] = 4
    run()
    project_a, project_b, *_ = list(fake.projects)
    fake.delete_feedback(items_of(fake, project_a)[7]["feedback_id"])
    bookmark = items_of(fake, project_b)[-1]["created_at"]
    fake.add_feedback(project_b, created_at=shifted(bookmark, -2))
    for project_id in fake.projects:
        for _ in range(6):
            fake.add_feedback(project_id)
    swept = run()
    assert "feedback" in activated(swept)
    run.assert_live_rows_are_usersnaps()
    quiet = run()
    assert "feedback" not in activated(quiet)
    assert len(fake.requests_to(r"/feedbacks/")) <= 4 * len(fake.projects)
    run.assert_live_rows_are_usersnaps()


def test_a_late_item_while_a_sweep_is_pending_arrives_and_the_sweep_ends(
    fake: FakeUsersnap, sleeps: list[float]
) -> None:
    run = Run(fake)
    run()
    project_a, project_b, project_c = list(fake.projects)
    fake.delete_feedback(items_of(fake, project_b)[10]["feedback_id"])
    fail_filter_of(fake, project_c, skip=2)
    assert run().returncode != 0
    fake.clear_faults()
    bookmark = items_of(fake, project_a)[-1]["created_at"]
    late = fake.add_feedback(project_a, created_at=shifted(bookmark, -3))
    resumed = run()
    assert late["feedback_id"] in resumed.ids()
    assert "feedback" in activated(resumed)
    run.assert_live_rows_are_usersnaps()


def test_a_project_refused_during_a_sweep_holds_it_and_it_ends_once_lifted(
    fake: FakeUsersnap,
) -> None:
    run = Run(fake)
    run()
    project_a, project_b, _ = list(fake.projects)
    fake.delete_feedback(items_of(fake, project_a)[3]["feedback_id"])
    fake.refuse_project(project_b, 403)
    for _ in range(2):
        held = run()
        assert "feedback" not in activated(held)
        run.assert_no_live_row_lost()
        assert PENDING in feedback_state(run)
    fake.refuse_project(project_b, 0)
    assert "feedback" in activated(run())
    run.assert_live_rows_are_usersnaps()


@pytest.mark.parametrize(
    "hostile",
    [
        {"reread_from": "", "reread_rows": -7},
        {"reread_from": None, "reread_rows": "many"},
        {"reread_rows": 10**9},
        {"feedback_count": -3},
        {"feedback_count": "12", "counted_before": 12},
        {"counted_before": "not-a-time-at-all!!"},
        {"project_name": ["x"]},
    ],
    ids=lambda h: ",".join(f"{k}={v!r}" for k, v in h.items()),
)
def test_hostile_partition_values_neither_crash_nor_lose_rows(
    fake: FakeUsersnap, hostile: dict[str, t.Any]
) -> None:
    run = Run(fake)
    run()
    state = copy.deepcopy(run.saved)
    for partition in state["bookmarks"]["feedback"]["partitions"]:
        partition.update(hostile)
    run.state = state
    fake.delete_feedback(items_of(fake, next(iter(fake.projects)))[4]["feedback_id"])
    for _ in range(3):
        result = run()
        assert result.returncode == 0, result.error
        run.assert_no_live_row_lost()
    # Not asserted: with a corrupt feedback_count/counted_before the deletion made before
    # the run is absorbed into the new baseline and waits for the periodic sweep.


@pytest.mark.parametrize(
    "stream_values",
    [
        {"table_version": "x", "deletes_pending_version": -1},
        {"swept_at": 17, "sweep_started_at": []},
        {"table_version": "ACTIVE", "deletes_pending_version": "ACTIVE+1"},  # older tap
    ],
    ids=["bad versions", "bad sweep times", "old pending and active"],
)
def test_odd_or_old_stream_values_neither_crash_nor_lose_rows(
    fake: FakeUsersnap, stream_values: dict[str, t.Any]
) -> None:
    run = Run(fake)
    run()
    state = copy.deepcopy(run.saved)
    feedback = state["bookmarks"]["feedback"]
    active = feedback[ACTIVE]
    for key in ("table_version", "deletes_pending_version", "swept_at", "sweep_started_at"):
        feedback.pop(key, None)
    names = {"ACTIVE": active, "ACTIVE+1": active + 1}
    feedback.update(
        {k: names.get(v, v) if isinstance(v, str) else v for k, v in stream_values.items()}
    )
    run.state = state
    fake.delete_feedback(items_of(fake, next(iter(fake.projects)))[4]["feedback_id"])
    for _ in range(2):
        result = run()
        assert result.returncode == 0, result.error
        run.assert_no_live_row_lost()
    run.assert_live_rows_are_usersnaps()


def test_an_old_model_state_counted_to_the_bookmark_s_second(fake: FakeUsersnap) -> None:
    """The previous model saved counted_before = the bookmark's own second."""
    run = Run(fake)
    run()
    state = copy.deepcopy(run.saved)
    feedback = state["bookmarks"]["feedback"]
    for key in ("swept_at", "sweep_started_at"):
        feedback.pop(key, None)
    for partition in feedback["partitions"]:
        partition["counted_before"] = partition["replication_key_value"][:19]
        partition["feedback_count"] -= 1  # the bookmark's own item is not before its second
        for key in ("project_name", "reread_from", "reread_rows"):
            partition.pop(key, None)
    run.state = state
    quiet = run()
    assert "feedback" not in activated(quiet)
    run.assert_live_rows_are_usersnaps()
    fake.delete_feedback(items_of(fake, next(iter(fake.projects)))[-1]["feedback_id"])
    assert "feedback" in activated(run())
    run.assert_live_rows_are_usersnaps()


def test_capture_deletes_off_still_delivers_late_items(fake: FakeUsersnap) -> None:
    run = Run(fake, capture_deletes=False)
    run()
    project_a = next(iter(fake.projects))
    bookmark = items_of(fake, project_a)[-1]["created_at"]
    late = fake.add_feedback(project_a, created_at=shifted(bookmark, -3))
    second = run()
    assert late["feedback_id"] in second.ids()
    assert not activated(second) or "feedback" not in activated(second)
    assert {m.get("version") for m in record_messages(second)} == {None}


def test_a_run_with_capture_deletes_off_keeps_rows_retirable_by_a_later_sweep(
    fake: FakeUsersnap,
) -> None:
    """Rows it sends keep the active version: an SDK SQL sink never retires a row whose
    version a record without one set to null (target-postgres does)."""
    run = Run(fake)
    run()
    project_a, project_b, _ = list(fake.projects)
    edited = items_of(fake, project_a)[3]["feedback_id"]
    fake.update_feedback(edited, status_type="closed")
    added = fake.add_feedback(project_b)["feedback_id"]
    off = run(capture_deletes=False)
    active = feedback_state(run)[ACTIVE]
    assert {m.get("version") for m in record_messages(off)} == {active}
    assert {m.get("version") for m in record_messages(off, "projects")} == {active}
    fake.delete_feedback(edited)
    fake.delete_feedback(added)
    run()
    run()
    run.assert_live_rows_are_usersnaps()


def test_deletions_while_capture_deletes_was_off_apply_once_it_is_on_again(
    fake: FakeUsersnap,
) -> None:
    """Counts taken while it was off absorbed the deletion: turned on again, a sweep runs."""
    run = Run(fake)
    run()
    fake.delete_feedback(items_of(fake, next(iter(fake.projects)))[2]["feedback_id"])
    run(capture_deletes=False)
    run.assert_no_live_row_lost()
    back_on = run()
    assert "feedback" in activated(back_on)
    run.assert_live_rows_are_usersnaps()
    assert "feedback" not in activated(run())


def test_capture_deletes_off_finds_late_items_after_a_mass_deletion(
    empty_fake: FakeUsersnap,
) -> None:
    """Without deletes the guard holds nothing back: the lower count is taken, so a late
    item after it still shows in the count (kept at the old count, it stayed hidden)."""
    fake = empty_fake
    fake.seed(projects=1, per_project=30)
    run = Run(fake, capture_deletes=False)
    run()
    project = next(iter(fake.projects))
    items = items_of(fake, project)
    for item in items[:20]:  # two thirds: more than max_delete_percent
        fake.delete_feedback(item["feedback_id"])
    run()
    late = fake.add_feedback(project, created_at=shifted(items[-1]["created_at"], -3))
    third = run()
    assert late["feedback_id"] in third.ids()


def test_a_project_in_project_ids_that_usersnap_deleted_leaves_the_warehouse(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    """Read, it was refused in every run (exit 1) and held every deletion back; Usersnap
    says it does not exist, so its rows go with the sweep that follows, and the user is
    told to drop it from project_ids."""
    project_ids = list(fake.projects)
    run = Run(fake, project_ids=project_ids)
    run()
    fake.remove_project(project_ids[2])
    with caplog.at_level(logging.WARNING):
        second = run()

    assert second.error is None
    assert "feedback" in activated(second)
    run.assert_live_rows_are_usersnaps()
    assert any(
        w.startswith(f"project_ids names project {project_ids[2]}, which Usersnap says no")
        for w in warnings(caplog)
    )
    third = run(project_ids=project_ids[:2])
    assert third.error is None
    assert "feedback" not in activated(third)
    fake.delete_feedback(items_of(fake, project_ids[0])[0]["feedback_id"])
    assert "feedback" in activated(run(project_ids=project_ids[:2]))
    run.assert_live_rows_are_usersnaps()


def test_a_project_ids_shard_sweeps_only_its_projects(fake: FakeUsersnap) -> None:
    shard = list(fake.projects)[:2]
    run = Run(fake, project_ids=shard)
    run()
    fake.delete_feedback(items_of(fake, shard[1])[5]["feedback_id"])
    swept = run()
    assert "feedback" in activated(swept)
    for warehouse in run.warehouses:
        wanted = {i["feedback_id"] for pid in shard for i in fake.feedback[pid]}
        assert warehouse.ids("feedback", "feedback_id") == wanted
    assert {p["context"]["project_id"] for p in feedback_state(run)["partitions"]} == set(shard)


def test_nothing_changed_after_a_sweep_and_a_late_re_read_costs_four_a_project(
    fake: FakeUsersnap,
) -> None:
    run = Run(fake)
    run()
    project_a, project_b, _ = list(fake.projects)
    fake.delete_feedback(items_of(fake, project_a)[2]["feedback_id"])
    run()
    bookmark = items_of(fake, project_b)[-1]["created_at"]
    fake.add_feedback(project_b, created_at=shifted(bookmark, -3))
    run()
    for _ in range(2):
        quiet = run()
        assert "feedback" not in activated(quiet)
        assert len(fake.requests_to(r"/feedbacks/")) <= 4 * len(fake.projects)
    run.assert_live_rows_are_usersnaps()
    assert ACTIVE in feedback_state(run)


def test_full_table_every_run_mirrors_usersnap(fake: FakeUsersnap, read_ahead: None) -> None:
    catalog = full_table_catalog(fake)
    run = Run(fake)
    run.config["concurrency"] = 3
    for change in range(3):
        fake.delete_feedback(items_of(fake, list(fake.projects)[change])[change]["feedback_id"])
        fake.add_feedback(list(fake.projects)[change])
        result = run(catalog)
        assert "feedback" in activated(result)
        run.assert_live_rows_are_usersnaps()
