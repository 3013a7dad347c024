"""The command line a user meets: settings, discovery, bad input and bad credentials."""

from __future__ import annotations

import json
import secrets

import pytest

from fake_usersnap import FakeUsersnap
from harness.expect import error_lines
from harness.singer_run import bookmarks, run_cli


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"jwt_id": None}, "jwt_id"),
        ({"jwt_secret": None}, "jwt_secret"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 101}, "page_size"),
        ({"start_date": "last tuesday"}, "start_date"),
        ({"api_url": "ftp://platform.usersnap.com/v0.1"}, "api_url"),
        ({"api_url": "http://127.0.0.1:99999/v0.1"}, "api_url"),
        ({"api_url": "http://[::1/v0.1"}, "api_url"),
        ({"api_url": "https://platform.usersnap.com/v0.1?x=1"}, "api_url"),
        ({"project_ids": "abc"}, "project_ids"),
        ({"request_timeout": "NaN"}, "request_timeout"),
        ({"jwt_secret": "   "}, "jwt_secret"),
        ({"backfill_window": "99999 months"}, "backfill_window"),
        ({"stream_maps": "abc"}, "stream_maps"),
        ({"flattening_enabled": True, "flattening_max_depth": "x"}, "flattening_max_depth"),
    ],
)
@pytest.mark.parametrize("test_mode", [False, True], ids=["sync", "--test"])
def test_bad_setting_fails_before_any_request_naming_it(
    fake: FakeUsersnap, overrides: dict, named: str, test_mode: bool
) -> None:
    config = {k: v for k, v in {**fake.config(), **overrides}.items() if v is not None}
    result = run_cli(*(["--test"] if test_mode else []), config=config)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert any(named in line for line in errors), result.stderr
    assert fake.requests == []


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("PAGE_SIZE", "abc", "TAP_USERSNAP_PAGE_SIZE is 'abc', not a whole number (page_size)"),
        (
            "CONCURRENCY",
            "1e1",
            "TAP_USERSNAP_CONCURRENCY is '1e1', not a whole number (concurrency)",
        ),
        (
            "CAPTURE_EDITS",
            "ture",
            "TAP_USERSNAP_CAPTURE_EDITS is 'ture'; capture_edits takes one of true, 1, yes, "
            "on, false, 0, no, off",
        ),
    ],
)
def test_a_misspelt_setting_in_the_environment_is_named_before_any_request(
    fake: FakeUsersnap, variable: str, value: str, named: str
) -> None:
    """The SDK would fail on a bad number with a traceback, and read a typo as false."""
    env = {
        "TAP_USERSNAP_JWT_ID": fake.jwt_id,
        "TAP_USERSNAP_JWT_SECRET": fake.jwt_secret,
        "TAP_USERSNAP_API_URL": fake.url,
        f"TAP_USERSNAP_{variable}": value,
    }
    result = run_cli("--config", "ENV", env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert any(line.endswith(named) for line in error_lines(result.stderr)), result.stderr
    assert fake.requests == []


def test_a_stream_map_that_cannot_be_parsed_fails_in_one_line(fake: FakeUsersnap) -> None:
    config = fake.config(stream_maps={"feedback": {"doubled": "feedback_number *"}})
    result = run_cli(config=config)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert "The stream_maps setting cannot be used: Failed to parse expression" in errors[0]
    assert fake.requests == []


def test_bad_credentials_fail_with_one_clear_line_and_no_secret(fake: FakeUsersnap) -> None:
    config = fake.config(jwt_secret=secrets.token_urlsafe(32))
    result = run_cli(config=config)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, result.stderr
    assert "Usersnap rejected the credentials (401)" in errors[0]
    assert "Traceback" not in result.stderr
    assert config["jwt_secret"] not in result.output
    assert fake.jwt_secret not in result.output
    for request in fake.requests:
        assert request.token
        assert request.token not in result.output


def test_full_then_incremental_sync_through_the_cli(fake: FakeUsersnap) -> None:
    first = run_cli(config=fake.config(page_size=5))
    assert first.returncode == 0, first.stderr
    assert set(first.ids()) == fake.all_feedback_ids()

    project_id = next(iter(fake.projects))
    new = fake.add_feedback(project_id)
    second = run_cli(config=fake.config(page_size=5), state=first.final_state)
    assert second.returncode == 0, second.stderr
    assert new["feedback_id"] in second.ids()
    assert len(second.ids()) == len(fake.projects) + 1
    assert bookmarks(second.final_state)[project_id] == new["created_at"]
    assert fake.jwt_secret not in first.output + second.output


def test_config_from_environment(fake: FakeUsersnap) -> None:
    env = {
        "TAP_USERSNAP_JWT_ID": fake.jwt_id,
        "TAP_USERSNAP_JWT_SECRET": fake.jwt_secret,
        "TAP_USERSNAP_API_URL": fake.url,
        "TAP_USERSNAP_PROJECT_IDS": json.dumps([next(iter(fake.projects))]),
    }
    result = run_cli("--config", "ENV", env=env)
    assert result.returncode == 0, result.stderr
    assert len(result.ids("projects", "project_id")) == 1


@pytest.mark.parametrize("config", [{"jwt_id": "x", "jwt_secret": "y"}, None])
def test_discover_lists_both_streams_with_keys(config: dict | None) -> None:
    """Discovery needs no credentials: the streams are known without the API."""
    result = run_cli("--discover", config=config)
    assert result.returncode == 0, result.stderr
    streams = {s["tap_stream_id"]: s for s in json.loads(result.stdout)["streams"]}
    assert set(streams) == {"projects", "feedback", "project_assignees"}
    assert streams["project_assignees"]["key_properties"] == ["project_id", "user_id"]
    assert streams["project_assignees"].get("replication_key") is None
    assert streams["feedback"]["key_properties"] == ["feedback_id"]
    assert streams["feedback"]["replication_key"] == "created_at"
    assert streams["projects"]["key_properties"] == ["project_id"]


def test_about_lists_the_settings_and_marks_the_secret() -> None:
    result = run_cli("--about", "--format", "json")
    assert result.returncode == 0, result.stderr
    settings = json.loads(result.stdout)["settings"]
    properties = settings["properties"]
    assert {"jwt_id", "jwt_secret", "api_url", "project_ids", "start_date", "page_size"} <= set(
        properties
    )
    assert properties["jwt_secret"]["secret"] is True
    assert properties["page_size"]["default"] == 100
    assert properties["api_url"]["default"] == "https://platform.usersnap.com/v0.1"
    assert set(settings["required"]) == {"jwt_id", "jwt_secret"}


def test_connection_test_passes_without_error_lines(fake: FakeUsersnap) -> None:
    result = run_cli("--test", config=fake.config())
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ERROR" not in result.stderr
    assert "Traceback" not in result.stderr
    records = [m for m in result.messages if m["type"] == "RECORD"]
    assert sorted(m["stream"] for m in records) == ["feedback", "project_assignees", "projects"]


@pytest.mark.parametrize("readable_first", [False, True], ids=["alone", "after-a-readable-one"])
def test_connection_test_fails_naming_a_project_usersnap_refuses(
    fake: FakeUsersnap, readable_first: bool
) -> None:
    """A mistyped project_ids entry must fail the test, as it fails a sync (at its end).

    The test ends at a first record: the refused project fails it even when another
    project's record comes first.
    """
    wanted = [next(iter(fake.projects))] if readable_first else []
    config = fake.config(project_ids=[*wanted, "no-such-project"])
    result = run_cli("--test", config=config)
    assert result.returncode == 1, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, errors
    assert (
        "Connection test failed: Usersnap project 'no-such-project' does not exist or this JWT "
        "key cannot see it (400 SITE_NOT_FOUND" in errors[0]
    )
    assert "Traceback" not in result.stderr


def test_connection_test_with_bad_credentials_is_one_line(fake: FakeUsersnap) -> None:
    config = fake.config(jwt_secret=secrets.token_urlsafe(32))
    result = run_cli("--test", config=config)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1
    assert "Connection test failed: Usersnap rejected the credentials (401)" in errors[0]
    assert config["jwt_secret"] not in result.stderr
    assert "Traceback" not in result.stderr
