"""The fake's faults, read over HTTP without the tap: each does what its docstring says."""

from __future__ import annotations

import json
import socket
import time
import typing as t
from urllib.parse import urlsplit

import pytest

from fake_usersnap import malformed
from fake_usersnap.client import call, token

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap
    from fake_usersnap.faults import Transform

PROJECTS = "^GET /projects$"
MISSING = object()


def raw_request(fake: FakeUsersnap, path: str) -> socket.socket:
    """A bare connection that has sent ``GET path``: tests read the answer byte by byte."""
    host, port = "127.0.0.1", urlsplit(fake.url).port
    connection = socket.create_connection((host, port), timeout=5)
    request = (
        f"GET /v0.1{path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token(fake)}\r\n\r\n"
    )
    connection.sendall(request.encode())
    return connection


def read_head(connection: socket.socket) -> tuple[bytes, bytes]:
    """The status line and headers, and whatever body bytes came with them."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(1)
        assert chunk, "the server closed before the headers"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return head, body


def wait_for(condition: t.Callable[[], bool], seconds: float) -> float:
    """Poll until ``condition`` holds; how long it took (fails after ``seconds``)."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, "timed out"
        time.sleep(0.01)
    return time.monotonic() - started


# ------------------------------------------------------------------------------- trickle


def test_trickle_sends_headers_at_once_then_the_real_body_byte_by_byte(
    empty_fake: FakeUsersnap,
) -> None:
    real = call(empty_fake, "GET", "/projects").content
    empty_fake.inject("trickle", match=PROJECTS, seconds=0.02)
    started = time.monotonic()

    # A read timeout far below the whole body's time: it restarts with every byte.
    response = call(empty_fake, "GET", "/projects", timeout=0.5)

    assert response.status_code == 200
    assert response.content == real
    assert response.headers["Content-Length"] == str(len(real))
    assert time.monotonic() - started >= 0.8 * 0.02 * len(real) > 0.5


def test_trickle_headers_come_first_with_the_full_length(empty_fake: FakeUsersnap) -> None:
    real = call(empty_fake, "GET", "/projects").content
    empty_fake.inject("trickle", match=PROJECTS, seconds=5)
    with raw_request(empty_fake, "/projects") as connection:
        started = time.monotonic()
        head, body = read_head(connection)
        assert time.monotonic() - started < 2
    assert head.startswith(b"HTTP/1.1 200 ")
    assert f"Content-Length: {len(real)}".encode() in head.split(b"\r\n")
    assert body == b""


def test_trickle_stops_as_soon_as_the_client_hangs_up(empty_fake: FakeUsersnap) -> None:
    empty_fake.inject("trickle", match=PROJECTS, seconds=5)
    with raw_request(empty_fake, "/projects") as connection:
        read_head(connection)
    (record,) = empty_fake.requests_to(PROJECTS)

    # Long before the next byte is due: the server noticed the hang-up, not a failed write.
    assert wait_for(lambda: record.hung_up, seconds=2) < 1


def test_stop_ends_a_trickle_at_once(empty_fake: FakeUsersnap) -> None:
    empty_fake.inject("trickle", match=PROJECTS, seconds=5)
    with raw_request(empty_fake, "/projects") as connection:
        read_head(connection)
        started = time.monotonic()
        empty_fake.stop()
        assert time.monotonic() - started < 1
        connection.settimeout(2)
        assert connection.recv(100) == b""  # the answer ended: closed, short of its length
    (record,) = empty_fake.requests_to(PROJECTS)
    assert record.hung_up is False


def test_trickle_applies_to_error_answers_too(empty_fake: FakeUsersnap) -> None:
    empty_fake.inject("trickle", match="POST", seconds=0.001)
    response = call(empty_fake, "POST", "/projects/nope/feedbacks/filter", body={})
    assert response.status_code == 400
    assert json.loads(response.content)["errortype"] == "SITE_NOT_FOUND"


# ------------------------------------------------------------------------------- malformed

FILTER = r"POST .*/feedbacks/filter$"
ASCENDING = {"order_by": {"order_by_type": "created_at", "direction": "asc"}}


def first_page(fake: FakeUsersnap) -> dict[str, t.Any]:
    project_id = next(iter(fake.projects))
    path = f"/projects/{project_id}/feedbacks/filter"
    response = call(fake, "POST", path, params={"limit": 5}, body=ASCENDING)
    assert response.status_code == 200
    return t.cast("dict[str, t.Any]", response.json())


def real_and_mangled(
    fake: FakeUsersnap, transform: Transform
) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    """The first filter page as it is, then as ``transform`` rewrites it."""
    real = first_page(fake)
    fake.inject("mangle", match=FILTER, transform=transform)
    return real, first_page(fake)


@pytest.mark.parametrize(
    ("transform", "index", "field", "value"),
    [
        (malformed.created_at_null(1), 1, "created_at", None),
        (malformed.created_at_missing(1), 1, "created_at", MISSING),
        (malformed.created_at_unparseable(), 0, "created_at", "yesterday"),
        (malformed.created_at_unparseable("2024-13-45", index=4), 4, "created_at", "2024-13-45"),
        (malformed.without_feedback_id(2), 2, "feedback_id", MISSING),
    ],
)
def test_item_rewrites_change_one_field_of_one_item(
    fake: FakeUsersnap, transform: Transform, index: int, field: str, value: t.Any
) -> None:
    real, got = real_and_mangled(fake, transform)

    expected = [dict(item) for item in real["data"]["feedbacks"]]
    if value is MISSING:
        del expected[index][field]
    else:
        expected[index][field] = value
    assert got["data"]["feedbacks"] == expected
    assert {**got["data"], "feedbacks": None} == {**real["data"], "feedbacks": None}


def test_an_item_rewrite_leaves_a_page_without_that_item_alone(fake: FakeUsersnap) -> None:
    real, got = real_and_mangled(fake, malformed.created_at_null(index=5))
    assert got == real


def test_null_item_is_inserted_among_the_real_ones(fake: FakeUsersnap) -> None:
    real, got = real_and_mangled(fake, malformed.null_item(at=2))
    items = real["data"]["feedbacks"]
    assert got["data"]["feedbacks"] == [*items[:2], None, *items[2:]]


def test_custom_data_nested_5000_levels_deep_is_sent_as_is(fake: FakeUsersnap) -> None:
    real = first_page(fake)
    fake.inject("mangle", match=FILTER, transform=malformed.deep_custom_data(index=1))
    project_id = next(iter(fake.projects))
    path = f"/projects/{project_id}/feedbacks/filter"

    text = call(fake, "POST", path, params={"limit": 5}, body=ASCENDING).text

    deep = malformed.nested_json(5000)
    assert deep.count("{") == deep.count("}") == 5000
    assert text.count(deep) == 1
    # With the deep value taken out again, the rest is the real page.
    got = json.loads(text.replace(deep, '"deep"'))
    expected = [dict(item) for item in real["data"]["feedbacks"]]
    expected[1]["custom_data"] = "deep"
    assert got["data"]["feedbacks"] == expected


def test_nested_json_is_as_deep_as_asked() -> None:
    text = malformed.nested_json(3)
    assert json.loads(text) == {"nested": {"nested": {}}}
    assert malformed.nested_json(1) == "{}"


@pytest.mark.parametrize(
    ("transform", "expected"),
    [
        (malformed.data_null(), lambda real: {"status": True, "data": None}),
        (malformed.data_missing(), lambda real: {"status": True}),
        (
            malformed.feedbacks_null(),
            lambda real: {"status": True, "data": {**real["data"], "feedbacks": None}},
        ),
        (
            malformed.feedbacks_not_a_list(),
            lambda real: {
                "status": True,
                "data": {
                    **real["data"],
                    "feedbacks": {i["feedback_id"]: i for i in real["data"]["feedbacks"]},
                },
            },
        ),
        (
            malformed.feedbacks_not_a_list("not a list"),
            lambda real: {"status": True, "data": {**real["data"], "feedbacks": "not a list"}},
        ),
    ],
)
def test_envelope_rewrites(
    fake: FakeUsersnap, transform: Transform, expected: t.Callable[[dict], dict]
) -> None:
    real, got = real_and_mangled(fake, transform)
    assert got == expected(real)


@pytest.mark.parametrize("null", [False, True])
def test_has_more_without_next_on_the_last_feedback_page(fake: FakeUsersnap, null: bool) -> None:
    project_id = next(iter(fake.projects))
    path = f"/projects/{project_id}/feedbacks/filter"
    real = call(fake, "POST", path, params={"limit": 100}, body=ASCENDING).json()["data"]
    assert real["has_more"] is False
    fake.inject("mangle", match=FILTER, transform=malformed.has_more_without_next(null=null))

    got = call(fake, "POST", path, params={"limit": 100}, body=ASCENDING).json()["data"]

    rest = {k: v for k, v in real.items() if k not in {"has_more", "next"}}
    assert got == {**rest, "has_more": True, **({"next": None} if null else {})}


def test_has_more_without_next_on_the_projects_listing(fake: FakeUsersnap) -> None:
    real = call(fake, "GET", "/projects").json()["data"]
    fake.inject("mangle", match=PROJECTS, transform=malformed.has_more_without_next())

    got = call(fake, "GET", "/projects").json()["data"]

    assert got == {"has_more": True, "count": 3, "projects": real["projects"]}


# ------------------------------------------------------------------------ one endpoint only


def test_a_status_fault_can_strike_one_endpoint_only(fake: FakeUsersnap) -> None:
    assignees = r"^GET /projects/[^/]+/assignees$"
    fake.inject("status", status=403, match=assignees, times=10**6)
    project = next(iter(fake.projects.values()))

    for _ in range(3):
        response = call(fake, "GET", f"/projects/{project['api_key']}/assignees")
        assert response.status_code == 403
        assert response.json() == {
            "status": False,
            "msg": "Forbidden",
            "errortype": "FAULT",
            "errordata": {},
        }
    assert call(fake, "GET", "/projects").status_code == 200
    path = f"/projects/{project['project_id']}/feedbacks/filter"
    assert call(fake, "POST", path, body=ASCENDING).status_code == 200
    assert [r.status for r in fake.requests_to(assignees)] == [403, 403, 403]
