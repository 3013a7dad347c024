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


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the tap's retry waits instead of sleeping through them."""
    waits: list[float] = []
    monkeypatch.setattr("tap_usersnap.client.time.sleep", waits.append)
    return waits
