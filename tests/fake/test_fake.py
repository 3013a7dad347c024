"""The fake's own answers, read over HTTP without the tap: what tests of the tap rely on."""

from __future__ import annotations

import typing as t

import pytest

from fake_usersnap import filter_time
from fake_usersnap.client import call

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap

ASCENDING = {"order_by": {"order_by_type": "created_at", "direction": "asc"}}


def data(response: t.Any, status: int = 200) -> t.Any:
    assert response.status_code == status, response.text
    envelope = response.json()
    assert envelope["status"] is True
    return envelope["data"]


def filter_ids(fake: FakeUsersnap, project_id: str, body: dict, limit: int = 5) -> list[str]:
    """Every id the filter endpoint lists for ``body``, following the cursor."""
    ids: list[str] = []
    params: dict[str, t.Any] = {"limit": limit}
    while True:
        page = data(
            call(fake, "POST", f"/projects/{project_id}/feedbacks/filter", params=params, body=body)
        )
        ids += [item["feedback_id"] for item in page["feedbacks"]]
        if not page["has_more"]:
            return ids
        params["after"] = page["next"]["after"]


def filter_count(fake: FakeUsersnap, project_id: str, body: dict) -> int:
    path = f"/projects/{project_id}/feedbacks/filter/count"
    return t.cast("int", data(call(fake, "POST", path, body=body))["total_count"])


def projects_by_id(fake: FakeUsersnap) -> dict[str, dict[str, t.Any]]:
    return {p["project_id"]: p for p in data(call(fake, "GET", "/projects"))["projects"]}


# -------------------------------------------------------------------------------- deletion


def test_a_cursor_naming_a_deleted_item_is_a_400_invalid_parameter(fake: FakeUsersnap) -> None:
    project_id = next(iter(fake.projects))
    path = f"/projects/{project_id}/feedbacks/filter"
    first = data(call(fake, "POST", path, params={"limit": 5}, body=ASCENDING))
    after = first["next"]["after"]
    fake.delete_feedback(after)  # while the client pages past it

    response = call(fake, "POST", path, params={"limit": 5, "after": after}, body=ASCENDING)

    assert response.status_code == 400
    assert response.json() == {
        "status": False,
        "msg": "Invalid cursor: no such item",
        "errortype": "INVALID_PARAMETER",
        "errordata": {"after": after},
    }


@pytest.mark.parametrize("params", [{"after": "no-such-project"}, {"limit": "100"}, {"x": ""}])
def test_the_projects_listing_refuses_any_query_parameter(
    fake: FakeUsersnap, params: dict[str, str]
) -> None:
    response = call(fake, "GET", "/projects", params=params)
    assert response.status_code == 400
    assert response.json() == {
        "status": False,
        "msg": f"Unknown query parameter {next(iter(params))!r}: this endpoint takes no query "
        "parameters",
        "errortype": "INVALID_PARAMETER",
        "errordata": {"parameter": next(iter(params))},
    }


def test_deleted_feedback_is_gone_from_every_listing_and_count(fake: FakeUsersnap) -> None:
    project_id = next(iter(fake.projects))
    before = [i["feedback_id"] for i in fake.feedback[project_id]]
    gone = before[4]

    deleted = fake.delete_feedback(gone)

    assert deleted["feedback_id"] == gone
    remaining = set(before) - {gone}
    assert set(filter_ids(fake, project_id, ASCENDING)) == remaining
    listed = data(call(fake, "GET", f"/projects/{project_id}/feedbacks", params={"limit": 100}))
    assert {i["feedback_id"] for i in listed["feedbacks"]} == remaining
    assert listed["count"] == 11
    count = data(call(fake, "GET", f"/projects/{project_id}/feedbacks/count"))
    assert count == {"total_count": 11}
    assert filter_count(fake, project_id, ASCENDING) == 11
    assert projects_by_id(fake)[project_id]["feedback_count"] == 11
    assert gone not in fake.all_feedback_ids()


def test_deleting_unknown_feedback_is_a_key_error(fake: FakeUsersnap) -> None:
    item = fake.delete_feedback(next(iter(fake.all_feedback_ids())))
    with pytest.raises(KeyError):
        fake.delete_feedback(item["feedback_id"])


def test_a_removed_project_takes_its_feedback_and_assignees_along(fake: FakeUsersnap) -> None:
    project = next(iter(fake.projects.values()))
    fake.add_assignee(project["project_id"])
    its_items = {i["feedback_id"] for i in fake.feedback[project["project_id"]]}

    fake.remove_project(project["project_id"])

    assert project["project_id"] not in projects_by_id(fake)
    assert not its_items & fake.all_feedback_ids()
    for path, site_id in (
        (f"/projects/{project['project_id']}/feedbacks/filter", project["project_id"]),
        (f"/projects/{project['api_key']}/assignees", project["api_key"]),
    ):
        response = call(fake, "GET" if "assignees" in path else "POST", path, body=ASCENDING)
        assert response.status_code == 400
        assert response.json() == {
            "status": False,
            "msg": "Site does not exist",
            "errortype": "SITE_NOT_FOUND",
            "errordata": {"site_id": site_id},
        }


def test_assignees_come_and_go(empty_fake: FakeUsersnap) -> None:
    project = empty_fake.add_project("Web app")
    path = f"/projects/{project['api_key']}/assignees"
    ada = empty_fake.add_assignee(project["project_id"])
    zoe = empty_fake.add_assignee(project["project_id"], first_name="Zoë", last_name="Müller")
    assert data(call(empty_fake, "GET", path)) == {"users": [ada, zoe]}
    assert set(zoe) == {"user_id", "first_name", "last_name", "gravatar_url"}

    assert empty_fake.remove_assignee(project["project_id"], ada["user_id"]) == ada

    assert data(call(empty_fake, "GET", path)) == {"users": [zoe]}
    with pytest.raises(KeyError):
        empty_fake.remove_assignee(project["project_id"], ada["user_id"])


# ---------------------------------------------------------------------------- filter count


def created_at(operator: str, value: str) -> dict[str, str]:
    return {"filter_type": "created_at", "operator": operator, "value": value}


@pytest.mark.parametrize(
    ("operators", "expected"),
    [
        (["gte"], 8),
        (["gt"], 7),
        (["lt"], 4),
        (["lte"], 5),
        ([], 12),
    ],
)
def test_filter_count_honours_the_created_at_filters(
    fake: FakeUsersnap, operators: list[str], expected: int
) -> None:
    project_id = next(iter(fake.projects))
    oldest_first = sorted(fake.feedback[project_id], key=lambda i: i["created_at"])
    value = oldest_first[4]["created_at"]
    body = {
        "query": [created_at(op, filter_time(value, up=op in {"gt", "lte"})) for op in operators]
    }
    path = f"/projects/{project_id}/feedbacks/filter/count"

    response = call(fake, "POST", path, body=body)

    assert response.status_code == 200
    assert response.json() == {"status": True, "data": {"total_count": expected}}
    assert len(filter_ids(fake, project_id, {**ASCENDING, **body})) == expected


def test_filter_count_of_a_range(fake: FakeUsersnap) -> None:
    project_id = next(iter(fake.projects))
    oldest_first = sorted(fake.feedback[project_id], key=lambda i: i["created_at"])
    query = [
        created_at("gte", filter_time(oldest_first[2]["created_at"])),
        created_at("lt", filter_time(oldest_first[9]["created_at"])),
    ]
    assert filter_count(fake, project_id, {"query": query}) == 7


def test_filter_count_wants_a_body_like_the_filter(fake: FakeUsersnap) -> None:
    response = call(fake, "POST", f"/projects/{next(iter(fake.projects))}/feedbacks/filter/count")
    assert response.status_code == 400
    assert response.json()["errortype"] == "INVALID_REQUEST"
