"""The projects and feedback streams: content, order, bookmarks and incremental runs."""

from __future__ import annotations

from fake_usersnap import FakeUsersnap
from harness.singer_run import bookmarks, run_sync

SAME_INSTANT = "2024-03-01T12:00:00.000000Z"


def test_full_sync_emits_every_project_and_feedback_item(fake: FakeUsersnap) -> None:
    result = run_sync(fake.config(page_size=5))

    assert sorted(result.ids("projects", "project_id")) == sorted(fake.projects)
    assert len(result.ids()) == len(set(result.ids()))
    assert set(result.ids()) == fake.all_feedback_ids()
    for project_id, items in fake.feedback.items():
        emitted = [r for r in result.records("feedback") if r["project_id"] == project_id]
        assert [r["created_at"] for r in emitted] == sorted(r["created_at"] for r in emitted)
        assert {r["project_name"] for r in emitted} == {fake.projects[project_id]["name"]}
        assert len(emitted) == len(items)


def test_feedback_records_carry_every_field_of_the_spec(fake: FakeUsersnap) -> None:
    result = run_sync(fake.config())
    record = result.records("feedback")[0]
    source = next(
        i
        for items in fake.feedback.values()
        for i in items
        if i["feedback_id"] == record["feedback_id"]
    )
    for field in (
        "client",
        "custom_data",
        "screenshot",
        "screen_recording",
        "ordered_inputs",
        "labels",
        "public_link",
        "feedback_number",
        "email",
        "status_type",
        "priority",
        "assignee_id",
        "is_demo",
        "updated_at",
    ):
        assert record[field] == source[field], field
    schema_properties = result.schema("feedback")["schema"]["properties"]
    assert set(source) | {"project_name"} <= set(schema_properties)
    assert schema_properties["custom_data"]["type"] == ["object", "null"]


def test_feedback_is_read_oldest_first_with_the_filter_endpoint(fake: FakeUsersnap) -> None:
    run_sync(fake.config(start_date="2024-01-01T00:00:00Z"))
    filters = fake.filter_requests("created_at")
    assert len(filters) == len(fake.projects)
    assert filters[0].body == {
        "order_by": {"order_by_type": "created_at", "direction": "asc"},
        "query": [
            {"filter_type": "created_at", "operator": "gte", "value": "2024-01-01T00:00:00Z"}
        ],
    }
    assert {r.params["limit"] for r in filters} == {"100"}
    assert {r.method for r in fake.requests} <= {"GET", "POST"}
    assert not fake.requests_to(r"GET .*/feedbacks$")


def test_no_query_without_a_start(fake: FakeUsersnap) -> None:
    run_sync(fake.config())
    body = fake.requests_to(r"/filter$")[0].body
    assert "query" not in body


def test_bookmark_per_project_is_max_created_at(fake: FakeUsersnap) -> None:
    result = run_sync(fake.config(page_size=4))
    expected = {pid: max(i["created_at"] for i in items) for pid, items in fake.feedback.items()}
    assert bookmarks(result.final_state) == expected


def test_second_run_emits_only_new_feedback_with_two_requests_per_project(
    fake: FakeUsersnap,
) -> None:
    first = run_sync(fake.config(page_size=5))
    project_id = next(iter(fake.projects))
    new = fake.add_feedback(project_id)
    fake.requests.clear()

    second = run_sync(fake.config(page_size=5), state=first.final_state)

    last_before = bookmarks(first.final_state)
    expected = {new["feedback_id"]} | {
        i["feedback_id"]
        for pid, items in fake.feedback.items()
        for i in items
        if i["created_at"] == last_before[pid]
    }
    assert set(second.ids()) == expected
    # One page of new feedback and one page of the edit scan per project, no rescan.
    assert len(fake.filter_requests("created_at")) == len(fake.projects)
    assert len(fake.filter_requests("updated_at")) == len(fake.projects)
    assert bookmarks(second.final_state)[project_id] == new["created_at"]


def test_ties_across_a_page_boundary_and_at_the_bookmark_are_not_lost(
    empty_fake: FakeUsersnap,
) -> None:
    project = empty_fake.add_project("Ties")
    pid = project["project_id"]
    early = [empty_fake.add_feedback(pid, created_at="2024-03-01T11:00:00.000000Z")]
    tied = [empty_fake.add_feedback(pid, created_at=SAME_INSTANT) for _ in range(5)]
    config = empty_fake.config(page_size=2)

    first = run_sync(config)
    assert set(first.ids()) == {i["feedback_id"] for i in early + tied}
    assert bookmarks(first.final_state)[pid] == SAME_INSTANT

    late_tie = empty_fake.add_feedback(pid, created_at=SAME_INSTANT)
    later = empty_fake.add_feedback(pid, created_at="2024-03-01T12:00:00.000001Z")
    second = run_sync(config, state=first.final_state)
    assert set(second.ids()) == {i["feedback_id"] for i in [*tied, late_tie, later]}
    assert bookmarks(second.final_state)[pid] == later["created_at"]


def test_state_is_written_after_every_page(fake: FakeUsersnap) -> None:
    result = run_sync(fake.config(page_size=5))
    pages = len(fake.filter_requests("created_at"))
    assert pages == 3 * 3  # 12 items per project, 5 per page
    progress = [
        bookmarks(s).get(next(iter(fake.projects)))
        for s in result.states
        if "feedback" in s["bookmarks"]
    ]
    assert len(set(progress)) >= 3  # the first project's bookmark moved page by page


def test_project_ids_limit_both_streams(fake: FakeUsersnap) -> None:
    chosen = list(fake.projects)[1]
    result = run_sync(fake.config(project_ids=[chosen]))
    assert result.ids("projects", "project_id") == [chosen]
    assert {r["project_id"] for r in result.records("feedback")} == {chosen}
    assert len(result.ids()) == len(fake.feedback[chosen])
    assert all(chosen in r.path for r in fake.requests_to("/filter$"))


def test_start_date_skips_older_feedback(fake: FakeUsersnap) -> None:
    items = sorted((i for v in fake.feedback.values() for i in v), key=lambda i: i["created_at"])
    cut = items[len(items) // 2]["created_at"]
    result = run_sync(fake.config(start_date=cut))
    assert set(result.ids()) == {i["feedback_id"] for i in items if i["created_at"] >= cut}


def test_bookmark_wins_over_an_older_start_date(fake: FakeUsersnap) -> None:
    first = run_sync(fake.config())
    fake.requests.clear()
    second = run_sync(fake.config(start_date="2000-01-01T00:00:00Z"), state=first.final_state)
    assert len(second.ids()) == len(fake.projects)  # just the item at each bookmark


def test_timestamps_with_offsets_are_normalised_to_utc(empty_fake: FakeUsersnap) -> None:
    pid = empty_fake.add_project("Offsets")["project_id"]
    empty_fake.add_feedback(
        pid, created_at="2024-05-01T14:00:00+02:00", updated_at="2024-05-01T12:30:00.5Z"
    )
    record = run_sync(empty_fake.config()).records("feedback")[0]
    assert record["created_at"] == "2024-05-01T12:00:00.000000Z"
    assert record["updated_at"] == "2024-05-01T12:30:00.500000Z"


def test_projects_are_listed_in_one_request_without_parameters(fake: FakeUsersnap) -> None:
    result = run_sync(fake.config(page_size=2))
    assert sorted(result.ids("projects", "project_id")) == sorted(fake.projects)
    assert [r.params for r in fake.requests_to("GET /projects$")] == [{}]


def test_a_workspace_without_projects_syncs_nothing(empty_fake: FakeUsersnap) -> None:
    result = run_sync(empty_fake.config())
    assert result.records("projects") == []
    assert result.records("feedback") == []
    assert empty_fake.requests_to("/filter$") == []


def test_a_bookmark_in_another_format_is_normalised_not_misread(fake: FakeUsersnap) -> None:
    first = run_sync(fake.config())
    project_id = next(iter(fake.projects))
    state = first.final_state
    partition = next(
        p
        for p in state["bookmarks"]["feedback"]["partitions"]
        if p["context"]["project_id"] == project_id
    )
    newest = partition["replication_key_value"]  # e.g. 2024-01-01T01:31:01.604941Z
    partition["replication_key_value"] = newest.replace("Z", "+00:00")
    new = fake.add_feedback(project_id)
    second = run_sync(fake.config(), state=state)
    assert new["feedback_id"] in second.ids()
    assert bookmarks(second.final_state)[project_id] == new["created_at"]
