"""Shared fixtures: a fresh fake Usersnap API per test, and no real sleeping."""

from __future__ import annotations

import typing as t

import pytest

from tests.fake_api import FakeUsersnap


@pytest.fixture
def fake() -> t.Iterator[FakeUsersnap]:
    """A running fake with three projects of 12 feedback items each."""
    with FakeUsersnap() as api:
        api.seed(projects=3, per_project=12)
        yield api


@pytest.fixture
def empty_fake() -> t.Iterator[FakeUsersnap]:
    """A running fake with no data, for tests that build their own."""
    with FakeUsersnap() as api:
        yield api


class FakeClock:
    """Stands in for the tap's clock: a wait is recorded and passes at once."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the tap's retry waits instead of sleeping through them."""
    clock = FakeClock()
    monkeypatch.setattr("tap_usersnap.retry.sleep", clock.sleep)
    monkeypatch.setattr("tap_usersnap.retry.monotonic", clock.monotonic)
    return clock.waits
