"""Endpoints and projects the API refuses: what is skipped with a warning, what fails with the
plan message, and an unknown project id named while the others still sync.
"""

from __future__ import annotations

import logging

import pytest

from fake_usersnap import FakeUsersnap
from harness.expect import error_lines, messages_at, summary_line
from harness.singer_run import bookmarks, run_cli, run_sync
from tap_usersnap.client import UsersnapError

FOREVER = 10**6


def sequential(fake: FakeUsersnap, **overrides: object) -> dict:
    """One request at a time, so the order of retries and waits is exact."""
    return fake.config(concurrency=1, **overrides)


def test_a_refused_assignees_endpoint_is_skipped_with_a_warning(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    refused, *others = fake.projects.values()
    fake.inject("status", status=403, times=FOREVER, match=f"/{refused['api_key']}/assignees$")

    with caplog.at_level(logging.INFO):
        result = run_sync(fake.config())

    assert result.returncode == 0
    assert sorted(result.ids()) == sorted(fake.all_feedback_ids())
    assert sorted(result.ids("projects", "project_id")) == sorted(fake.projects)
    assignees = {(r["project_id"], r["user_id"]) for r in result.records("project_assignees")}
    assert assignees == {
        (p["project_id"], u["user_id"]) for p in others for u in fake.assignees[p["api_key"]]
    }
    warnings = messages_at(caplog, logging.WARNING)
    assert len(warnings) == 4, warnings
    assert warnings[0].startswith("Usersnap refused GET /v0.1/projects/")
    assert warnings[0].endswith(
        f"/assignees (403 FAULT: Forbidden); skipped the assignees of project "
        f"{refused['name']!r} ({refused['project_id']}), the rest of the run continues"
    )
    # The refused project's assignees were not re-sent: ACTIVATE_VERSION would retire them.
    assert warnings[1] == (
        "Deletions not applied to project_assignees, every row stays and the next run tries "
        "again: an assignees endpoint was refused"
    )
    assert "ACTIVATE_VERSION" not in {
        m["type"] for m in result.messages if m.get("stream") == "project_assignees"
    }
    assert warnings[2] == summary_line(skipped=0, altered=0, refused=1)


def test_a_refused_projects_listing_fails_with_the_plan_message(fake: FakeUsersnap) -> None:
    fake.rest_api_enabled = False
    result = run_sync(fake.config(), check=False)
    assert str(result.error) == (
        "Usersnap refused GET /v0.1/projects (403 FORBIDDEN: REST API is not enabled for this "
        "plan): the REST API is not enabled for this workspace's plan (it needs an Enterprise "
        "plan), or this API key may not list projects"
    )
    assert result.ids() == []
    assert [f"{r.method} {r.path}" for r in fake.requests] == ["GET /projects"]


def test_403_says_the_rest_api_is_not_enabled(fake: FakeUsersnap) -> None:
    fake.rest_api_enabled = False
    with pytest.raises(UsersnapError, match="REST API is not enabled"):
        run_sync(sequential(fake))
    assert len(fake.requests) == 1


def test_unknown_project_id_is_named_and_the_other_projects_still_sync(
    fake: FakeUsersnap,
) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    real = next(iter(fake.projects))
    result = run_sync(fake.config(project_ids=[missing, real]), check=False)
    assert isinstance(result.error, UsersnapError)
    assert "Skipped 1 Usersnap project(s)" in str(result.error)
    assert missing in str(result.error)
    assert set(result.ids()) == {i["feedback_id"] for i in fake.feedback[real]}
    assert real in bookmarks(result.final_state)


def test_a_retried_assignees_request_names_its_project(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture, sleeps: list[float]
) -> None:
    """The assignees path holds the project's api_key, which logs never show: the retry line
    names the project instead."""
    project = next(iter(fake.projects.values()))
    fake.inject("status", status=503, times=1, match=f"/{project['api_key']}/assignees$")

    with caplog.at_level(logging.WARNING):
        result = run_sync(fake.config())

    assert result.returncode == 0
    (retry,) = [w for w in messages_at(caplog, logging.WARNING) if "retrying in" in w]
    assert "/projects/{api_key}/assignees" in retry
    assert f"(project {project['name']!r} ({project['project_id']}))" in retry
    assert project["api_key"] not in retry


def test_a_refused_project_ends_the_cli_run_with_one_error_line(fake: FakeUsersnap) -> None:
    """Named as it happens (a WARNING), failed at the end (the one ERROR line)."""
    refused, *others = fake.projects
    fake.refuse_project(refused, 403)

    result = run_cli(config=fake.config())

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert (
        f"Skipped 1 Usersnap project(s) that Usersnap refused or does not know: '{refused}'"
        in (errors[0])
    )
    assert set(result.ids()) == {i["feedback_id"] for p in others for i in fake.feedback[p]}
