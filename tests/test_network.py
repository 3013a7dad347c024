"""Transport: connection failures named by host and cause; a deadline on each whole answer."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests
import urllib3.exceptions

from tap_usersnap.network import DeadlineAdapter, describe_connection_failure, new_session


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
