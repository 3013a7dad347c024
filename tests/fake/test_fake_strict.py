"""The fake as strict as ``openapi.json`` where it is explicit, and its switches where it is not.

Read over HTTP with the bare client (whose requests the suite's contract check leaves alone,
so these tests can send what the spec does not allow).
"""

from __future__ import annotations

import typing as t

import pytest

from fake_usersnap import ProjectsPaging
from fake_usersnap.client import call

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap

ASCENDING = {"order_by": {"order_by_type": "created_at", "direction": "asc"}}


def created_at(operator: str, value: str) -> dict[str, t.Any]:
    return {
        **ASCENDING,
        "query": [{"filter_type": "created_at", "operator": operator, "value": value}],
    }


def test_the_projects_listing_is_every_project_in_one_answer_without_a_cursor(
    fake: FakeUsersnap,
) -> None:
    response = call(fake, "GET", "/projects")
    assert response.status_code == 200
    data = response.json()["data"]
    assert set(data) == {"has_more", "count", "projects"}  # the spec's shape: no next
    assert data["has_more"] is False
    assert data["count"] == 3
    assert [p["project_id"] for p in data["projects"]] == list(fake.projects)


@pytest.mark.parametrize(
    "value",
    [
        "2024-01-01T00:00:00.000000Z",
        "2024-01-01T00:00:00.5Z",
        "2024-01-01T00:00:00+00:00",
        "2024-01-01T00:00:00",
        "2024-01-01",
        "2024-02-30T00:00:00Z",
    ],
)
@pytest.mark.parametrize("endpoint", ["filter", "filter/count"])
def test_a_filter_value_in_any_form_but_whole_second_utc_is_refused(
    fake: FakeUsersnap, value: str, endpoint: str
) -> None:
    project = next(iter(fake.projects))
    response = call(
        fake, "POST", f"/projects/{project}/feedbacks/{endpoint}", body=created_at("gte", value)
    )
    assert response.status_code == 400
    envelope = response.json()
    assert envelope["status"] is False
    assert envelope["errortype"] == "INVALID_PARAMETER"
    assert envelope["errordata"] == {"value": value}


def test_a_whole_second_filter_value_is_taken(fake: FakeUsersnap) -> None:
    project = next(iter(fake.projects))
    path = f"/projects/{project}/feedbacks/filter/count"
    response = call(fake, "POST", path, body=created_at("gte", "2000-01-01T00:00:00Z"))
    assert response.json() == {"status": True, "data": {"total_count": 12}}


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("POST", "/feedbacks/filter", {"limit": 5, "offset": 5}),
        ("POST", "/feedbacks/filter", {"page": 2}),
        ("POST", "/feedbacks/filter/count", {"limit": 5}),
        ("GET", "/feedbacks/count", {"after": "x"}),
    ],
)
def test_a_query_parameter_a_route_does_not_take_is_refused(
    fake: FakeUsersnap, method: str, path: str, params: dict[str, t.Any]
) -> None:
    project = next(iter(fake.projects))
    body = ASCENDING if method == "POST" else None
    response = call(fake, method, f"/projects/{project}{path}", params=params, body=body)
    assert response.status_code == 400
    assert response.json()["errortype"] == "INVALID_PARAMETER"


@pytest.mark.parametrize(("cursor", "count"), [("none", None), ("ignored", None), ("none", 9)])
def test_projects_paging_says_has_more_with_no_way_on(
    fake: FakeUsersnap, cursor: t.Literal["none", "ignored"], count: int | None
) -> None:
    fake.projects_paging = ProjectsPaging(shown=2, cursor=cursor, count=count)
    first = call(fake, "GET", "/projects").json()["data"]
    assert first["has_more"] is True
    assert first["count"] == (3 if count is None else count)
    shown = [p["project_id"] for p in first["projects"]]
    assert shown == list(fake.projects)[:2]
    if cursor == "none":
        assert "next" not in first
        assert call(fake, "GET", "/projects", params={"after": shown[-1]}).status_code == 400
    else:
        assert first["next"]["after"] == shown[-1]
        again = call(fake, "GET", "/projects", params=first["next"]).json()["data"]
        assert again == first  # the cursor leads back to the same page


@pytest.mark.parametrize(
    ("status", "errortype"), [(403, "FORBIDDEN"), (404, "NOT_FOUND"), (400, "SITE_NOT_FOUND")]
)
def test_a_refused_project_answers_its_status_on_every_feedback_route(
    fake: FakeUsersnap, status: int, errortype: str
) -> None:
    project = next(iter(fake.projects.values()))
    pid = project["project_id"]
    fake.refuse_project(pid, status)
    for method, path, params in [
        ("POST", "filter", {"limit": 5}),
        ("POST", "filter/count", {}),
        ("GET", "count", {}),
    ]:
        body = ASCENDING if method == "POST" else None
        response = call(fake, method, f"/projects/{pid}/feedbacks/{path}", params=params, body=body)
        assert response.status_code == status
        assert response.json()["errortype"] == errortype
    assert pid in [
        p["project_id"] for p in call(fake, "GET", "/projects").json()["data"]["projects"]
    ]
    assert call(fake, "GET", f"/projects/{project['api_key']}/assignees").status_code == 200
    fake.refuse_project(pid, 0)
    path = f"/projects/{pid}/feedbacks/filter/count"
    assert call(fake, "POST", path, body=ASCENDING).status_code == 200


def test_a_filter_that_ignores_after_answers_the_first_page_again(fake: FakeUsersnap) -> None:
    fake.filter_ignores_after = True
    project = next(iter(fake.projects))
    path = f"/projects/{project}/feedbacks/filter"
    first = call(fake, "POST", path, params={"limit": 5}, body=ASCENDING).json()["data"]
    params = {"limit": 5, "after": first["next"]["after"]}
    again = call(fake, "POST", path, params=params, body=ASCENDING).json()["data"]
    assert again == first
    assert first["has_more"] is True
