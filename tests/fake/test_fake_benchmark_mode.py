"""The fake's benchmark mode answers like the real filter endpoint, only faster."""

from __future__ import annotations

import json
import typing as t

import pytest
import requests

from fake_usersnap import ApiError, FakeUsersnap, PrerenderedFeedback, filter_time
from fake_usersnap.client import call, token

ASCENDING = {"order_by": {"order_by_type": "created_at", "direction": "asc"}}


@pytest.fixture(scope="module")
def bench() -> t.Iterator[FakeUsersnap]:
    """Shared by the module's tests, which only read from it."""
    with FakeUsersnap() as api:
        api.seed(projects=1, per_project=3)
        api.seed_benchmark(projects=2, per_project=250, item_bytes=1900)
        yield api


def post_filter(
    fake: FakeUsersnap, project_id: str, body: t.Any, **params: t.Any
) -> requests.Response:
    return call(fake, "POST", f"/projects/{project_id}/feedbacks/filter", params=params, body=body)


def data_of(fake: FakeUsersnap) -> PrerenderedFeedback:
    assert fake.prerendered is not None
    return fake.prerendered


def bound(fake: FakeUsersnap, project_id: str, operator: str, index: int) -> str:
    """A whole-second filter value that keeps what item ``index``'s own timestamp would."""
    up = operator in {"gt", "lte"}
    return filter_time(data_of(fake).created_at(project_id, index), up=up)


def test_pages_chain_through_every_item_in_order(bench: FakeUsersnap) -> None:
    project_id = next(iter(data_of(bench).projects))
    seen: list[str] = []
    params: dict[str, t.Any] = {"limit": 100}
    while True:
        response = post_filter(bench, project_id, ASCENDING, **params)
        assert response.status_code == 200
        data = response.json()["data"]
        assert data["count"] == 250
        seen += [item["feedback_id"] for item in data["feedbacks"]]
        if not data["has_more"]:
            break
        params["after"] = data["next"]["after"]
    assert seen == data_of(bench).ids(project_id)


def test_items_have_the_requested_size(bench: FakeUsersnap) -> None:
    project_id = next(iter(data_of(bench).projects))
    sizes = [len(json.dumps(data_of(bench).item(project_id, n))) for n in range(250)]
    assert all(1880 <= size <= 1920 for size in sizes), (min(sizes), max(sizes))


@pytest.mark.parametrize(("operator", "first"), [("gte", 200), ("gt", 201)])
def test_created_at_filters_start_at_the_bound(
    bench: FakeUsersnap, operator: str, first: int
) -> None:
    project_id = next(iter(data_of(bench).projects))
    value = bound(bench, project_id, operator, 200)
    query = [{"filter_type": "created_at", "operator": operator, "value": value}]
    response = post_filter(bench, project_id, {**ASCENDING, "query": query}, limit=100)
    data = response.json()["data"]
    assert [i["feedback_id"] for i in data["feedbacks"]] == data_of(bench).ids(project_id)[first:]
    assert data["count"] == 250 - first
    assert data["has_more"] is False


@pytest.mark.parametrize(
    ("query", "window"),
    [
        ([("gte", 200)], (200, 250)),
        ([("gt", 200)], (201, 250)),
        ([("lt", 20)], (0, 20)),
        ([("lte", 20)], (0, 21)),
        ([("gte", 30), ("lt", 40)], (30, 40)),
        ([("gt", 40), ("lt", 30)], (41, 41)),
    ],
)
def test_filter_count_and_pages_agree_on_created_at_windows(
    bench: FakeUsersnap, query: list[tuple[str, int]], window: tuple[int, int]
) -> None:
    project_id = next(iter(data_of(bench).projects))
    conditions = [
        {
            "filter_type": "created_at",
            "operator": op,
            "value": bound(bench, project_id, op, n),
        }
        for op, n in query
    ]
    path = f"/projects/{project_id}/feedbacks/filter/count"

    counted = call(bench, "POST", path, body={"query": conditions})
    listed = post_filter(bench, project_id, {**ASCENDING, "query": conditions}, limit=100)

    first, stop = window
    assert counted.json() == {"status": True, "data": {"total_count": stop - first}}
    data = listed.json()["data"]
    assert [i["feedback_id"] for i in data["feedbacks"]] == data_of(bench).ids(project_id)[
        first:stop
    ]
    assert data["count"] == stop - first
    assert data["has_more"] is False


@pytest.mark.parametrize(
    ("body", "params", "errortype"),
    [
        (ASCENDING, {"after": "not-an-id"}, "INVALID_PARAMETER"),
        ({"order_by": {"order_by_type": "updated_at", "direction": "asc"}}, {}, "INVALID_REQUEST"),
        (
            {"order_by": {"order_by_type": "created_at", "direction": "desc"}},
            {"after": "any"},
            "INVALID_REQUEST",
        ),
        (
            {**ASCENDING, "query": [{"filter_type": "state", "operator": "eq", "value": "open"}]},
            {},
            "INVALID_REQUEST",
        ),
        (ASCENDING, {"limit": "101"}, "INVALID_REQUEST"),
    ],
)
def test_what_it_cannot_serve_is_a_clear_400(
    bench: FakeUsersnap, body: t.Any, params: dict[str, str], errortype: str
) -> None:
    project_id = next(iter(data_of(bench).projects))
    response = post_filter(bench, project_id, body, **params)
    assert response.status_code == 400
    assert response.json()["errortype"] == errortype


def test_the_newest_item_first_is_served(bench: FakeUsersnap) -> None:
    """A long read's slices end at the newest item: ``created_at desc``, the first page."""
    project_id = next(iter(data_of(bench).projects))
    newest = post_filter(
        bench,
        project_id,
        {"order_by": {"order_by_type": "created_at", "direction": "desc"}},
        limit=2,
    ).json()["data"]["feedbacks"]
    value = filter_time(newest[1]["created_at"])
    tail = [{"filter_type": "created_at", "operator": "gte", "value": value}]
    oldest_first = post_filter(bench, project_id, {**ASCENDING, "query": tail}, limit=100)
    assert [i["feedback_id"] for i in newest] == [
        i["feedback_id"] for i in oldest_first.json()["data"]["feedbacks"][::-1]
    ]
    assert newest[0]["created_at"] > newest[1]["created_at"]


def test_other_projects_are_still_served_by_the_full_fake(bench: FakeUsersnap) -> None:
    sample = next(p for p in bench.projects if not data_of(bench).serves(p))
    response = post_filter(bench, sample, ASCENDING, limit=100)
    assert len(response.json()["data"]["feedbacks"]) == 3


def test_a_cached_token_is_still_refused_once_revoked() -> None:
    fake = FakeUsersnap()
    fake.seed_benchmark(projects=1, per_project=10)
    assert fake.cache_verified_tokens
    signed = token(fake)
    assert fake.authenticate(f"Bearer {signed}") == signed
    assert signed in fake._verified_tokens
    fake.revoked = True
    with pytest.raises(ApiError, match="Authorization failed"):
        fake.authenticate(f"Bearer {signed}")
