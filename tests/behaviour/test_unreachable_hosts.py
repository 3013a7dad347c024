"""Unreachable API hosts: a refused connection and a name that does not resolve are named."""

from __future__ import annotations

import logging
import secrets
import socket
import typing as t
from types import SimpleNamespace

import pytest

from harness.expect import messages_at
from harness.singer_run import run_sync
from tap_usersnap.client import MAX_RATE_LIMITED, MAX_RETRY_AFTER_SECONDS, MAX_TRIES

if t.TYPE_CHECKING:
    pass


POLICY = SimpleNamespace(
    max_tries=MAX_TRIES,
    max_rate_limited=MAX_RATE_LIMITED,
    max_retry_after_seconds=MAX_RETRY_AFTER_SECONDS,
)


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_connection_refused_names_the_host_and_port(
    sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    port = closed_port()
    config = {
        "jwt_id": secrets.token_hex(8),
        "jwt_secret": secrets.token_urlsafe(32),
        "api_url": f"http://127.0.0.1:{port}/v0.1",
    }
    with caplog.at_level(logging.INFO):
        result = run_sync(config, check=False)

    assert str(result.error) == (
        f"Connection to 127.0.0.1:{port} failed: connection refused (nothing listens there; "
        f"check api_url); gave up after {POLICY.max_tries} tries"
    )
    assert len(sleeps) == POLICY.max_tries - 1
    retries = [m for m in messages_at(caplog, logging.WARNING) if "connection refused" in m]
    assert len(retries) == POLICY.max_tries - 1
    assert config["jwt_secret"] not in caplog.text


def test_a_host_that_does_not_resolve_is_named(
    sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    config = {
        "jwt_id": secrets.token_hex(8),
        "jwt_secret": secrets.token_urlsafe(32),
        "api_url": "http://nonexistent.invalid/v0.1",
    }
    with caplog.at_level(logging.INFO):
        result = run_sync(config, check=False)

    assert str(result.error) == (
        "Connection to nonexistent.invalid failed: the host name could not be resolved (DNS); "
        f"check api_url and the network; gave up after {POLICY.max_tries} tries"
    )
    assert len(sleeps) == POLICY.max_tries - 1
