"""The projects listing: has_more without a next cursor continues after the last id, and a
refused continuation keeps the projects already listed.
"""

from __future__ import annotations

import logging
import typing as t

import pytest

from harness.expect import messages_at
from harness.singer_run import run_sync

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap, RecordedRequest


def has_more_without_next(envelope: dict, request: RecordedRequest) -> dict:
    envelope["data"]["has_more"] = True
    envelope["data"]["next"] = None
    return envelope


def test_projects_listing_with_has_more_but_no_next_continues_after_the_last_id(
    fake: FakeUsersnap,
) -> None:
    fake.inject("mangle", match="GET /projects$", transform=has_more_without_next)

    result = run_sync(fake.config())

    last = list(fake.projects)[-1]
    assert [r.params for r in fake.requests_to("GET /projects$")] == [
        {"limit": "100"},
        {"limit": "100", "after": last},
    ]
    assert sorted(result.ids("projects", "project_id")) == sorted(fake.projects)
    assert sorted(result.ids()) == sorted(fake.all_feedback_ids())


def test_a_refused_continuation_of_the_projects_listing_keeps_the_projects_listed(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    fake.inject("mangle", match="GET /projects$", transform=has_more_without_next)
    fake.inject("status", status=400, match="GET /projects$")

    with caplog.at_level(logging.INFO):
        result = run_sync(fake.config())

    assert sorted(result.ids("projects", "project_id")) == sorted(fake.projects)
    assert sorted(result.ids()) == sorted(fake.all_feedback_ids())
    assert messages_at(caplog, logging.WARNING) == [
        f"Listing projects stopped after {len(fake.projects)}: Usersnap refused the next "
        "page's cursor (Usersnap rejected the page cursor of GET /v0.1/projects (400 FAULT: "
        "Bad Request); the item it names was probably deleted meanwhile); going on with the "
        "projects listed (no deletion is applied this run)",
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
    assert len(fake.requests_to("GET /projects$")) == 2
