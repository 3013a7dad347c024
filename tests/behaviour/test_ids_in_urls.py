"""Project ids and api_keys are data: each goes into a URL path as one percent-encoded
segment, and is read back out of a request URL decoded.

Unescaped, a ``/``, ``..``, ``?`` or ``#`` in an id sent the request to another path (one
the spec does not have, or another project's), and a listed project named
``../projects/<id>`` made the tap read that project's feedback again under its own name.
"""

from __future__ import annotations

import logging
import re
import typing as t
from urllib.parse import quote

import pytest

from fake_usersnap import ContractLog, FakeUsersnap
from harness.expect import messages_at
from harness.singer_run import bookmarks, run_sync

if t.TYPE_CHECKING:
    from fake_usersnap.faults import RecordedRequest

FOREVER = 10**6
AWKWARD_IDS = ["a/../../projects", "abc?x=1", "abc#frag", "50% off/ü +1;=&"]


def paths(fake: FakeUsersnap) -> set[tuple[str, str]]:
    """``(method, raw path)`` of every request the fake served (``/v0.1`` left out)."""
    return {(r.method, r.path) for r in fake.requests}


def without_project_id(envelope: dict[str, t.Any], _: RecordedRequest) -> dict[str, t.Any]:
    """A page whose items do not say their project (the tap takes it from the URL)."""
    for item in envelope["data"]["feedbacks"]:
        item.pop("project_id", None)
    return envelope


@pytest.mark.parametrize("project_id", AWKWARD_IDS)
def test_a_project_id_is_one_encoded_path_segment_and_its_records_carry_it_exactly(
    empty_fake: FakeUsersnap, api_contract: ContractLog, project_id: str
) -> None:
    fake = empty_fake
    project = fake.add_project("Awkward", project_id=project_id)
    items = [fake.add_feedback(project_id) for _ in range(3)]
    segment = quote(project_id, safe="")
    filter_path = f"/projects/{segment}/feedbacks/filter"
    fake.inject(
        "mangle",
        match=f"^POST {re.escape(filter_path)}$",
        times=FOREVER,
        transform=without_project_id,
    )

    result = run_sync(fake.config(project_ids=[project_id], concurrency=1))

    assert paths(fake) == {
        ("GET", "/projects"),
        ("POST", filter_path),
        ("POST", f"{filter_path}/count"),
        ("GET", f"/projects/{project['api_key']}/assignees"),
    }
    assert sorted(result.ids()) == sorted(i["feedback_id"] for i in items)
    assert {r["project_id"] for r in result.records("feedback")} == {project_id}
    assert list(bookmarks(result.final_state)) == [project_id]
    assert api_contract.violations == []
    assert api_contract.checked == len(fake.requests)


@pytest.mark.parametrize("project_id", [".", ".."])
def test_a_dot_segment_project_id_is_refused_by_name_unsent(
    fake: FakeUsersnap, api_contract: ContractLog, project_id: str
) -> None:
    """``%2E`` is a dot however encoded: no URL names such a project, so none is sent."""
    real = next(iter(fake.projects))

    result = run_sync(fake.config(project_ids=[project_id, real]), check=False)

    assert result.returncode == 1
    assert f"that Usersnap refused or does not know: {project_id!r};" in str(result.error)
    assert sorted(result.ids()) == sorted(i["feedback_id"] for i in fake.feedback[real])
    assert {path for _, path in paths(fake)} <= {
        "/projects",
        f"/projects/{real}/feedbacks/filter",
        f"/projects/{real}/feedbacks/filter/count",
        f"/projects/{fake.projects[real]['api_key']}/assignees",
    }
    assert api_contract.violations == []


def test_an_api_key_is_one_encoded_path_segment_and_never_logged(
    empty_fake: FakeUsersnap,
    api_contract: ContractLog,
    caplog: pytest.LogCaptureFixture,
    sleeps: list[float],
) -> None:
    """A retried assignees request names its project, found by the decoded api_key."""
    fake, api_key = empty_fake, "../../projects?x=1#f"
    project = fake.add_project("Keyed", api_key=api_key)
    user = fake.add_assignee(project["project_id"])
    assignees = f"/projects/{quote(api_key, safe='')}/assignees"
    fake.inject("status", status=503, times=1, match=f"^GET {re.escape(assignees)}$")

    with caplog.at_level(logging.INFO):
        result = run_sync(fake.config())

    assert [(r.method, r.path, r.status) for r in fake.requests_to("assignees")] == [
        ("GET", assignees, 503),
        ("GET", assignees, 200),
    ]
    assert result.records("project_assignees") == [{**user, "project_id": project["project_id"]}]
    (retry,) = [w for w in messages_at(caplog, logging.WARNING) if "retrying in" in w]
    assert "GET /v0.1/projects/{api_key}/assignees" in retry
    assert f"(project 'Keyed' ({project['project_id']}))" in retry
    assert api_key not in caplog.text
    assert quote(api_key, safe="") not in caplog.text
    assert api_contract.violations == []


def test_a_listed_id_naming_another_projects_path_is_refused_not_read_as_that_project(
    empty_fake: FakeUsersnap, api_contract: ContractLog, caplog: pytest.LogCaptureFixture
) -> None:
    """The listing names ``../projects/<real id>``, a project the API does not know."""
    fake = empty_fake
    real = fake.add_project("Real")
    items = [fake.add_feedback(real["project_id"]) for _ in range(3)]
    hostile_id = f"../projects/{real['project_id']}"
    hostile = {**real, "project_id": hostile_id, "name": "Hostile", "api_key": None}

    def listed_too(envelope: dict[str, t.Any], _: RecordedRequest) -> dict[str, t.Any]:
        envelope["data"]["projects"].append(hostile)
        envelope["data"]["count"] += 1
        return envelope

    fake.inject("mangle", match="^GET /projects$", times=FOREVER, transform=listed_too)

    with caplog.at_level(logging.INFO):
        result = run_sync(fake.config(concurrency=1), check=False)

    rows = result.records("feedback")
    assert sorted(r["feedback_id"] for r in rows) == sorted(i["feedback_id"] for i in items)
    assert {(r["project_id"], r["project_name"]) for r in rows} == {(real["project_id"], "Real")}
    encoded = f"/projects/..%2Fprojects%2F{real['project_id']}/feedbacks/filter"
    assert [(r.path, r.status) for r in fake.requests_to("/feedbacks/filter$")] == [
        (f"/projects/{real['project_id']}/feedbacks/filter", 200),
        (f"/projects/{real['project_id']}/feedbacks/filter", 200),
        (encoded, 400),
    ]
    assert messages_at(caplog, logging.ERROR) == []  # the run's one ERROR is its failure
    assert [m for m in messages_at(caplog, logging.WARNING) if "does not exist" in m] == [
        f"Usersnap project {hostile_id!r} does not exist or this JWT key cannot see it (400 "
        f"SITE_NOT_FOUND: Site does not exist on POST /v0.1{encoded}); skipping project "
        f"'Hostile' ({hostile_id}), the other projects continue"
    ]
    assert result.returncode == 1
    assert str(result.error).startswith(
        f"Skipped 1 Usersnap project(s) that Usersnap refused or does not know: {hostile_id!r};"
    )
    assert hostile_id not in bookmarks(result.final_state)
    assert api_contract.violations == []


def test_a_uuid_project_id_reads_as_before(fake: FakeUsersnap, api_contract: ContractLog) -> None:
    result = run_sync(fake.config())

    assert result.returncode == 0
    assert sorted(result.ids()) == sorted(fake.all_feedback_ids())
    for project_id, project in fake.projects.items():
        assert ("POST", f"/projects/{project_id}/feedbacks/filter") in paths(fake)
        assert ("GET", f"/projects/{project['api_key']}/assignees") in paths(fake)
        read = {
            r["feedback_id"] for r in result.records("feedback") if r["project_id"] == project_id
        }
        assert read == {i["feedback_id"] for i in fake.feedback[project_id]}
    assert set(bookmarks(result.final_state)) == set(fake.projects)
    assert api_contract.violations == []
