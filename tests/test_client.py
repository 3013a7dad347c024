"""Errors and retries: 429, 5xx, resets, 401 re-signing, 403, unknown projects."""

from __future__ import annotations

import email.utils
import time

import pytest

from tap_usersnap.errors import CredentialsRejectedError, ProjectNotFoundError, UsersnapError
from tap_usersnap.retry import RateLimitGate, RetryPolicy, parse_retry_after
from tests.fake_api import FakeUsersnap
from tests.singer_run import run_sync

FILTER = r"POST .*/filter$"


def sequential(fake: FakeUsersnap, **overrides: object) -> dict:
    """One request at a time, so the order of retries and waits is exact."""
    return fake.config(concurrency=1, **overrides)


def test_429_with_retry_after_seconds_is_waited_out(
    fake: FakeUsersnap, sleeps: list[float]
) -> None:
    fake.inject("status", status=429, headers={"Retry-After": "7"}, match=FILTER, times=3)
    result = run_sync(sequential(fake))
    assert sleeps == [7.0, 7.0, 7.0]
    assert set(result.ids()) == fake.all_feedback_ids()


def test_429_with_http_date_is_waited_out(fake: FakeUsersnap, sleeps: list[float]) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    fake.inject("status", status=429, headers={"Retry-After": when}, match=FILTER)
    result = run_sync(sequential(fake))
    assert len(sleeps) == 1
    assert 25 <= sleeps[0] <= 31
    assert set(result.ids()) == fake.all_feedback_ids()


def test_absurd_retry_after_is_capped(fake: FakeUsersnap, sleeps: list[float]) -> None:
    fake.inject("status", status=429, headers={"Retry-After": "86400"}, match=FILTER)
    run_sync(sequential(fake))
    assert sleeps == [RetryPolicy().max_retry_after_seconds]


def test_server_errors_back_off_exponentially_then_succeed(
    fake: FakeUsersnap, sleeps: list[float]
) -> None:
    fake.inject("status", status=503, match=FILTER, times=3)
    result = run_sync(sequential(fake))
    assert len(sleeps) == 3
    assert sleeps[0] < sleeps[1] < sleeps[2]
    assert set(result.ids()) == fake.all_feedback_ids()


def test_connection_reset_is_retried(fake: FakeUsersnap, sleeps: list[float]) -> None:
    fake.inject("reset", match=FILTER, times=2)
    result = run_sync(sequential(fake))
    assert len(sleeps) == 2
    assert set(result.ids()) == fake.all_feedback_ids()


def test_a_server_that_never_recovers_fails_after_bounded_tries(
    fake: FakeUsersnap, sleeps: list[float]
) -> None:
    fake.inject("status", status=502, match=FILTER, times=1000)
    with pytest.raises(UsersnapError, match=r"502.*gave up after 6 tries"):
        run_sync(sequential(fake))
    assert len(sleeps) == RetryPolicy().max_tries - 1
    assert len(fake.requests_to(FILTER)) == RetryPolicy().max_tries


def test_first_401_re_signs_the_token_and_retries(fake: FakeUsersnap, sleeps: list[float]) -> None:
    fake.inject("status", status=401, match=FILTER)
    result = run_sync(sequential(fake))
    assert set(result.ids()) == fake.all_feedback_ids()
    rejected, retried = fake.requests_to(FILTER)[:2]
    assert rejected.status == 401
    assert retried.token != rejected.token
    assert sleeps == [0.0]


def test_second_401_fails_with_a_clear_message(fake: FakeUsersnap, sleeps: list[float]) -> None:
    config = sequential(fake, jwt_secret="not-the-secret-" + "y" * 30)
    with pytest.raises(CredentialsRejectedError) as caught:
        run_sync(config)
    message = str(caught.value)
    assert "rejected the credentials" in message
    assert "jwt_secret" in message
    assert config["jwt_secret"] not in message
    assert len(fake.requests) == 2
    assert sleeps == [0.0]


def test_403_says_the_rest_api_is_not_enabled(fake: FakeUsersnap) -> None:
    fake.rest_api_enabled = False
    with pytest.raises(UsersnapError, match="REST API is not enabled"):
        run_sync(sequential(fake))
    assert len(fake.requests) == 1


def test_unknown_project_id_is_named(fake: FakeUsersnap) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(ProjectNotFoundError, match=missing):
        run_sync(sequential(fake, project_ids=[missing]))


def test_html_error_page_with_200_is_retried(fake: FakeUsersnap, sleeps: list[float]) -> None:
    fake.inject(
        "raw", body=b"<html>Bad gateway</html>", headers={"Content-Type": "text/html"}, match=FILTER
    )
    result = run_sync(sequential(fake))
    assert len(sleeps) == 1
    assert set(result.ids()) == fake.all_feedback_ids()


def test_status_false_with_200_fails_clearly(fake: FakeUsersnap) -> None:
    fake.inject(
        "raw", body=b'{"status": false, "msg": "Oops", "errortype": "INTERNAL"}', match=FILTER
    )
    with pytest.raises(UsersnapError, match="status false: INTERNAL: Oops"):
        run_sync(sequential(fake))


@pytest.mark.parametrize(
    ("header", "expected"),
    [("3", 3.0), ("0", 0.0), ("-5", 0.0), ("2.5", 2.5), (None, None), ("soon", None)],
)
def test_parse_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date_in_the_past_is_zero() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_rate_limit_gate_pauses_everyone_and_never_shortens(sleeps: list[float]) -> None:
    gate = RateLimitGate()
    gate.wait()
    assert sleeps == []
    gate.close_for(5)
    gate.close_for(2)
    gate.wait()
    assert sleeps == [5]
    gate.wait()
    assert sleeps == [5]


def test_concurrent_run_survives_429s_on_every_project(
    fake: FakeUsersnap, sleeps: list[float]
) -> None:
    fake.inject("status", status=429, headers={"Retry-After": "3"}, match=FILTER, times=6)
    result = run_sync(fake.config(concurrency=3, page_size=5))
    assert sorted(result.ids()) == sorted(fake.all_feedback_ids())
    assert sum(1 for r in fake.requests_to(FILTER) if r.status == 429) == 6
    assert sleeps
    assert all(wait <= 3 for wait in sleeps)
