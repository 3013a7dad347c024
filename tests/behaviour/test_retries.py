"""Retries through the tap: a first 401 re-signs the token and retries, a second is a clear failure.

The 429 rule is in ``tests/reliability/test_rate_limits.py``; full syncs under 5xx, resets,
stalls and bad bodies in ``tests/reliability/test_faults.py``.
"""

from __future__ import annotations

import secrets

import pytest

from fake_usersnap import FakeUsersnap
from harness.singer_run import run_sync
from tap_usersnap.client import CredentialsRejectedError

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
    assert sleeps == []  # re-signed and tried again at once


def test_second_401_fails_with_a_clear_message(fake: FakeUsersnap, sleeps: list[float]) -> None:
    config = sequential(fake, jwt_secret=secrets.token_urlsafe(32))
    with pytest.raises(CredentialsRejectedError) as caught:
        run_sync(config)
    message = str(caught.value)
    assert "rejected the credentials" in message
    assert "jwt_secret" in message
    assert config["jwt_secret"] not in message
    assert len(fake.requests) == 2
    assert sleeps == []  # re-signed and tried again at once
