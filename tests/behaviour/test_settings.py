"""Settings: start_date at the edges, credentials from files and the environment, a
jwt_secret of the wrong type, BATCH refused, project ids listed twice.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import typing as t

import pytest
from singer_sdk.exceptions import ConfigValidationError

from fake_usersnap import filter_time
from harness.expect import error_lines, oldest_first
from harness.singer_run import bookmarks, run_cli, run_sync
from tap_usersnap.records import format_timestamp
from tap_usersnap.tap import TapUsersnap

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap

FILTER = r"POST .*/filter$"


def error_messages(stderr: str) -> list[str]:
    return [line.split(" | ")[-1] for line in stderr.splitlines() if "| ERROR" in line]


def test_start_date_in_year_one_is_sent_in_whole_seconds(fake: FakeUsersnap) -> None:
    result = run_sync(fake.config(start_date="0001-01-01", capture_edits=False))

    assert sorted(result.ids()) == sorted(fake.all_feedback_ids())
    values = {r.body["query"][0]["value"] for r in fake.filter_requests("created_at")}
    assert values == {"0001-01-01T00:00:00Z"}  # whole seconds, as the spec's example
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
    assert error_messages(result.stderr) == [
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


# ------------------------------------------------------------------------------------ BATCH


def test_batch_config_is_refused_before_any_request(fake: FakeUsersnap) -> None:
    batch_config = {"encoding": {"format": "jsonl"}, "storage": {"root": "file:///tmp"}}
    with pytest.raises(ConfigValidationError) as failure:
        TapUsersnap(config=fake.config(batch_config=batch_config))
    assert failure.value.errors == [
        "batch_config is set, but tap-usersnap does not write BATCH messages (its STATE could "
        "run ahead of records a target has not loaded); remove the batch_config setting"
    ]
    assert fake.requests == []


def test_about_does_not_offer_batch() -> None:
    result = run_cli("--about", "--format=json")
    assert result.returncode == 0, result.stderr
    about = json.loads(result.stdout)
    assert "batch" not in about["capabilities"]
    assert {"catalog", "state", "discover"} <= set(about["capabilities"])
    assert "batch_config" not in about["settings"]["properties"]


# ------------------------------------------------------------------------ jwt_secret's type


@pytest.mark.parametrize("kind", ["a number", "a list", "an object"])
def test_a_jwt_secret_of_the_wrong_type_is_named_but_never_shown(
    fake: FakeUsersnap, kind: str
) -> None:
    token = secrets.token_urlsafe(24)
    number = secrets.randbelow(900_000_000) + 100_000_000
    value, shown = {
        "a number": (number, str(number)),
        "a list": ([token], token),
        "an object": ({"secret": token}, token),
    }[kind]

    result = run_cli(config=fake.config(jwt_secret=value))

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert shown not in result.stderr + result.stdout
    errors = [line.split(" | ")[-1] for line in error_lines(result.stderr)]
    assert errors == [
        "config['jwt_secret'] is invalid: it must satisfy 'type' (['string']); the value is "
        "not shown, as it is secret",
        "Config validation failed",
    ]
    assert fake.requests == []


# -------------------------------------------------------------------- settings from the env


def test_every_setting_from_the_environment_takes_effect(fake: FakeUsersnap) -> None:
    chosen = list(fake.projects)[:2]
    start = oldest_first(fake, chosen[0])[3]["created_at"]
    env = {
        "TAP_USERSNAP_JWT_ID": fake.jwt_id,
        "TAP_USERSNAP_JWT_SECRET": fake.jwt_secret,
        "TAP_USERSNAP_API_URL": fake.url,
        "TAP_USERSNAP_PROJECT_IDS": json.dumps(chosen),
        "TAP_USERSNAP_START_DATE": start,
        "TAP_USERSNAP_PAGE_SIZE": "5",
        "TAP_USERSNAP_CAPTURE_EDITS": "false",
        "TAP_USERSNAP_CONCURRENCY": "2",
        "TAP_USERSNAP_REQUEST_TIMEOUT": "30",
    }

    result = run_cli("--config", "ENV", env=env)

    assert result.returncode == 0, result.stderr
    assert sorted(result.ids("projects", "project_id")) == sorted(chosen)
    expected = {
        i["feedback_id"] for pid in chosen for i in fake.feedback[pid] if i["created_at"] >= start
    }
    assert sorted(result.ids()) == sorted(expected)
    filters = fake.requests_to(FILTER)
    assert {r.path.split("/")[2] for r in filters} == set(chosen)
    assert {r.params["limit"] for r in filters} == {"5"}
    assert fake.filter_requests("updated_at") == []  # capture_edits false
    assert {json.dumps(r.body["query"]) for r in filters} == {
        json.dumps([{"filter_type": "created_at", "operator": "gte", "value": filter_time(start)}])
    }
    for name in env:
        setting = name.removeprefix("TAP_USERSNAP_").lower()
        assert f"Parsing '{setting}' config from env variable '{name}'." in result.stderr
    assert fake.jwt_secret not in result.output


# --------------------------------------------------------------------- repeated project ids


def test_a_project_listed_twice_is_read_once(fake: FakeUsersnap) -> None:
    first, second, _ = fake.projects
    result = run_sync(fake.config(project_ids=[first, second, first]))

    expected = [i["feedback_id"] for pid in (first, second) for i in fake.feedback[pid]]
    assert sorted(result.ids()) == sorted(expected)
    assert sorted(result.ids("projects", "project_id")) == sorted([first, second])
    reads = [r.path.split("/")[2] for r in fake.filter_requests("created_at")]
    assert sorted(reads) == sorted([first, second])
    scans = [r.path.split("/")[2] for r in fake.filter_requests("updated_at")]
    assert sorted(scans) == sorted([first, second])
    assert [
        p["context"]["project_id"]
        for p in result.final_state["bookmarks"]["feedback"]["partitions"]
    ] == [first, second]
