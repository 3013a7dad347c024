"""The projects listing as the spec has it: no parameters, no cursor.

A listing that says ``has_more`` and offers no way on delivers every listed project, retires
nothing on the strength of it, and fails the run at its end naming the numbers.
"""

from __future__ import annotations

import logging
import typing as t

import pytest

from harness.singer_run import run_sync

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap, RecordedRequest


def has_more_without_next(envelope: dict, request: RecordedRequest) -> dict:
    envelope["data"]["has_more"] = True
    envelope["data"]["next"] = None
    envelope["data"]["count"] = 5
    return envelope


def test_the_listing_is_one_request_without_parameters(fake: FakeUsersnap) -> None:
    result = run_sync(fake.config())

    assert [r.params for r in fake.requests_to("GET /projects$")] == [{}]
    assert sorted(result.ids("projects", "project_id")) == sorted(fake.projects)


def test_a_listing_with_more_but_no_way_on_delivers_all_retires_nothing_and_fails(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    fake.inject("mangle", match="GET /projects$", transform=has_more_without_next)

    with caplog.at_level(logging.INFO):
        result = run_sync(fake.config(), check=False)

    assert sorted(result.ids("projects", "project_id")) == sorted(fake.projects)
    assert sorted(result.ids()) == sorted(fake.all_feedback_ids())
    assert [m for m in result.messages if m["type"] == "ACTIVATE_VERSION"] == []
    assert len(fake.requests_to("GET /projects$")) == 1
    assert result.error is not None
    assert str(result.error) == (
        "The project listing (GET /projects) said has_more but offered no way on: "
        f"{len(fake.projects)} project(s) listed where it counts 5; every listed project was "
        "synced and no deletion was applied"
    )
