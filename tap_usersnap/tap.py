"""tap-usersnap: the Tap class, its settings and its command line."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import sys
import typing as t

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.exceptions import ConfigValidationError

from tap_usersnap.auth import UsersnapJWTAuthenticator
from tap_usersnap.errors import ProjectNotFoundError, UsersnapError
from tap_usersnap.retry import RateLimitGate
from tap_usersnap.streams import FeedbackStream, ProjectAssigneesStream, ProjectsStream
from tap_usersnap.writer import BufferedMsgSpecWriter

if t.TYPE_CHECKING:
    from tap_usersnap.client import UsersnapStream

DEFAULT_API_URL = "https://platform.usersnap.com/v0.1"


class TapUsersnap(Tap):
    """Extracts Usersnap projects, feedback and assignees through the Usersnap REST API v0.1."""

    name = "tap-usersnap"
    message_writer_class = BufferedMsgSpecWriter

    config_jsonschema = th.PropertiesList(
        th.Property(
            "jwt_id",
            th.StringType(min_length=1),
            required=True,
            title="JWT ID",
            description="The JWT ID of a Usersnap API key (Usersnap: Settings > API).",
        ),
        th.Property(
            "jwt_secret",
            th.StringType(min_length=1),
            required=True,
            secret=True,
            title="JWT secret",
            description="The JWT secret of the same key; the tap signs short-lived HS256 "
            "tokens with it and never sends or logs it.",
        ),
        th.Property(
            "api_url",
            th.StringType(pattern=r"^https?://[^\s/]+"),
            default=DEFAULT_API_URL,
            title="API URL",
            description="Base URL of the Usersnap REST API (http or https).",
        ),
        th.Property(
            "project_ids",
            th.ArrayType(th.StringType(min_length=1)),
            title="Project IDs",
            description="Only these projects (their project_id). Default: every project "
            "the key can see.",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            title="Start date",
            description="Only feedback created at or after this instant (ISO 8601) on the "
            "first run; later runs continue from their bookmarks. Default: all history.",
        ),
        th.Property(
            "page_size",
            th.IntegerType(minimum=1, maximum=100),
            default=100,
            title="Page size",
            description="Items per request (the API's limit, 1 to 100).",
        ),
        th.Property(
            "capture_edits",
            th.BooleanType,
            default=True,
            title="Capture edits",
            description="On incremental runs, also re-emit feedback edited since the last run "
            "(status, priority, labels, assignee ...), found by a scan newest-edit-first that "
            "stops at the last run's mark: usually one extra request per project.",
        ),
        th.Property(
            "concurrency",
            th.IntegerType(minimum=1, maximum=16),
            default=4,
            title="Concurrency",
            description="How many projects are read at once when the API is slow to answer "
            "(over 8 ms a page): threads then fetch pages while others are written. 1 reads one "
            "page at a time. A 429 pauses all.",
        ),
        th.Property(
            "request_timeout",
            th.NumberType(minimum=1),
            default=60,
            title="Request timeout",
            description="Seconds to wait for an answer before the try counts as failed "
            "and is retried.",
        ),
    ).to_dict()

    def discover_streams(self) -> list[UsersnapStream]:
        """The streams, in sync order: projects first, so the others reuse its listing."""
        return [ProjectsStream(self), FeedbackStream(self), ProjectAssigneesStream(self)]

    @functools.cached_property
    def jwt_authenticator(self) -> UsersnapJWTAuthenticator:
        """The tap's one authenticator, shared by every stream."""
        return UsersnapJWTAuthenticator(self.config["jwt_id"], self.config["jwt_secret"])

    @functools.cached_property
    def skipped_projects(self) -> list[str]:
        """Projects Usersnap did not know during this run (400 SITE_NOT_FOUND), in order."""
        return []

    def skip_project(self, project_id: str, error: Exception, logger: logging.Logger) -> None:
        """Log a project Usersnap does not know and go on; :meth:`sync_all` fails at the end.

        A project deleted mid-run must not cost the other projects their sync.
        """
        logger.error("%s; skipping it, the other projects continue", error)
        if project_id not in self.skipped_projects:
            self.skipped_projects.append(project_id)

    def sync_all(self) -> None:  # type: ignore[misc]  # the SDK has no after-sync hook
        """Sync every stream, then fail if a project had to be skipped.

        The failure comes last, so the other projects' records and state are delivered
        first and nothing is skipped silently. (``sync_all`` is marked final; this override
        only adds the check after the SDK's own sync.)
        """
        super().sync_all()
        if self.skipped_projects:
            names = ", ".join(repr(p) for p in self.skipped_projects)
            msg = (
                f"Skipped {len(self.skipped_projects)} Usersnap project(s) that do not exist "
                f"or that this JWT key cannot see (deleted?): {names}; every other project was "
                "synced. Check the project_ids setting if the project should exist"
            )
            raise ProjectNotFoundError(msg)

    @functools.cached_property
    def rate_limit_gate(self) -> RateLimitGate:
        """One 429 pauses every request of the run, whichever thread sends it."""
        return RateLimitGate()

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Also check what JSON Schema alone does not: that start_date is a date-time."""
        errors = super()._validate_config(raise_errors=False)
        start_date = self.config.get("start_date")
        if start_date is not None and not _is_datetime(start_date):
            errors.append(
                f"start_date {start_date!r} is not an ISO 8601 date-time "
                "(e.g. 2024-01-31T00:00:00Z) in config['start_date']"
            )
        if errors and raise_errors:
            raise ConfigValidationError(
                "Config validation failed", errors=errors, schema=self.config_jsonschema
            )
        return errors

    @classmethod
    def invoke(cls, *args: t.Any, **kwargs: t.Any) -> None:
        """Run the tap; a known failure ends it with one clear line and exit code 1."""
        try:
            super().invoke(*args, **kwargs)
        except UsersnapError as exc:
            cls.logger.error("%s", exc)  # noqa: TRY400 - one line, no traceback, on purpose
            sys.exit(1)


def _is_datetime(value: t.Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


if __name__ == "__main__":
    TapUsersnap.cli()
