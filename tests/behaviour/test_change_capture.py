"""Change capture: feedback edited since the last run is emitted again, at little cost."""

from __future__ import annotations

import typing as t

from fake_usersnap import FakeUsersnap
from harness.singer_run import SyncResult, bookmarks, run_sync

BUG_LABEL = {"company_label_id": "l-1", "identifier": "bug", "name": "Bug", "color": "#f00"}


def marks(state: dict[str, t.Any]) -> dict[str, str]:
    return bookmarks(state, key="updated_at_mark")


def newest_update(fake: FakeUsersnap, project_id: str) -> str:
    return max(i["updated_at"] for i in fake.feedback[project_id])


def at_bookmark(fake: FakeUsersnap, result: SyncResult) -> set[str]:
    """Items a next run reads again because they sit exactly at their project's bookmark."""
    marks_ = bookmarks(result.final_state)
    return {
        i["feedback_id"]
        for pid, items in fake.feedback.items()
        for i in items
        if i["created_at"] == marks_[pid]
    }


def test_first_run_takes_the_mark_with_one_small_request_per_project(fake: FakeUsersnap) -> None:
    result = run_sync(fake.config())
    scans = fake.filter_requests("updated_at")
    assert len(scans) == len(fake.projects)
    assert {r.params["limit"] for r in scans} == {"1"}
    assert {r.body["order_by"]["direction"] for r in scans} == {"desc"}
    assert marks(result.final_state) == {pid: newest_update(fake, pid) for pid in fake.projects}
    assert len(result.ids()) == len(set(result.ids()))


def test_an_edit_is_emitted_again_with_its_new_values(fake: FakeUsersnap) -> None:
    first = run_sync(fake.config(page_size=5))
    project_id = next(iter(fake.projects))
    old_item = fake.feedback[project_id][2]
    edited = fake.update_feedback(
        old_item["feedback_id"], status_type="done", priority="high", labels=[BUG_LABEL]
    )

    second = run_sync(fake.config(page_size=5), state=first.final_state)

    emitted = [r for r in second.records("feedback") if r["feedback_id"] == edited["feedback_id"]]
    assert len(emitted) == 1
    assert emitted[0]["status_type"] == "done"
    assert emitted[0]["priority"] == "high"
    assert emitted[0]["labels"] == [BUG_LABEL]
    assert set(second.ids()) == at_bookmark(fake, first) | {edited["feedback_id"]}
    assert marks(second.final_state)[project_id] == edited["updated_at"]
    assert bookmarks(second.final_state) == bookmarks(first.final_state)


def test_edits_and_new_feedback_in_the_same_run_lose_nothing(fake: FakeUsersnap) -> None:
    first = run_sync(fake.config(page_size=4))
    pids = list(fake.projects)
    edited = [
        fake.update_feedback(fake.feedback[pid][n]["feedback_id"], status_type="in_progress")
        for pid in pids
        for n in (0, 5, 9)
    ]
    new = [fake.add_feedback(pid) for pid in pids for _ in range(3)]

    second = run_sync(fake.config(page_size=4), state=first.final_state)

    expected = {i["feedback_id"] for i in edited + new} | at_bookmark(fake, first)
    assert set(second.ids()) == expected
    assert len(second.ids()) == len(expected)  # each once
    for pid in pids:
        assert bookmarks(second.final_state)[pid] == max(
            i["created_at"] for i in fake.feedback[pid]
        )


def test_many_edits_span_several_pages_of_the_scan(fake: FakeUsersnap) -> None:
    first = run_sync(fake.config(page_size=3))
    project_id = next(iter(fake.projects))
    edited = {
        fake.update_feedback(item["feedback_id"], priority="low")["feedback_id"]
        for item in fake.feedback[project_id][:10]
    }
    fake.requests.clear()

    second = run_sync(fake.config(page_size=3, project_ids=[project_id]), state=first.final_state)

    assert edited <= set(second.ids())
    assert len(fake.filter_requests("updated_at")) == 4  # 10 edits + 1 older item, 3 per page


def test_a_quiet_run_costs_one_scan_request_per_project(fake: FakeUsersnap) -> None:
    first = run_sync(fake.config())
    fake.requests.clear()
    second = run_sync(fake.config(), state=first.final_state)
    assert len(fake.filter_requests("updated_at")) == len(fake.projects)
    assert set(second.ids()) == at_bookmark(fake, first)
    assert marks(second.final_state) == marks(first.final_state)


def test_capture_edits_off_reads_only_new_feedback(fake: FakeUsersnap) -> None:
    config = fake.config(capture_edits=False)
    first = run_sync(config)
    project_id = next(iter(fake.projects))
    fake.update_feedback(fake.feedback[project_id][0]["feedback_id"], status_type="done")
    second = run_sync(config, state=first.final_state)
    assert fake.filter_requests("updated_at") == []
    assert set(second.ids()) == at_bookmark(fake, first)
    assert "updated_at_mark" not in str(second.final_state)


def test_a_mark_without_a_bookmark_loses_nothing(fake: FakeUsersnap) -> None:
    """A run killed right after its edit scan leaves a mark but no bookmark yet."""
    project_id = next(iter(fake.projects))
    mark = newest_update(fake, project_id)
    state = {
        "bookmarks": {
            "feedback": {
                "partitions": [{"context": {"project_id": project_id}, "updated_at_mark": mark}]
            }
        }
    }
    result = run_sync(fake.config(page_size=5), state=state)
    assert sorted(result.ids()) == sorted(fake.all_feedback_ids())
    assert bookmarks(result.final_state)[project_id] == max(
        i["created_at"] for i in fake.feedback[project_id]
    )
    scans = [r for r in fake.filter_requests("updated_at") if project_id in r.path]
    assert [r.params["limit"] for r in scans] == ["1"]  # only the mark, no edits to look for


def test_edits_before_start_date_are_not_re_emitted(fake: FakeUsersnap) -> None:
    project_id = next(iter(fake.projects))
    items = sorted(fake.feedback[project_id], key=lambda i: i["created_at"])
    config = fake.config(start_date=items[6]["created_at"], project_ids=[project_id])
    first = run_sync(config)
    before_start = fake.update_feedback(items[2]["feedback_id"], status_type="done")
    inside = fake.update_feedback(items[8]["feedback_id"], status_type="done")
    second = run_sync(config, state=first.final_state)
    assert inside["feedback_id"] in second.ids()
    assert before_start["feedback_id"] not in second.ids()
