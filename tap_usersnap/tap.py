"""tap-usersnap: the Tap class and its command line."""

from __future__ import annotations

import functools
import io
import json
import logging
import sys
import time
import typing as t

from singer_sdk.helpers.capabilities import PluginCapabilities
from typing_extensions import override

from tap_usersnap.auth import UsersnapJWTAuthenticator
from tap_usersnap.counts import FeedbackCounts
from tap_usersnap.errors import CredentialsRejectedError, UsersnapError
from tap_usersnap.report import RunReport
from tap_usersnap.retry import Clock, Retrier, RetryPolicy, SystemClock
from tap_usersnap.sdk_private import ExplainedFailureFilter, TapHooks
from tap_usersnap.settings import SETTINGS, config_problems, unique
from tap_usersnap.streams import FeedbackStream, ProjectAssigneesStream, ProjectsStream
from tap_usersnap.writer import BufferedMsgSpecWriter

if t.TYPE_CHECKING:
    import click
    from singer_sdk.helpers.capabilities import CapabilitiesEnum
    from singer_sdk.singerlib import Catalog

    from tap_usersnap.client import UsersnapStream


#: The streams, in sync order.
STREAM_TYPES: tuple[type[UsersnapStream], ...] = (
    ProjectsStream,
    FeedbackStream,
    ProjectAssigneesStream,
)


def explain_failures(logger: logging.Logger | logging.LoggerAdapter[logging.Logger]) -> None:
    """Filter ``logger``'s records through :class:`ExplainedFailureFilter`, once.

    On the logger itself: a filter on a LoggerAdapter is impossible (SDK 0.55's
    ``Stream.logger`` is one), and a logger outlives the streams built on it.
    """
    underlying = logger.logger if isinstance(logger, logging.LoggerAdapter) else logger
    if not any(isinstance(f, ExplainedFailureFilter) for f in underlying.filters):
        underlying.addFilter(ExplainedFailureFilter())


class TapUsersnap(TapHooks):
    """Extracts Usersnap projects, feedback and assignees through the Usersnap REST API v0.1."""

    name = "tap-usersnap"
    message_writer_class = BufferedMsgSpecWriter
    config_jsonschema = SETTINGS
    #: The SDK's, less BATCH: a BATCH message is written after the STATE that covers it,
    #: so a crash between the two would lose its records.
    capabilities: t.ClassVar[list[CapabilitiesEnum]] = [
        c for c in TapHooks.capabilities if c is not PluginCapabilities.BATCH
    ]
    #: How retries wait; tests pass a fake clock to the constructor instead.
    retry_policy = RetryPolicy()

    def __init__(self, *args: t.Any, clock: Clock | None = None, **kwargs: t.Any) -> None:
        self.clock: Clock = clock or SystemClock()
        super().__init__(*args, **kwargs)
        explain_failures(self.logger)

    @override
    def discover_streams(self) -> list[UsersnapStream]:
        """The streams, in sync order: projects first, so the others reuse its listing."""
        streams = [stream_type(self) for stream_type in STREAM_TYPES]
        for stream in streams:
            explain_failures(stream.logger)
        return streams

    @property
    @override
    def input_catalog(self) -> Catalog | None:
        """The catalog given, each stream's keys named in it and always selected.

        Every use of the catalog reads it here: the SCHEMA messages, which the SDK derives
        from it before any stream exists, and each stream's selection
        (:mod:`tap_usersnap.catalog`; idempotent, so reading it again costs nothing more).
        """
        catalog = super().input_catalog
        if catalog is not None:
            for stream_type in STREAM_TYPES:
                stream_type.keep_keys(catalog)
        return catalog

    @override
    def config_errors(self, config: dict[str, t.Any]) -> list[str]:
        """The settings' problems, none quoting a secret (see :mod:`tap_usersnap.settings`)."""
        return config_problems(config, self.config_jsonschema)

    def projects_listing(self) -> list[dict[str, t.Any]]:
        """The projects in scope, listed once per run (``GET /projects``), for every stream."""
        return t.cast("ProjectsStream", self.streams["projects"]).listing()

    @property
    def project_ids(self) -> list[str]:
        """The ``project_ids`` setting, each once, in order (empty: every project)."""
        return unique(self.config.get("project_ids") or [])

    @functools.cached_property
    def jwt_authenticator(self) -> UsersnapJWTAuthenticator:
        """The tap's one authenticator, shared by every stream."""
        return UsersnapJWTAuthenticator(self.config["jwt_id"], self.config["jwt_secret"])

    @functools.cached_property
    def retrier(self) -> Retrier:
        """The run's retry loop: one 429 pauses every request, whichever thread sends it."""
        return Retrier(
            policy=self.retry_policy,
            clock=self.clock,
            logger=self.logger,
            on_token_rejected=self.jwt_authenticator.invalidate,
            credentials_error=self._credentials_rejected,
        )

    @functools.cached_property
    def report(self) -> RunReport:
        """What the run skipped or changed, and the summary at its end."""
        return RunReport(self.logger)

    @functools.cached_property
    def table_version(self) -> int:
        """The table version of this run's full-table records (milliseconds since 1970)."""
        return int(time.time() * 1000)  # wall clock: versions must grow from run to run

    def scope_gaps(self, known: set[str]) -> tuple[list[str], list[str]]:
        """Known projects Usersnap confirms gone, and why no deletion may be applied this run.

        ``known`` are the projects whose rows the warehouse holds. A project missing
        from the listing is gone only if its own endpoint answers SITE_NOT_FOUND; a listing
        that stopped early, or a ``project_ids`` narrower than ``known``, holds every
        deletion back.
        """
        projects = t.cast("ProjectsStream", self.streams["projects"])
        wanted = set(self.project_ids)
        listed = {p.get("project_id") for p in projects.listing()}
        held: list[str] = []
        left_out = sorted(known - wanted) if wanted else []
        if left_out:
            held.append(
                f"project_ids leaves out {len(left_out)} project(s) whose rows the warehouse "
                f"holds ({', '.join(left_out)}); to retire them on purpose, run once with a "
                "full refresh (meltano run --full-refresh ...)"
            )
        if not projects.listing_complete:
            held.append("the project listing stopped early, so a missing project may exist")
            return [], held
        gone = []
        for project_id in sorted(known - listed - set(left_out)):
            exists = self._project_exists(project_id)
            if exists is False:
                gone.append(project_id)
            else:
                held.append(
                    f"project {project_id} is missing from the project listing, but Usersnap "
                    + ("still answers for it" if exists else "did not say whether it exists")
                )
        return gone, held

    @functools.cache  # noqa: B019 - one tap per run; an answer per project, asked once
    def _project_exists(self, project_id: str) -> bool | None:
        stream = self.streams["projects"]
        counts = FeedbackCounts(
            t.cast("UsersnapStream", stream).post_json,
            url_base=t.cast("UsersnapStream", stream).url_base,
            start_date=None,
            logger=self.logger,
        )
        return counts.exists(project_id)

    @override
    def after_sync(self) -> None:
        """Apply deletions where the read was complete; summarise; fail if a project was skipped.

        A skipped project's rows were not re-sent, so ACTIVATE_VERSION would delete them.
        """
        report = self.report
        streams = t.cast("dict[str, UsersnapStream]", self.streams)
        projects = t.cast("ProjectsStream", streams["projects"])
        held = [f"project {p} was skipped" for p in report.skipped_projects]
        if projects.captures_deletes:
            t.cast("FeedbackStream", streams["feedback"]).finish_deletes(held)
            self._finish_full_tables(projects, streams["project_assignees"], held)
        report.finish()

    def _finish_full_tables(
        self, projects: ProjectsStream, assignees: UsersnapStream, held: list[str]
    ) -> None:
        """ACTIVATE_VERSION for projects and assignees, unless a project may be missing."""
        if projects.selected or assignees.selected:
            held = held + self.scope_gaps(projects.known_project_ids)[1]
        if held:
            what = [s.name for s in (projects, assignees) if s.selected]
            if what:
                self.report.deletes_held(" and ".join(what), "; ".join(held))
        else:
            projects.activate_version()
            if self.report.refused:
                self.report.deletes_held(assignees.name, "an assignees endpoint was refused")
            else:
                assignees.activate_version()
        projects.remember_listed(retired=not held)
        self.state_writer.write_state(self.state)

    def _credentials_rejected(self) -> CredentialsRejectedError:
        return CredentialsRejectedError(
            f"Usersnap rejected the credentials (401) of JWT ID {self.config['jwt_id']!r}: "
            "check the jwt_id and jwt_secret settings; the API key may have been deleted "
            "or rotated in Usersnap (Settings > API)"
        )

    @classmethod
    @override
    def invoke(cls, *args: t.Any, **kwargs: t.Any) -> None:
        """Run the tap; a known failure ends it with one clear line and exit code 1."""
        try:
            for name in ("state", "catalog"):
                kwargs[name] = _checked_json_file(kwargs.get(name), name)
            super().invoke(*args, **kwargs)
        except UsersnapError as exc:
            cls.logger.error("%s", exc)  # noqa: TRY400 - one line, no traceback, on purpose
            sys.exit(1)

    @classmethod
    @override
    def cb_test(cls, ctx: click.Context, param: click.Option, value: str) -> None:
        """``--test``: the SDK's connection check; a known failure is one line, exit 1."""
        try:
            super().cb_test(ctx, param, value)
        except UsersnapError as exc:
            cls.logger.error("Connection test failed: %s", exc)  # noqa: TRY400 - one line
            ctx.exit(1)


def _checked_json_file(file: t.IO[str] | None, what: str) -> t.IO[str] | None:
    """The file, if it holds a JSON object; else a failure naming the file."""
    if file is None:
        return None
    name = getattr(file, "name", what)
    text = file.read()
    try:
        value = json.loads(text)
    except ValueError as exc:
        msg = f"The {what} file {name} is not valid JSON ({exc})"
        raise UsersnapError(msg) from None
    if not isinstance(value, dict):
        msg = f"The {what} file {name} holds a {type(value).__name__}, not a JSON object"
        raise UsersnapError(msg)
    return io.StringIO(text)


if __name__ == "__main__":
    TapUsersnap.cli()
