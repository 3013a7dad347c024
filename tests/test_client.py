"""Errors the tap explains itself (401 re-signing, 403, unknown projects) and Retry-After.

Full syncs under 429s, 5xx, resets, stalls and bad bodies are in ``test_faults.py``.
"""

from __future__ import annotations

import secrets

import pytest

from fake_usersnap import FakeUsersnap
from harness.clock import FakeClock
from harness.singer_run import bookmarks, run_sync
from tap_usersnap.http.errors import CredentialsRejectedError, ProjectNotFoundError, UsersnapError
from tap_usersnap.http.retry import RateLimitGate, parse_retry_after

FILTER = r"POST .*/filter$"


def sequential(fake: FakeUsersnap, **overrides: object) -> dict:
    """One request at a time, so the order of retries and waits is exact."""
    return fake.config(concurrency=1, **overrides)


def test_first_401_re_signs_the_token_and_retries(fake: FakeUsersnap, sleeps: list[float]) -> None:
    fake.inject("status", status=401, match=FILTER)
    result = run_sync(sequential(fake))
    assert set(result.ids()) == fake.all_feedback_ids()
    rejected, retried = fake.requests_to(FILTER)[:2]
    assert rejected.status == 401
    assert retried.token != rejected.token
    assert sleeps == [0.0]


def test_second_401_fails_with_a_clear_message(fake: FakeUsersnap, sleeps: list[float]) -> None:
    config = sequential(fake, jwt_secret=secrets.token_urlsafe(32))
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


def test_unknown_project_id_is_named_and_the_other_projects_still_sync(
    fake: FakeUsersnap,
) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    real = next(iter(fake.projects))
    result = run_sync(fake.config(project_ids=[missing, real]), check=False)
    assert isinstance(result.error, ProjectNotFoundError)
    assert "Skipped 1 Usersnap project(s)" in str(result.error)
    assert missing in str(result.error)
    assert set(result.ids()) == {i["feedback_id"] for i in fake.feedback[real]}
    assert real in bookmarks(result.final_state)


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


@pytest.mark.usefixtures("read_ahead")
def test_concurrent_run_survives_429s_on_every_project(
    fake: FakeUsersnap, sleeps: list[float]
) -> None:
    fake.inject("status", status=429, headers={"Retry-After": "3"}, match=FILTER, times=6)
    result = run_sync(fake.config(concurrency=3, page_size=5))
    assert sorted(result.ids()) == sorted(fake.all_feedback_ids())
    assert sum(1 for r in fake.requests_to(FILTER) if r.status == 429) == 6
    assert sleeps
    assert all(wait <= 3 for wait in sleeps)
