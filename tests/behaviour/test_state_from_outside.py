"""State from outside: offsets in marks, unusable values, bookmarks in the future, older
layouts and files that are not JSON objects.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import typing as t
from pathlib import Path

import pytest

from fake_usersnap import filter_time
from harness.expect import error_lines, messages_at, oldest_first
from harness.reliability import (
    BAD_INPUT,
    FaultScenario,
)
from harness.singer_run import bookmarks, run_cli, run_sync
from harness.warehouse import Warehouse
from tap_usersnap.records import format_timestamp
from tap_usersnap.state import StateError

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap


FILTER = r"POST .*/filter$"


def feedback_state(**partitions: dict[str, t.Any]) -> dict[str, t.Any]:
    """A state with one feedback partition per project id given (rows at table version 1)."""
    return {
        "bookmarks": {
            "feedback": {
                "table_version": 1,
                "partitions": [
                    {"context": {"project_id": pid}, **values} for pid, values in partitions.items()
                ],
            }
        }
    }


def test_an_edit_mark_with_an_offset_is_read_as_the_instant_it_names(
    empty_fake: FakeUsersnap,
) -> None:
    fake = empty_fake
    project_id = fake.add_project("Offsets")["project_id"]

    def add(created: str, updated: str | None = None) -> str:
        item = fake.add_feedback(project_id, created_at=created, updated_at=updated or created)
        return str(item["feedback_id"])

    add("2023-12-31T20:00:00.000000Z")
    edited_before_mark = add("2023-12-31T21:00:00.000000Z", "2023-12-31T23:59:00.000000Z")
    edited_after_mark = add("2023-12-31T22:00:00.000000Z", "2024-01-01T00:30:00.000000Z")
    newest = add("2023-12-31T23:00:00.000000Z")
    state = feedback_state(
        **{
            project_id: {
                "replication_key": "created_at",
                "replication_key_value": "2023-12-31T23:00:00.000000Z",
                "updated_at_mark": "2024-01-01T02:00:00+02:00",  # 2024-01-01T00:00:00Z
            }
        }
    )

    result = run_sync(fake.config(page_size=5), state)

    assert sorted(result.ids()) == sorted([edited_after_mark, newest])
    assert edited_before_mark not in result.ids()
    assert bookmarks(result.final_state, key="updated_at_mark") == {
        project_id: "2024-01-01T00:30:00.000000Z"
    }
    assert bookmarks(result.final_state) == {project_id: "2023-12-31T23:00:00.000000Z"}


@pytest.mark.parametrize("key", ["replication_key_value", "updated_at_mark"])
def test_an_unusable_state_value_fails_the_cli_naming_the_project(
    fake: FakeUsersnap, key: str
) -> None:
    project_id = list(fake.projects)[1]
    state = feedback_state(**{project_id: {"replication_key": "created_at", key: "garbage"}})

    result = run_cli(config=fake.config(), state=state)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert [line.split(" | ")[-1] for line in error_lines(result.stderr)] == [
        f"The state of feedback project {project_id} holds an unusable {key}: 'garbage' is "
        "not an ISO 8601 timestamp. Correct it or clear the state (meltano state clear "
        "<state id>)"
    ]
    assert result.ids() == []
    assert fake.requests_to(FILTER) == []


def test_an_unusable_bookmark_is_a_state_error(fake: FakeUsersnap) -> None:
    project_id = next(iter(fake.projects))
    state = feedback_state(**{project_id: {"replication_key_value": "garbage"}})
    result = run_sync(fake.config(), state, check=False)
    assert isinstance(result.error, StateError)
    assert project_id in str(result.error)


def test_a_bookmark_in_the_future_is_warned_about(scenario: FaultScenario) -> None:
    fake = scenario.fake
    ahead, *others = fake.projects
    future = format_timestamp(dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=365))
    state = feedback_state(
        **{ahead: {"replication_key": "created_at", "replication_key_value": future}}
    )
    expected = {i["feedback_id"] for pid in others for i in fake.feedback[pid]}

    played = scenario.play(
        "a bookmark a year in the future", group=BAD_INPUT, state=state, expected=expected
    )

    assert sorted(played.first.ids()) == sorted(expected)
    assert messages_at(scenario.caplog, logging.WARNING) == [
        f"The state's bookmark of project {ahead}, {future}, is in the future: no feedback "
        "created before it will be read for this project. Correct or clear the state if wrong"
    ]
    assert bookmarks(played.first.final_state)[ahead] == future


def test_a_stream_level_bookmark_of_an_older_layout_serves_every_project(
    scenario: FaultScenario,
) -> None:
    fake = scenario.fake
    second_project = list(fake.projects)[1]
    since = oldest_first(fake, second_project)[5]["created_at"]
    state = {
        "bookmarks": {"feedback": {"replication_key": "created_at", "replication_key_value": since}}
    }
    expected = {
        i["feedback_id"]
        for items in fake.feedback.values()
        for i in items
        if i["created_at"] >= since
    }
    assert 0 < len(expected) < len(fake.all_feedback_ids())

    played = scenario.play(
        "a stream-level bookmark (older state layout)",
        group=BAD_INPUT,
        state=state,
        expected=expected,
    )

    assert sorted(played.first.ids()) == sorted(expected)
    first_filters: dict[str, list[dict[str, str]]] = {}
    for request in fake.filter_requests("created_at"):
        first_filters.setdefault(request.path.split("/")[2], request.body["query"])
    assert first_filters == {
        pid: [{"filter_type": "created_at", "operator": "gte", "value": filter_time(since)}]
        for pid in fake.projects
    }
    assert (
        f"The state holds a stream-level bookmark, {since} (an older layout): every project "
        "is read from it unless it has a bookmark of its own"
    ) in messages_at(scenario.caplog, logging.INFO)


@pytest.mark.parametrize("option", ["--state", "--catalog", "--config"])
@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"bookmarks": {', r"is not valid JSON \(.+\)"),
        ("[1, 2]", "holds a list, not a JSON object"),
        ('{"page_size": NaN}', r"is not valid JSON \(NaN is not a JSON value\)"),
    ],
    ids=["not JSON", "a list", "NaN"],
)
def test_a_state_catalog_or_config_file_that_is_not_a_json_object_fails_in_one_line(
    fake: FakeUsersnap, tmp_path: Path, option: str, content: str, problem: str
) -> None:
    path = tmp_path / f"{option[2:]}.json"
    path.write_text(content)

    result = run_cli(option, str(path), config=fake.config())

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert re.search(rf"\| The {option[2:]} file {re.escape(str(path))} {problem}$", errors[0])
    assert fake.requests == []


@pytest.mark.parametrize(
    ("state", "problem"),
    [
        ({"bookmarks": None}, "bookmarks is null, not an object"),
        ({"bookmarks": {"feedback": None}}, "bookmarks.feedback is null, not an object"),
        (
            {"bookmarks": {"feedback": {"partitions": None}}},
            "bookmarks.feedback.partitions is null, not a list",
        ),
        (
            {"bookmarks": {"feedback": {"partitions": ["junk"]}}},
            "bookmarks.feedback.partitions[0] is a string, not an object",
        ),
        (
            {"bookmarks": {"feedback": {"partitions": [{"context": 5}]}}},
            "bookmarks.feedback.partitions[0].context is an integer, not an object",
        ),
        (
            {"bookmarks": {"projects": {"partitions": [{}]}}},
            "bookmarks.projects.partitions[0] has no context",
        ),
        (
            {"bookmarks": {"feedback": {"progress_markers": None}}},
            "bookmarks.feedback.progress_markers is null, not an object",
        ),
        (
            {"bookmarks": {"other": {"partitions": [{"context": {}, "progress_markers": 5}]}}},
            "bookmarks.other.partitions[0].progress_markers is an integer, not an object",
        ),
    ],
)
def test_a_state_file_of_the_wrong_shape_fails_in_one_line_naming_the_part(
    fake: FakeUsersnap, state: dict[str, t.Any], problem: str
) -> None:
    result = run_cli(config=fake.config(), state=state)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert f"is not Singer state: {problem}. Correct it or clear the state" in errors[0]
    assert fake.requests == []


def test_a_scope_start_in_the_future_stops_the_run_before_any_row_is_retired(
    fake: FakeUsersnap,
) -> None:
    """Read from there, every project would count nothing and every row would look deleted."""
    state = run_sync(fake.config()).final_state
    ahead = format_timestamp(dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=30))
    state["bookmarks"]["feedback"]["scope_start"] = ahead
    filters_before = len(fake.requests_to(FILTER))

    result = run_sync(fake.config(), state, check=False)

    assert isinstance(result.error, StateError)
    assert str(result.error) == (
        f"The state of the feedback stream holds a scope_start in the future, {ahead}: no "
        "feedback could be read, and every loaded row would look deleted. Correct it or clear "
        "the state (meltano state clear <state id>)"
    )
    assert not [m for m in result.messages if m["type"] == "ACTIVATE_VERSION"]
    assert len(fake.requests_to(FILTER)) == filters_before


def test_a_scope_start_hours_ahead_from_a_start_date_is_kept(fake: FakeUsersnap) -> None:
    """A start_date a few hours ahead is accepted (clocks differ), so is its pinned scope."""
    soon = format_timestamp(dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=3))
    first = run_sync(fake.config(start_date=soon))
    project_id = next(iter(fake.projects))
    later = fake.add_feedback(
        project_id,
        created_at=format_timestamp(dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=4)),
    )

    second = run_sync(fake.config(start_date=soon), first.final_state)

    assert second.ids() == [later["feedback_id"]]


def test_a_bookmark_at_the_end_of_time_costs_only_its_own_project(fake: FakeUsersnap) -> None:
    last, *others = fake.projects
    end = "9999-12-31T23:59:59.999999Z"
    state = feedback_state(
        **{last: {"replication_key": "created_at", "replication_key_value": end}}
    )

    result = run_sync(fake.config(), state)

    assert sorted(result.ids()) == sorted(
        i["feedback_id"] for p in others for i in fake.feedback[p]
    )
    assert bookmarks(result.final_state)[last] == end


@pytest.mark.parametrize("value", ["x", -1, 1.5, True, [1], 2**63])
def test_an_unusable_table_version_is_dropped_with_a_warning_naming_it(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture, value: t.Any
) -> None:
    state = run_sync(fake.config()).final_state
    state["bookmarks"]["feedback"]["table_version"] = value
    new = fake.add_feedback(next(iter(fake.projects)))

    with caplog.at_level(logging.WARNING):
        result = run_sync(fake.config(), state)

    assert new["feedback_id"] in result.ids()
    assert (
        "The state of the feedback stream holds an unusable table_version, "
        f"{str(value)[:60]!r}, which is no table version: dropped (a new version is taken "
        "where one is needed)"
    ) in messages_at(caplog, logging.WARNING)
    assert result.final_state["bookmarks"]["feedback"].get("table_version") != value
    versions = [m.get("version") for m in result.messages if m["type"] == "RECORD"]
    assert value not in versions


@pytest.mark.parametrize("stream", ["projects", "project_assignees"])
def test_partitions_a_state_gives_a_full_table_stream_read_it_once(
    fake: FakeUsersnap, stream: str
) -> None:
    """Each context a state names would be one more read of the whole stream (each row
    emitted again, every assignee asked again): the stream reads once, whatever it names."""
    state = {"bookmarks": {stream: {"partitions": [{"context": {"n": n}} for n in range(5)]}}}

    result = run_sync(fake.config(), state)

    assert len(result.records(stream)) == len({str(r) for r in result.records(stream)})
    assert len(fake.requests_to(r"GET /projects$")) == 1
    assert len(fake.requests_to(r"/assignees$")) == len(fake.projects)


@pytest.mark.parametrize("junk", ["..", ".", "", ["a list"]])
def test_a_project_id_no_request_can_name_in_the_state_holds_back_no_deletion(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture, junk: t.Any
) -> None:
    """Asked about, it could never answer, so every deletion would wait for ever: its
    partition is dropped, named in a warning, and the deletion applies."""
    warehouse = Warehouse()
    first = run_sync(fake.config())
    warehouse.apply(first.messages)
    state = first.final_state
    state["bookmarks"]["feedback"]["partitions"].append({"context": {"project_id": junk}})
    state["bookmarks"]["projects"]["project_ids"].append(junk)
    gone = fake.feedback[next(iter(fake.projects))][2]["feedback_id"]
    fake.delete_feedback(gone)

    with caplog.at_level(logging.WARNING):
        second = run_sync(fake.config(), state)
    warehouse.apply(second.messages)

    assert warehouse.ids("feedback", "feedback_id") == fake.all_feedback_ids()
    assert any(
        "The state's feedback partition of a project was dropped" in r.message
        for r in caplog.records
    )
    assert not [r for r in caplog.records if "Deletions not applied" in r.message]
