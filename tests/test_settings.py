"""Settings checks at the edges: the earliest and a future start_date, credentials from files."""

from __future__ import annotations

import datetime as dt
import typing as t

import pytest
from singer_sdk.exceptions import ConfigValidationError

from harness.singer_run import bookmarks, run_cli, run_sync
from tap_usersnap.records.timestamps import format_timestamp, normalise_timestamp, parse_timestamp
from tap_usersnap.tap import TapUsersnap

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap


def error_lines(stderr: str) -> list[str]:
    return [line.split(" | ")[-1] for line in stderr.splitlines() if "| ERROR" in line]


@pytest.mark.parametrize(
    ("given", "formatted"),
    [
        ("0001-01-01", "0001-01-01T00:00:00.000000Z"),
        ("0999-12-31T23:59:59.5Z", "0999-12-31T23:59:59.500000Z"),
        ("9999-12-31T23:59:59.999999+00:00", "9999-12-31T23:59:59.999999Z"),
    ],
)
def test_every_year_is_written_with_four_digits(given: str, formatted: str) -> None:
    assert format_timestamp(parse_timestamp(given)) == formatted
    assert normalise_timestamp(given) == formatted


def test_start_date_in_year_one_is_sent_in_the_bookmark_format(fake: FakeUsersnap) -> None:
    result = run_sync(fake.config(start_date="0001-01-01", capture_edits=False))

    assert sorted(result.ids()) == sorted(fake.all_feedback_ids())
    values = {r.body["query"][0]["value"] for r in fake.filter_requests("created_at")}
    assert values == {"0001-01-01T00:00:00.000000Z"}
    final = bookmarks(result.final_state)
    assert final == {p: max(i["created_at"] for i in fake.feedback[p]) for p in fake.projects}


def test_a_start_date_before_year_one_in_utc_is_refused(fake: FakeUsersnap) -> None:
    with pytest.raises(ConfigValidationError) as failure:
        TapUsersnap(config=fake.config(start_date="0001-01-01T00:00:00+01:00"))
    assert failure.value.errors == [
        "start_date '0001-01-01T00:00:00+01:00' is not an ISO 8601 date-time "
        "(e.g. 2024-01-31T00:00:00Z) in config['start_date']"
    ]


def test_a_start_date_in_the_future_is_refused_before_any_request(fake: FakeUsersnap) -> None:
    result = run_cli(config=fake.config(start_date="2999-01-01T00:00:00Z"))

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert error_lines(result.stderr) == [
        "start_date '2999-01-01T00:00:00Z' is more than a day in the future, so no feedback "
        "could be read; in config['start_date']",
        "Config validation failed",
    ]
    assert result.messages == []
    assert fake.requests == []


def test_a_start_date_a_few_hours_ahead_is_accepted(fake: FakeUsersnap) -> None:
    """Clocks and time zones differ: only more than a day ahead is surely a mistake."""
    soon = format_timestamp(dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=3))
    result = run_sync(fake.config(start_date=soon))
    assert result.ids() == []


@pytest.mark.parametrize("padding", ["\n", "\r\n", "  ", "\t"])
def test_whitespace_around_the_jwt_secret_is_removed_with_a_warning(
    fake: FakeUsersnap, padding: str
) -> None:
    secret = fake.jwt_secret + padding
    result = run_cli(config=fake.config(jwt_secret=secret))

    assert result.returncode == 0, result.stderr
    assert sorted(result.ids()) == sorted(fake.all_feedback_ids())
    warnings = [line for line in result.stderr.splitlines() if "| WARNING" in line]
    assert [line.split(" | ")[-1] for line in warnings] == [
        "The jwt_secret setting had leading or trailing whitespace (a newline from a file?); "
        "it was removed (the value is not shown)"
    ]
    assert fake.jwt_secret not in result.stderr + result.stdout
    assert {r.status for r in fake.requests} == {200}
