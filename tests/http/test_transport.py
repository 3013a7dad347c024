"""Transport: connection failures named by host and cause; a deadline on each whole answer;
redirect loops and redirects to another host told as such."""

from __future__ import annotations

import re
import socket
import threading
import time
import typing as t

import pytest
import requests
import urllib3.exceptions

from harness.reliability import PAGE_SIZE, FaultScenario
from tap_usersnap.http.errors import BodyTooLargeError, TokenRejectedError, UsersnapError
from tap_usersnap.http.responses import check_answer, redirected_elsewhere
from tap_usersnap.http.transport import (
    DeadlineAdapter,
    describe_connection_failure,
    new_session,
)

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap

FILTER = r"POST .*/filter$"
LISTING = "GET /projects$"
FOREVER = 10**6
SERVER = "server errors and network"
ACCESS = "credentials and projects"


def failure(cause: BaseException, url: str = "https://api.example.test:8443/v0.1/x") -> Exception:
    error = requests.exceptions.ConnectionError(
        urllib3.exceptions.MaxRetryError(None, url, cause),  # type: ignore[arg-type]
        request=requests.Request("GET", url).prepare(),
    )
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("cause", "said"),
    [
        (ConnectionRefusedError(111, "refused"), "connection refused"),
        (socket.gaierror(-2, "Name or service not known"), "could not be resolved (DNS)"),
        (ConnectionResetError(104, "reset"), "reset by the server or a proxy"),
    ],
)
def test_a_connection_failure_names_host_and_cause(cause: BaseException, said: str) -> None:
    text = describe_connection_failure(failure(cause))
    assert text.startswith("Connection to api.example.test:8443 failed: ")
    assert said in text


def test_a_trickling_answer_fails_at_the_deadline_however_often_bytes_come() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def trickle() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        while not stop.is_set():
            try:
                conn.sendall(b" ")
            except OSError:
                break
            time.sleep(0.05)
        conn.close()

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    session = new_session("http://127.0.0.1", request_timeout=0.5)
    assert isinstance(session.get_adapter("http://127.0.0.1"), DeadlineAdapter)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout, match=r"did not finish within 0\.5s"):
        session.get(f"http://127.0.0.1:{server.getsockname()[1]}/v0.1/x", timeout=(1, 0.5))
    assert time.monotonic() - started < 2  # the per-read timeout alone would wait for ever
    stop.set()
    server.close()


# --------------------------------------------------------------------------- redirects


def test_a_redirect_loop_ends_the_run_in_one_line(scenario: FaultScenario) -> None:
    fake = scenario.fake
    listing = f"{fake.url}/projects"
    fake.inject("status", status=302, headers={"Location": listing}, match=LISTING, times=FOREVER)
    host = listing.split("/")[2]
    played = scenario.play(
        "a redirect loop on the projects listing, CLI",
        group=SERVER,
        fails=UsersnapError,
        message=re.escape(
            f"| Usersnap's answers redirect in a loop (more than 30 redirects, the last to "
            f"{host}/v0.1/projects); check api_url"
        )
        + "$",
        cli=True,
    )
    assert played.first.returncode == 1
    assert len([line for line in played.first.stderr.splitlines() if "ERROR" in line]) == 1
    assert len(fake.requests_to(LISTING)) == 31 + 1  # 30 followed, then the resume's one


@pytest.mark.off_contract  # the redirected request goes without its token, on purpose
def test_a_401_after_a_redirect_to_another_host_names_the_redirect(
    scenario: FaultScenario, empty_fake: FakeUsersnap
) -> None:
    fake, elsewhere = scenario.fake, empty_fake
    fake.inject(
        "status",
        status=307,
        headers={"Location": f"{elsewhere.url}/projects/x/feedbacks/filter"},
        match=FILTER,
        skip=2,
        times=FOREVER,
    )
    origin, other = (f"http://{url.split('/')[2]}" for url in (fake.url, elsewhere.url))
    project_id = next(iter(fake.projects))
    played = scenario.play(
        "a redirect to another host, which answers 401, CLI",
        group=ACCESS,
        fails=UsersnapError,
        message=re.escape(
            f"| Usersnap's answer to POST /v0.1/projects/{project_id}/feedbacks/filter came "
            f"from another host: {origin} redirected it to {other}, which answered 401; the "
            "credentials are never sent to another host, so set api_url to the URL the "
            "redirect names if that is the API"
        )
        + "$",
        cli=True,
    )
    assert played.first.returncode == 1
    assert "rejected the credentials" not in played.first.stderr
    assert [r.token for r in elsewhere.requests] == [None]  # no token went there, no retry
    assert len(played.first.ids()) == 2 * PAGE_SIZE


def redirected(*urls: str) -> requests.Response:
    """A 401 reached through redirects along ``urls`` (the last answered)."""
    hops = []
    for url in urls:
        hop = requests.Response()
        hop.url = url
        hop.request = requests.Request("GET", url).prepare()
        hops.append(hop)
    final = hops.pop()
    final.status_code = 401
    final.history = hops
    return final


@pytest.mark.parametrize(
    ("urls", "elsewhere"),
    [
        (("http://api.test/v0.1/projects", "https://api.test/v0.1/projects"), False),
        (("https://api.test/v0.1/projects", "https://api.test/v0.2/projects"), False),
        (("https://api.test/v0.1/projects", "https://other.test/v0.1/projects"), True),
        (("https://api.test/x", "https://api.test/y", "https://other.test:8443/z"), True),
    ],
)
def test_a_401_is_from_another_host_only_when_the_token_was_not_sent_there(
    urls: tuple[str, ...], elsewhere: bool
) -> None:
    response = redirected(*urls)
    assert redirected_elsewhere(response) is elsewhere
    if not elsewhere:
        with pytest.raises(TokenRejectedError):
            check_answer(response)


def session(limit: int) -> requests.Session:
    adapted = requests.Session()
    adapted.mount("http://", DeadlineAdapter(5, max_body_bytes=limit))
    return adapted


def test_a_body_at_the_limit_is_read_and_one_byte_more_fails(empty_fake: FakeUsersnap) -> None:
    body = b'{"status": true, "data": {"projects": [], "has_more": false, "x": "' + b"y" * 900
    body += b'"}}'
    empty_fake.inject("raw", body=body, times=2)
    url = f"{empty_fake.url}/projects"

    assert session(len(body)).get(url).content == body
    with pytest.raises(
        BodyTooLargeError, match=r"^Usersnap.s answer to GET /v0\.1/projects is larger than "
    ):
        session(len(body) - 1).get(url)
