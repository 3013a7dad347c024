"""The projects listing as the spec has it: one ``GET /projects`` with no query parameter.

The spec documents ``has_more`` and ``count`` on the listing but no cursor. An answer that
says ``has_more`` is not the whole list: its projects are still synced, nothing is retired on
its strength, and the run fails at the end naming the numbers.
"""

from __future__ import annotations

import logging
import typing as t

import pytest

from fake_usersnap import ProjectsPaging
from harness.expect import messages_at
from harness.singer_run import run_sync

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap


@pytest.mark.parametrize("cursor", ["none", "ignored"])
def test_a_listing_that_says_has_more_keeps_the_projects_listed_and_retires_nothing(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture, cursor: t.Literal["none", "ignored"]
) -> None:
    fake.projects_paging = ProjectsPaging(shown=2, cursor=cursor)
    listed = list(fake.projects)[:2]

    with caplog.at_level(logging.INFO):
        result = run_sync(fake.config(), check=False)

    short = (
        "The Usersnap project listing (GET /projects) is not complete: it listed 2 project(s) "
        "of a count of 3, said has_more, and gives no way to the rest (the API documents no "
        "cursor for it); the listed projects were synced, no deletion was applied"
    )
    assert str(result.error) == short
    assert sorted(result.ids("projects", "project_id")) == sorted(listed)
    assert sorted(result.ids()) == sorted(i for p in listed for i in _ids(fake, p))
    assert messages_at(caplog, logging.WARNING) == [
        short,
        # Even a first run: after a full refresh, the warehouse may hold a missing project.
        "Deletions not applied to feedback, every row stays and the next run tries again: "
        "the first read is not complete: the project listing stopped early, so a missing "
        "project may exist",
        "Deletions not applied to projects and project_assignees, every row stays and the "
        "next run tries again: the project listing stopped early, so a missing project may "
        "exist",
        "Run summary: deletions held back for feedback, projects and project_assignees (a "
        "warning above says why); nothing was removed from them",
    ]
    assert [m for m in result.messages if m["type"] == "ACTIVATE_VERSION"] == []
    assert [r.params for r in fake.requests_to("GET /projects$")] == [{}]


def _ids(fake: FakeUsersnap, project_id: str) -> list[str]:
    return [i["feedback_id"] for i in fake.feedback[project_id]]


@pytest.mark.parametrize(
    ("project_id", "why"),
    [
        (".", "its project_id '.' names no URL path segment"),
        ("..", "its project_id '..' names no URL path segment"),
        (12, "its project_id is not a string"),
    ],
)
def test_a_listed_project_no_request_can_name_is_skipped_and_not_remembered(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture, project_id: t.Any, why: str
) -> None:
    """Kept in state, such a project would hold every later run's deletions."""

    def add(envelope: dict[str, t.Any], request: t.Any) -> dict[str, t.Any]:
        first = envelope["data"]["projects"][0]
        envelope["data"]["projects"].append({**first, "project_id": project_id, "name": "Odd"})
        return envelope

    fake.inject("mangle", match="GET /projects$", transform=add)
    with caplog.at_level(logging.WARNING):
        first = run_sync(fake.config(), check=False)

    assert first.error is None
    assert f"Skipped project 4 ('Odd') of the projects listing: {why}" in messages_at(
        caplog, logging.WARNING
    )
    assert sorted(first.ids("projects", "project_id")) == sorted(fake.projects)
    assert first.final_state["bookmarks"]["projects"]["project_ids"] == sorted(fake.projects)
    gone = next(iter(fake.projects))
    fake.remove_project(gone)

    second = run_sync(fake.config(), first.final_state, check=False)

    assert second.error is None
    assert {m["stream"] for m in second.messages if m["type"] == "ACTIVATE_VERSION"} >= {"projects"}


def test_a_project_id_too_long_for_a_url_is_skipped_and_the_others_load(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    """No request can carry it (the server would refuse the line, 414): skipped by name."""
    huge = "x" * 70_000

    def add(envelope: dict[str, t.Any], request: t.Any) -> dict[str, t.Any]:
        first = envelope["data"]["projects"][0]
        envelope["data"]["projects"].insert(0, {**first, "project_id": huge, "api_key": "k"})
        return envelope

    fake.inject("mangle", match="GET /projects$", transform=add)
    with caplog.at_level(logging.WARNING):
        result = run_sync(fake.config(concurrency=1), check=False)

    assert sorted(result.ids()) == sorted(fake.all_feedback_ids())
    assert result.error is None
    assert (
        "Skipped project 1 ('Web app') of the projects listing: its project_id is 70000 "
        "characters long, more than a key column holds"
    ) in messages_at(caplog, logging.WARNING)
    assert [m[:120] for m in messages_at(caplog, logging.WARNING) if len(m) > 1000] == []


def test_a_project_listed_twice_is_read_once_with_its_assignees(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    """A repeat is skipped by name: taken for a shared api_key, it cost the assignees."""

    def repeat(envelope: dict[str, t.Any], request: t.Any) -> dict[str, t.Any]:
        envelope["data"]["projects"].append(dict(envelope["data"]["projects"][0]))
        return envelope

    plain = run_sync(fake.config())
    fake.inject("mangle", match="GET /projects$", transform=repeat)
    with caplog.at_level(logging.WARNING):
        result = run_sync(fake.config(), check=False)

    assert result.error is None
    assert sorted(result.ids("projects", "project_id")) == sorted(fake.projects)
    assert any(
        m.startswith("Skipped project 4 (")
        and m.endswith("of the projects listing: its project_id is listed twice")
        for m in messages_at(caplog, logging.WARNING)
    )
    assert result.records("project_assignees") == plain.records("project_assignees")
    assert "project_assignees" in {
        m["stream"] for m in result.messages if m["type"] == "ACTIVATE_VERSION"
    }
