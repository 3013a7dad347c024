"""The retry loop on its own, in fake time: no sleeping, no monkeypatching."""

from __future__ import annotations

import datetime as dt
import logging
import typing as t

import pytest
import requests

from harness.clock import FakeClock
from tap_usersnap.http.errors import (
    CredentialsRejectedError,
    RateLimitedError,
    TokenRejectedError,
    UsersnapError,
)
from tap_usersnap.http.retry import RateLimitGate, Retrier, RetryPolicy, parse_retry_after


def retrier(clock: FakeClock, invalidated: list[int] | None = None) -> Retrier:
    return Retrier(
        policy=RetryPolicy(),
        clock=clock,
        logger=logging.getLogger("retry-test"),
        on_token_rejected=lambda: (invalidated if invalidated is not None else []).append(1),
        credentials_error=lambda: CredentialsRejectedError("rejected"),
    )


def failing(*errors: Exception) -> t.Callable[[], str]:
    queue = list(errors)

    def call() -> str:
        if queue:
            raise queue.pop(0)
        return "ok"

    return call


def rate_limited(retry_after: float | None) -> RateLimitedError:
    return RateLimitedError("429", requests.Response(), retry_after)


def test_a_429_waits_what_retry_after_says_every_time(fake_clock: FakeClock) -> None:
    call = failing(rate_limited(3), rate_limited(3), rate_limited(7))
    assert retrier(fake_clock).call(call) == "ok"
    assert fake_clock.waits == [3, 3, 7]


def test_transient_failures_back_off_exponentially_then_give_up(fake_clock: FakeClock) -> None:
    timeout = requests.exceptions.ReadTimeout("slow")
    call = failing(*[timeout] * 6)
    with pytest.raises(UsersnapError, match="gave up after 6 tries"):
        retrier(fake_clock).call(call)
    waits = fake_clock.waits
    assert len(waits) == 5
    assert waits == sorted(waits)
    assert 0.8 <= waits[0] <= 1.0
    assert 12.8 <= waits[-1] <= 16.0


def test_a_401_re_signs_once_then_the_credentials_are_rejected(fake_clock: FakeClock) -> None:
    invalidated: list[int] = []
    rejected = TokenRejectedError("401", requests.Response())
    assert retrier(fake_clock, invalidated).call(failing(rejected)) == "ok"
    assert invalidated == [1]
    with pytest.raises(CredentialsRejectedError):
        retrier(fake_clock, invalidated).call(failing(rejected, rejected))


def test_one_429_pauses_every_later_request_of_the_run(fake_clock: FakeClock) -> None:
    shared = retrier(fake_clock)
    shared.call(failing(rate_limited(30)))
    fake_clock.now -= 10  # another thread's request 20 s into the pause
    shared.call(failing())
    assert fake_clock.waits == [30, 10]


NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("Sat, 01 Jun 2024 12:00:30 GMT", 30.0),
        ("inf", float("inf")),  # capped by the policy
        ("0", None),
        ("-5", None),
        ("nan", None),
        ("-inf", None),
        ("Sat, 01 Jun 2024 11:59:00 GMT", None),
        ("Sat, 01 Jun 2024 12:00:00 GMT", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_a_wait_only_when_it_names_one(
    value: str | None, seconds: float | None
) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


def test_a_429_without_a_usable_retry_after_backs_off(
    fake_clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    assert retrier(fake_clock).call(failing(rate_limited(None), rate_limited(None))) == "ok"
    assert 0.8 <= fake_clock.waits[0] <= 1.0
    assert 1.6 <= fake_clock.waits[1] <= 2.0
    assert [r.getMessage() for r in caplog.records] == [
        f"429; waiting {wait:.1f}s, the backoff (no Retry-After)" for wait in fake_clock.waits
    ]


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), ("0", None), ("-5", None), ("2.5", 2.5), (None, None), ("soon", None)],
)
def test_parse_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date_in_the_past_names_no_wait() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None  # back off instead


def test_rate_limit_gate_pauses_everyone_and_never_shortens(fake_clock: FakeClock) -> None:
    sleeps = fake_clock.waits
    gate = RateLimitGate(fake_clock)
    gate.wait()
    assert sleeps == []
    gate.close_for(5)
    gate.close_for(2)
    gate.wait()
    assert sleeps == [5]
    gate.wait()
    assert sleeps == [5]
