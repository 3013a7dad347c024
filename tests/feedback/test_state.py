"""A project's read progress: bookmarks and counts per page, and state read defensively."""

from __future__ import annotations

import logging

import pytest

from tap_usersnap.feedback.state import (
    COUNT,
    EDIT_MARK,
    ProjectState,
    StateError,
    load_project_states,
)

LOGGER = logging.getLogger("project-state-test")
T = "2024-01-01T00:00:0{}.000000Z"


def load(stream_state: dict, **options: object) -> dict[str, ProjectState]:
    settings: dict = {
        "replication_key": "created_at",
        "start_date": None,
        "full_table": False,
        "partition_for": lambda pid: {},
        "logger": LOGGER,
        **options,
    }
    return load_project_states(stream_state, ["p1", "p2"], **settings)


def partition(project_id: str, **values: object) -> dict:
    return {"context": {"project_id": project_id}, "replication_key": "created_at", **values}


def test_pages_move_the_bookmark_and_count_what_lies_before_it() -> None:
    project = ProjectState("p1", T.format(1), None, T.format(1), partition=dict, baseline=10)
    project.advance([T.format(1), T.format(1), T.format(2)])  # two at the old bookmark
    assert (project.bookmark, project.count) == (T.format(2), 12)
    project.advance([T.format(2), T.format(3), T.format(3)])
    assert (project.bookmark, project.count) == (T.format(3), 14)
    project.advance([T.format(3)])  # only ties: the bookmark stays, nothing moves below it
    assert (project.bookmark, project.count) == (T.format(3), 14)


def test_save_writes_bookmark_and_count_and_drops_a_count_when_not_counting() -> None:
    state: dict = {COUNT: 99}
    project = ProjectState("p1", None, None, None, partition=lambda: state)
    project.advance([T.format(4)])
    project.save("created_at")
    assert state == {"replication_key": "created_at", "replication_key_value": T.format(4)}


def test_state_values_are_normalised() -> None:
    states = load(
        {
            "partitions": [
                partition(
                    "p1",
                    replication_key_value="2024-01-01T02:00:00+02:00",
                    **{EDIT_MARK: "2024-01-01T00:30:00Z", COUNT: 5},
                )
            ]
        }
    )
    assert states["p1"].bookmark == "2024-01-01T00:00:00.000000Z"
    assert states["p1"].edit_mark == "2024-01-01T00:30:00.000000Z"
    assert states["p1"].saved_count == 5
    assert states["p2"].bookmark is None


@pytest.mark.parametrize("value", ["garbage", 12, ["x"]])
def test_an_unusable_value_names_the_project_and_the_value(value: object) -> None:
    with pytest.raises(StateError, match=r"project p1 holds an unusable replication_key_value"):
        load({"partitions": [partition("p1", replication_key_value=value)]})


def test_an_older_stream_level_bookmark_serves_every_project_without_its_own() -> None:
    older = {"replication_key": "created_at", "replication_key_value": T.format(5)}
    states = load({**older, "partitions": [partition("p1", replication_key_value=T.format(7))]})
    assert states["p1"].bookmark == T.format(7)
    assert states["p2"].bookmark == T.format(5)


def test_full_table_and_start_date_set_where_reading_starts() -> None:
    saved = {"partitions": [partition("p1", replication_key_value=T.format(3))]}
    assert load(saved, start_date=T.format(5))["p1"].start == T.format(5)
    assert load(saved, start_date=T.format(1))["p1"].start == T.format(3)
    assert load(saved, full_table=True)["p1"].start is None


def test_a_future_bookmark_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    future = "2999-01-01T00:00:00.000000Z"
    load({"partitions": [partition("p2", replication_key_value=future)]})
    assert "project p2, 2999-01-01T00:00:00.000000Z, is in the future" in caplog.text
