"""tap-usersnap: the Tap class and its command line."""

from __future__ import annotations

import functools
import io
import json
import logging
import sys
import typing as t

from singer_sdk.helpers.capabilities import PluginCapabilities
from typing_extensions import override

from tap_usersnap.feedback.partitions import merge_duplicate_partitions
from tap_usersnap.http.errors import UsersnapError
from tap_usersnap.http.retry import Clock, RetryPolicy, SystemClock
from tap_usersnap.records.writer import BufferedMsgSpecWriter
from tap_usersnap.run import ProjectListing, Run
from tap_usersnap.sdk_private import ExplainedFailureFilter, TapHooks
from tap_usersnap.settings import SETTINGS, Settings, config_problems
from tap_usersnap.streams.assignees import ProjectAssigneesStream
from tap_usersnap.streams.feedback import FeedbackStream
from tap_usersnap.streams.projects import ProjectsStream

if t.TYPE_CHECKING:
    import click
    from singer_sdk.helpers.capabilities import CapabilitiesEnum
    from singer_sdk.singerlib import Catalog

    from tap_usersnap.streams.base import UsersnapStream


#: The streams, in sync order: projects first, so the others reuse its listing.
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

    @functools.cached_property
    def run(self) -> Run:
        """What this run's streams share (made once the settings are checked)."""
        return Run(
            Settings.of(self.config),
            clock=self.clock,
            retry_policy=self.retry_policy,
            logger=self.logger,
            write_state=lambda: self.state_writer.write_state(self.state),
        )

    @override
    def discover_streams(self) -> list[UsersnapStream]:
        """The streams, in sync order; the projects stream lists the projects for all."""
        run = self.run
        projects, feedback, assignees = (stream_type(self, run) for stream_type in STREAM_TYPES)
        run.listing = ProjectListing(
            t.cast("ProjectsStream", projects).list_all, run.settings.project_ids
        )
        streams = [projects, feedback, assignees]
        for stream in streams:
            explain_failures(stream.logger)
        return streams

    @property
    @override
    def input_catalog(self) -> Catalog | None:
        """The catalog given, each stream's keys named in it and always selected.

        Every use of the catalog reads it here: the SCHEMA messages, which the SDK derives
        from it before any stream exists, and each stream's selection
        (:mod:`tap_usersnap.streams.catalog`; idempotent, so reading it again costs nothing).
        """
        catalog = super().input_catalog
        if catalog is not None:
            for stream_type in STREAM_TYPES:
                stream_type.keep_keys(catalog)
        return catalog

    @override
    def load_state(self, state: dict[str, t.Any]) -> None:
        """The state given, a partition named twice merged first (the later bookmark kept)."""
        merge_duplicate_partitions(state, self.logger)
        super().load_state(state)

    @override
    def config_errors(self, config: dict[str, t.Any]) -> list[str]:
        """The settings' problems, none quoting a secret (see :mod:`tap_usersnap.settings`)."""
        return config_problems(config, self.config_jsonschema)

    @override
    def after_sync(self) -> None:
        """Apply deletions where the read was complete; summarise; fail if a project was skipped.

        A skipped project's rows were not re-sent, so ACTIVATE_VERSION would delete them.
        """
        report, streams = self.run.report, self.streams
        feedback = t.cast("FeedbackStream", streams["feedback"])
        held = [f"project {p} was skipped" for p in report.skipped_projects]
        if self.run.settings.capture_deletes:
            feedback.finish_deletes(held)
            self._finish_full_tables(
                t.cast("ProjectsStream", streams["projects"]),
                feedback,
                t.cast("UsersnapStream", streams["project_assignees"]),
                held,
            )
        report.finish()

    @override
    def end_output(self) -> None:
        """What is held: records for a block write, the streams' last request counts."""
        t.cast("BufferedMsgSpecWriter", self.message_writer).flush()
        for stream in self.streams.values():
            t.cast("UsersnapStream", stream).request_counts.close()

    def _finish_full_tables(
        self,
        projects: ProjectsStream,
        feedback: FeedbackStream,
        assignees: UsersnapStream,
        held: list[str],
    ) -> None:
        """ACTIVATE_VERSION for projects and assignees, unless a project may be missing."""
        if projects.selected or assignees.selected:
            held = held + feedback.scope_gaps(projects.known_project_ids)[1]
        if held:
            what = [s.name for s in (projects, assignees) if s.selected]
            if what:
                self.run.report.deletes_held(" and ".join(what), "; ".join(held))
        else:
            projects.activate_version()
            if self.run.report.refused:
                self.run.report.deletes_held(assignees.name, "an assignees endpoint was refused")
            else:
                assignees.activate_version()
        projects.remember_listed(retired=not held)
        self.run.write_state()

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
