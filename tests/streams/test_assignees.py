"""The project_assignees stream: keys, scope, missing endpoints, paging and catalog selection."""

from __future__ import annotations

import json
import logging
import typing as t

import pytest

from fake_usersnap import FakeUsersnap
from harness.singer_run import run_sync
from tap_usersnap.tap import TapUsersnap

ASSIGNEES = r"GET /projects/[^/]+/assignees$"


def expected_rows(fake: FakeUsersnap, project_ids: t.Iterable[str]) -> list[dict[str, t.Any]]:
    """Every assignee of the given projects as the tap should emit it, sorted by key."""
    rows = [
        {**user, "project_id": project_id}
        for project_id in project_ids
        for user in fake.assignees[fake.projects[project_id]["api_key"]]
    ]
    return sorted(rows, key=lambda r: (r["project_id"], r["user_id"]))


def by_key(records: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    return sorted(records, key=lambda r: (r["project_id"], r["user_id"]))


def add_users(fake: FakeUsersnap, project: dict[str, t.Any], *names: str) -> None:
    fake.assignees[project["api_key"]] = [
        {
            "user_id": f"{project['project_id'][:8]}-{name}",
            "first_name": name,
            "last_name": None,
            "gravatar_url": f"https://www.gravatar.com/avatar/{name}",
        }
        for name in names
    ]


@pytest.fixture
def three_projects(empty_fake: FakeUsersnap) -> FakeUsersnap:
    """Projects with two, one and no assignees (one of them named with non-ASCII text)."""
    add_users(empty_fake, empty_fake.add_project("Web app"), "Ada", "Zoë")
    add_users(empty_fake, empty_fake.add_project("Mobile"), "Grace")
    empty_fake.add_project("Marketing")
    return empty_fake


def test_every_assignee_lands_with_its_project_and_user_key(three_projects: FakeUsersnap) -> None:
    fake = three_projects
    result = run_sync(fake.config())

    records = result.records("project_assignees")
    assert by_key(records) == expected_rows(fake, fake.projects)
    assert len(records) == 3
    keys = [(r["project_id"], r["user_id"]) for r in records]
    assert len(set(keys)) == len(keys)
    schema = result.schema("project_assignees")
    assert schema["key_properties"] == ["project_id", "user_id"]
    assert set(records[0]) <= set(schema["schema"]["properties"])
    assert "api_key" not in records[0]


def test_one_request_per_project_with_its_api_key_and_one_projects_listing(
    three_projects: FakeUsersnap,
) -> None:
    fake = three_projects
    run_sync(fake.config())
    requested = sorted(r.path for r in fake.requests_to(ASSIGNEES))
    assert requested == sorted(
        f"/projects/{p['api_key']}/assignees" for p in fake.projects.values()
    )
    assert all(r.params == {} for r in fake.requests_to(ASSIGNEES))
    assert len(fake.requests_to("GET /projects$")) == 1  # shared with feedback and projects


def test_project_ids_limit_the_assignees(three_projects: FakeUsersnap) -> None:
    fake = three_projects
    chosen = next(iter(fake.projects))
    result = run_sync(fake.config(project_ids=[chosen]))
    assert by_key(result.records("project_assignees")) == expected_rows(fake, [chosen])
    assert len(fake.requests_to(ASSIGNEES)) == 1


def test_a_project_without_the_endpoint_or_assignees_is_logged_not_an_error(
    three_projects: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    fake = three_projects
    web, mobile, marketing = fake.projects.values()
    fake.inject("status", status=404, times=99, match=f"GET /projects/{web['api_key']}/")

    with caplog.at_level(logging.INFO, logger="tap-usersnap"):
        result = run_sync(fake.config())

    emitted = by_key(result.records("project_assignees"))
    assert emitted == expected_rows(fake, [mobile["project_id"]])
    assert len(fake.requests_to(ASSIGNEES)) == 3  # a 404 is not retried
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(web["project_id"] in m and "no assignees endpoint" in m for m in messages)
    assert any(m == f"Project {marketing['project_id']} has no assignees" for m in messages)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(result.ids()) == 0  # the fake has no feedback here; the run still completed


def test_a_project_without_an_api_key_is_skipped_without_a_request(
    empty_fake: FakeUsersnap,
) -> None:
    project = empty_fake.add_project("No key", api_key=None)
    result = run_sync(empty_fake.config())
    assert result.ids("projects", "project_id") == [project["project_id"]]
    assert result.records("project_assignees") == []
    assert empty_fake.requests_to(ASSIGNEES) == []


def test_no_projects_means_no_assignee_requests(empty_fake: FakeUsersnap) -> None:
    result = run_sync(
        empty_fake.config(), catalog=catalog_selecting(empty_fake, "project_assignees")
    )
    assert result.records("project_assignees") == []
    assert [f"{r.method} {r.path}" for r in empty_fake.requests] == ["GET /projects"]


# The spec gives the assignees list no has_more and no cursor: following one sends an
# ``after`` it does not declare.
@pytest.mark.off_contract
def test_has_more_is_followed_if_the_api_ever_pages(three_projects: FakeUsersnap) -> None:
    fake = three_projects
    project = next(iter(fake.projects.values()))
    first, second = fake.assignees[project["api_key"]]
    for users, more in (([first], True), ([second], False)):  # served in this order
        data = {"users": users, "has_more": more, "next": {"after": users[-1]["user_id"]}}
        fake.inject(
            "raw",
            match=f"GET /projects/{project['api_key']}/assignees",
            body=json.dumps({"status": True, "data": data}).encode(),
        )

    result = run_sync(fake.config(project_ids=[project["project_id"]]))

    assert by_key(result.records("project_assignees")) == expected_rows(
        fake, [project["project_id"]]
    )
    assert [r.params for r in fake.requests_to(ASSIGNEES)] == [{}, {"after": first["user_id"]}]


def test_assignees_alone_still_read_the_projects_listing_once(
    three_projects: FakeUsersnap,
) -> None:
    fake = three_projects
    result = run_sync(fake.config(), catalog=catalog_selecting(fake, "project_assignees"))
    assert by_key(result.records("project_assignees")) == expected_rows(fake, fake.projects)
    assert result.records("projects") == []
    assert result.records("feedback") == []
    assert len(fake.requests_to("GET /projects$")) == 1
    assert fake.requests_to("/filter$") == []


def test_state_holds_no_per_project_entries_or_api_keys(three_projects: FakeUsersnap) -> None:
    fake = three_projects
    result = run_sync(fake.config())
    state = result.final_state["bookmarks"]["project_assignees"]
    assert list(state) == ["table_version"]  # the version its rows carry, nothing per project
    state_text = json.dumps(result.states)
    assert not [p for p in fake.projects.values() if p["api_key"] in state_text]


def catalog_selecting(fake: FakeUsersnap, *streams: str) -> dict[str, t.Any]:
    """The discovered catalog with only the given streams selected."""
    catalog = TapUsersnap(config=fake.config()).catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog


@pytest.mark.parametrize("status", [403, 404, 400])
def test_logs_never_show_a_projects_api_key(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    fake.inject("status", status=status, match=r"^GET /projects/[^/]+/assignees$", times=10**6)
    with caplog.at_level(logging.INFO):  # the tap's level (urllib3's DEBUG lines show URLs)
        run_sync(fake.config(), check=False)
    api_keys = [p["api_key"] for p in fake.projects.values()]
    assert "/projects/{api_key}/assignees" in caplog.text
    assert not [key for key in api_keys if key in caplog.text]
