"""What tests of the tap expect to see: feedback in reading order, log lines, the run summary."""

from __future__ import annotations

import datetime as dt
import re
import typing as t

import jsonschema

if t.TYPE_CHECKING:
    import pytest

    from fake_usersnap import FakeUsersnap
    from harness.singer_run import SyncResult


def oldest_first(fake: FakeUsersnap, project_id: str) -> list[dict[str, t.Any]]:
    """A project's feedback in the order the tap reads it."""
    return sorted(fake.feedback[project_id], key=lambda i: (i["created_at"], i["feedback_id"]))


def messages_at(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    """The messages logged at ``level`` (an in-process run)."""
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def error_lines(stderr: str) -> list[str]:
    """The ERROR lines of a CLI run's stderr, whole."""
    return [line for line in stderr.splitlines() if "| ERROR" in line]


def summary_line(skipped: int, altered: int, refused: int) -> str:
    """The run summary the tap logs when it skipped, mended or was refused anything."""
    return (
        f"Run summary: {skipped} item(s) skipped, {altered} emitted with a value replaced, "
        f"{refused} endpoint(s) refused; each is named in a warning above"
    )


def tries_of_filter_request(fake: FakeUsersnap, index: int) -> int:
    """How often the tap sent the ``index``-th filter request (same project, same cursor)."""
    filters = fake.requests_to(r"POST .*/filter$")
    failing = filters[index]
    return sum(1 for r in filters if (r.path, r.params) == (failing.path, failing.params))


#: RFC 3339's date-time, which PostgreSQL's timestamptz takes.
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def is_date_time(value: object) -> bool:
    """A real RFC 3339 instant (jsonschema checks ``date-time`` only with an extra package)."""
    if not isinstance(value, str):
        return True
    dt.datetime.fromisoformat(value.replace("Z", "+00:00"))  # a real day and time
    return RFC3339.fullmatch(value) is not None


def assert_every_record_validates(result: SyncResult) -> None:
    """Each RECORD of every stream against the SCHEMA message the run emitted for it."""
    schemas = {m["stream"]: m["schema"] for m in result.messages if m["type"] == "SCHEMA"}
    checker = FORMATS
    for message in result.messages:
        if message["type"] == "RECORD":
            validator = jsonschema.Draft202012Validator(
                schemas[message["stream"]], format_checker=checker
            )
            errors = [(list(e.path), e.message) for e in validator.iter_errors(message["record"])]
            assert errors == [], (message["stream"], errors)
