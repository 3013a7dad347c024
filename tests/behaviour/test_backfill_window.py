"""backfill_window: how far back the first run reads, resolved once and pinned in state."""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t

import pytest
from singer_sdk.exceptions import ConfigValidationError

from harness.singer_run import run_cli, run_sync
from tap_usersnap.records import format_timestamp, parse_timestamp
from tap_usersnap.settings import Settings
from tap_usersnap.state import resolve_scope
from tap_usersnap.tap import TapUsersnap

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap


def days_ago(days: float) -> str:
    return format_timestamp(dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days))


def scope_values(fake: FakeUsersnap) -> set[str]:
    """The ``created_at gte`` values of the requests for new feedback."""
    return {
        q["value"]
        for r in fake.filter_requests("created_at")
        for q in r.body.get("query", [])
        if q["operator"] == "gte"
    }


def test_a_first_run_reads_only_the_window_and_pins_its_start(
    empty_fake: FakeUsersnap,
) -> None:
    project = empty_fake.add_project("Web app")["project_id"]
    old = empty_fake.add_feedback(project, created_at=days_ago(10))
    recent = empty_fake.add_feedback(project, created_at=days_ago(3))

    before = dt.datetime.now(dt.timezone.utc)
    result = run_sync(empty_fake.config(backfill_window="7 days", capture_edits=False))
    after = dt.datetime.now(dt.timezone.utc)

    assert result.ids() == [recent["feedback_id"]]
    assert old["feedback_id"] not in result.ids()
    [sent] = scope_values(empty_fake)
    assert sent.endswith("Z")
    assert len(sent) == len("2024-01-01T00:00:00Z")  # whole seconds, as the spec's example
    start = parse_timestamp(sent)
    window = dt.timedelta(days=7)
    assert before - window - dt.timedelta(seconds=1) <= start <= after - window
    state = result.final_state["bookmarks"]["feedback"]
    assert state["scope_setting"] == "backfill_window 7 days"
    assert state["scope_start"][:19] == sent[:19]


def test_a_later_run_keeps_the_pinned_start_not_a_new_window(empty_fake: FakeUsersnap) -> None:
    """A project first read later starts where the first run's window did, not 7 days back."""
    first = empty_fake.add_project("Web app")["project_id"]
    empty_fake.add_feedback(first, created_at=days_ago(1))
    config = empty_fake.config(backfill_window="7 days", capture_edits=False)
    state = run_sync(config).final_state
    pinned = days_ago(20)  # as if the first run had been two weeks ago
    state["bookmarks"]["feedback"]["scope_start"] = pinned
    second = empty_fake.add_project("Mobile")["project_id"]
    kept = empty_fake.add_feedback(second, created_at=days_ago(12))
    older = empty_fake.add_feedback(second, created_at=days_ago(25))

    result = run_sync(config, state=state)

    assert kept["feedback_id"] in result.ids()
    assert older["feedback_id"] not in result.ids()
    assert result.final_state["bookmarks"]["feedback"]["scope_start"] == pinned


@pytest.mark.parametrize(
    ("window", "now", "start"),
    [
        ("30 days", "2024-03-31T10:00:00Z", "2024-03-01T10:00:00.000000Z"),
        ("2 weeks", "2024-03-01T10:00:00Z", "2024-02-16T10:00:00.000000Z"),
        ("1 month", "2024-03-31T10:00:00Z", "2024-02-29T10:00:00.000000Z"),
        ("6 months", "2023-08-31T10:00:00Z", "2023-02-28T10:00:00.000000Z"),
        ("12 months", "2024-01-15T10:00:00Z", "2023-01-15T10:00:00.000000Z"),
        (" 3  months ", "2024-05-31T00:00:00Z", "2024-02-29T00:00:00.000000Z"),
        ("9999 months", "2026-12-07T00:00:00Z", "1193-09-07T00:00:00.000000Z"),
    ],
)
def test_a_window_names_the_instant_that_far_back(window: str, now: str, start: str) -> None:
    settings = dataclasses.replace(
        Settings.of({"jwt_id": "id", "jwt_secret": "secret"}), backfill_window=window
    )
    assert resolve_scope(settings, parse_timestamp(now)) == start


@pytest.mark.parametrize("window", ["99999 months", "7 fortnights", "0 days", "a week", "7 Days"])
def test_a_window_that_names_no_instant_fails_before_any_request(
    fake: FakeUsersnap, window: str
) -> None:
    with pytest.raises(ConfigValidationError) as failure:
        TapUsersnap(config=fake.config(backfill_window=window))
    assert failure.value.errors == [
        f"backfill_window {window!r} is not a number of days, weeks or months, such as "
        "'30 days' or '6 months' (1 to 9999), in config['backfill_window']"
    ]
    assert fake.requests == []


def test_a_window_beside_a_start_date_is_refused_in_one_line(fake: FakeUsersnap) -> None:
    result = run_cli(
        config=fake.config(backfill_window="7 days", start_date="2024-01-01T00:00:00Z")
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (
        "start_date and backfill_window are both set; set one of them (each says where the "
        "first run starts)"
    ) in result.stderr
    assert result.messages == []
    assert fake.requests == []
