"""Projects and assignees keep to their SCHEMA and store in PostgreSQL, whatever the API sent.

The same conform step as feedback's: a value of the wrong type is converted where nothing is
lost or set to null, a timestamp normalised or nulled, NUL characters removed; each change is
named in a warning, never quoting the value. A project's name reaches its feedback conformed.
"""

from __future__ import annotations

import logging
import typing as t

import pytest

from harness.singer_run import run_sync

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap


def test_project_values_of_the_wrong_kind_are_conformed_and_named(
    empty_fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    fake = empty_fake
    project = fake.add_project(
        "Web\x00shop",
        is_live="true",
        created_at=1709287200,
        updated_at="2024-03-01 10:00:00 UTC",
    )
    fake.add_feedback(project["project_id"])
    project["open_feedback_count"] = "12"  # after the fake counted the feedback

    with caplog.at_level(logging.WARNING):
        result = run_sync(fake.config())

    (record,) = result.records("projects")
    assert record["name"] == "Webshop"
    assert record["open_feedback_count"] == 12
    assert record["is_live"] is True
    assert record["created_at"] is None
    assert record["updated_at"] is None
    (item,) = result.records("feedback")
    assert item["project_name"] == "Webshop"
    changes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Changed")]
    assert len(changes) == 5, changes
    assert all(f"project {project['project_id']}" in line for line in changes)
    assert not any("1709287200" in line or "\x00" in line for line in changes)


@pytest.mark.parametrize(
    ("second", "problem"),
    [("no user_id", "it has no user_id"), ("the same user_id", "its user_id is listed twice")],
)
def test_an_assignee_without_a_usable_user_id_is_skipped_by_name_the_others_kept(
    empty_fake: FakeUsersnap, caplog: pytest.LogCaptureFixture, second: str, problem: str
) -> None:
    """Listed twice, two records with one key in one run: a target would keep either."""
    fake = empty_fake
    project = fake.add_project("Web shop")
    kept = fake.add_assignee(project["project_id"], first_name="Gr\x00ace")
    user_id = kept["user_id"] if second == "the same user_id" else None
    fake.add_assignee(project["project_id"], user_id=user_id, first_name="Ada")

    with caplog.at_level(logging.WARNING):
        result = run_sync(fake.config())

    assert [(r["user_id"], r["first_name"]) for r in result.records("project_assignees")] == [
        (kept["user_id"], "Grace")
    ]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        f"Skipped assignee 2 of project 'Web shop' ({project['project_id']}): {problem}" in warnings
    )
    named = f"Changed project_assignees record {project['project_id']!r} {kept['user_id']!r}: "
    assert [w for w in warnings if w.startswith("Changed")] == [
        named + "its first_name held a NUL character or a lone surrogate: removed or replaced "
        "by U+FFFD"
    ]


def test_the_state_a_run_writes_stays_within_the_size_of_its_records(
    empty_fake: FakeUsersnap,
) -> None:
    """Every STATE holds each project's partition: a first run over many small projects
    writes STATE at most once per as many records as there are projects."""
    fake = empty_fake
    for number in range(150):
        project = fake.add_project(f"Project {number}")
        for _ in range(3):
            fake.add_feedback(project["project_id"])

    result = run_sync(fake.config(capture_edits=False))

    assert len(result.ids()) == 450
    state_bytes = sum(len(str(m)) for m in result.messages if m["type"] == "STATE")
    record_bytes = sum(len(str(m)) for m in result.messages if m["type"] == "RECORD")
    assert state_bytes < record_bytes
    assert len(result.states) < 15  # a STATE after every page would be over 150
