"""The fake's faults, read over HTTP without the tap: each does what its docstring says."""

from __future__ import annotations

import json
import socket
import time
import typing as t
from urllib.parse import urlsplit

from fake_usersnap.client import call, token

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap

PROJECTS = "^GET /projects$"


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
