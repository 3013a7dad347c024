"""The feedback scope: resolved at the first run, pinned in state, never sliding."""

from __future__ import annotations

import datetime as dt
import logging
import typing as t

import pytest
from singer_sdk.exceptions import ConfigValidationError

from harness.singer_run import run_sync
from tap_usersnap.feedback.scope import pinned_scope, resolve
from tap_usersnap.feedback.state import SCOPE_START
from tap_usersnap.http.errors import UsersnapError
from tap_usersnap.settings import Settings

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap


def settings(config: dict[str, t.Any]) -> Settings:
    """The typed settings of ``config`` (with credentials, which the scope never reads)."""
    return Settings.of({"jwt_id": "id", "jwt_secret": "secret", **config})


NOW = dt.datetime(2026, 3, 31, 12, 0, tzinfo=dt.timezone.utc)
LOG = logging.getLogger("test")


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ("7 days", "2026-03-24T12:00:00.000000Z"),
        ("30 days", "2026-03-01T12:00:00.000000Z"),
        ("2 weeks", "2026-03-17T12:00:00.000000Z"),
        ("1 month", "2026-02-28T12:00:00.000000Z"),  # no 31 February: the month's last day
        (" 6  months ", "2025-09-30T12:00:00.000000Z"),
    ],
)
def test_a_backfill_window_names_an_instant_before_now(window: str, expected: str) -> None:
    assert resolve(settings({"backfill_window": window}), NOW) == expected


def test_the_first_run_pins_the_scope_and_later_ones_keep_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state: dict[str, t.Any] = {}
    first = pinned_scope(state, settings({"backfill_window": "7 days"}), now=NOW, logger=LOG)
    later = NOW + dt.timedelta(days=40)
    assert (
        pinned_scope(state, settings({"backfill_window": "7 days"}), now=later, logger=LOG) == first
    )
    assert caplog.records == []
    with caplog.at_level(logging.WARNING):
        changed = pinned_scope(state, settings({"start_date": "2026-03-30"}), now=later, logger=LOG)
    assert changed == first
    assert "changed from backfill_window 7 days to start_date 2026-03-30" in caplog.text
    assert "full refresh" in caplog.text


def test_a_pinned_scope_that_is_no_timestamp_fails_in_one_line() -> None:
    state = {SCOPE_START: "yesterday", "scope_setting": "all history"}
    with pytest.raises(UsersnapError, match="scope_start 'yesterday' is not an ISO 8601"):
        pinned_scope(state, settings({}), now=NOW, logger=LOG)


def test_start_date_and_backfill_window_together_are_refused(fake: FakeUsersnap) -> None:
    config = fake.config(start_date="2024-01-01T00:00:00Z", backfill_window="30 days")
    with pytest.raises(ConfigValidationError) as failed:
        run_sync(config)
    assert any("start_date and backfill_window are both set" in e for e in failed.value.errors)
    assert fake.requests == []


def test_a_backfill_window_bounds_the_first_run(empty_fake: FakeUsersnap) -> None:
    fake = empty_fake
    project = fake.add_project("Shop")
    now = dt.datetime.now(dt.timezone.utc)

    def created(days_ago: int) -> str:
        return (now - dt.timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    old = fake.add_feedback(project["project_id"], created_at=created(40))
    recent = fake.add_feedback(project["project_id"], created_at=created(3))
    result = run_sync(fake.config(backfill_window="30 days"))
    assert result.ids() == [recent["feedback_id"]]
    assert old["feedback_id"] not in result.ids()
    pinned = result.final_state["bookmarks"]["feedback"][SCOPE_START]
    assert pinned[:10] == (now - dt.timedelta(days=30)).strftime("%Y-%m-%d")
