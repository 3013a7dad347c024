"""ApiClient.map: per-project requests overlap, bounded by concurrency, results in order."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from harness.clock import FakeClock
from tap_usersnap.http.client import ApiClient
from tap_usersnap.http.errors import CredentialsRejectedError, UsersnapError
from tap_usersnap.http.retry import Retrier, RetryPolicy


def client(concurrency: int) -> ApiClient:
    retrier = Retrier(
        policy=RetryPolicy(),
        clock=FakeClock(),
        logger=logging.getLogger("test"),
        on_token_rejected=lambda: None,
        credentials_error=lambda: CredentialsRejectedError("rejected"),
    )
    return ApiClient(
        api_url="http://127.0.0.1:9",
        request_timeout=5.0,
        authenticator=lambda request: request,
        retrier=retrier,
        concurrency=concurrency,
    )


class InFlight:
    """Counts the calls running at once."""

    def __init__(self) -> None:
        self.now = self.most = 0
        self._lock = threading.Lock()

    def __call__(self, item: int) -> int:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.02)
        with self._lock:
            self.now -= 1
        return item * 10


@pytest.mark.parametrize("concurrency", [1, 3])
def test_map_keeps_the_order_and_never_exceeds_concurrency(concurrency: int) -> None:
    calls = InFlight()
    assert client(concurrency).map(calls, list(range(9))) == [i * 10 for i in range(9)]
    assert calls.most <= concurrency
    if concurrency > 1:
        assert calls.most > 1  # they did overlap


def test_a_failure_is_raised_once_the_calls_under_way_have_ended() -> None:
    done: list[int] = []

    def call(item: int) -> int:
        if item == 1:
            raise UsersnapError("project 1 failed")
        time.sleep(0.05)
        done.append(item)
        return item

    with pytest.raises(UsersnapError, match="project 1 failed"):
        client(2).map(call, [0, 1])
    assert done == [0]


def test_after_a_failure_the_calls_not_yet_started_are_not_made() -> None:
    made: list[int] = []

    def call(item: int) -> int:
        made.append(item)
        if item == 0:
            raise UsersnapError("rejected")
        time.sleep(0.05)
        return item

    with pytest.raises(UsersnapError, match="rejected"):
        client(2).map(call, list(range(20)))
    assert len(made) < 20
