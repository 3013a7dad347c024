"""The Usersnap streams: one class per stream."""

from __future__ import annotations

import datetime as dt
import functools
import typing as t
from importlib import resources

from singer_sdk import SchemaDirectory, StreamSchema

from tap_usersnap import schemas
from tap_usersnap.client import UsersnapStream
from tap_usersnap.errors import ProjectNotFoundError

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context, Record

SCHEMAS = SchemaDirectory(resources.files(schemas))

#: The one timestamp format bookmarks and emitted records use: UTC, microseconds, ``Z``.
#: Fixed width, so bookmarks compare correctly as strings too.
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def normalise_timestamp(value: str | None) -> str | None:
    """Any ISO 8601 timestamp (``Z``, offsets, fewer fraction digits) as UTC ``...Z``."""
    if not value:
        return value
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return format_timestamp(parsed)


def format_timestamp(moment: dt.datetime) -> str:
    """A datetime in the bookmark format."""
    return moment.astimezone(dt.timezone.utc).strftime(TIMESTAMP_FORMAT)


class ProjectsStream(UsersnapStream):
    """Every project the key can see (or those in ``project_ids``): ``GET /projects``."""

    name = "projects"
    path = "/projects"
    primary_keys = ("project_id",)
    replication_key = None
    records_key = "projects"
    schema = StreamSchema(SCHEMAS)

    _listing: list[dict[str, t.Any]] | None = None

    def listing(self) -> list[dict[str, t.Any]]:
        """The projects in scope, fetched once per run and shared with the feedback stream."""
        if self._listing is None:
            wanted = self.config.get("project_ids")
            projects = list(self.request_records(None))
            if wanted:
                projects = [p for p in projects if p.get("project_id") in wanted]
            self._listing = projects
        return self._listing

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Emit the shared listing (copies, so emitting never alters it)."""
        for project in self.listing():
            yield dict(project)


class FeedbackStream(UsersnapStream):
    """Feedback items, oldest first, incrementally by ``created_at``, one partition per project.

    Read with ``POST /projects/{project_id}/feedbacks/filter`` filtered on
    ``created_at gte <bookmark>`` and ordered by ``created_at`` ascending, so the bookmark
    can advance record by record and a resumed run loses nothing. Items created at the
    bookmark's instant are read again (the target upserts on ``feedback_id``).
    """

    name = "feedback"
    path = "/projects/{project_id}/feedbacks/filter"
    http_method = "POST"
    primary_keys = ("feedback_id",)
    replication_key = "created_at"
    is_sorted = True
    records_key = "feedbacks"
    schema = StreamSchema(SCHEMAS)

    @property
    def partitions(self) -> list[dict[str, t.Any]]:
        """One partition per project: the ``project_ids`` setting, else every project."""
        configured = self.config.get("project_ids")
        if configured:
            return [{"project_id": project_id} for project_id in configured]
        return [{"project_id": p["project_id"]} for p in self._projects_stream.listing()]

    @property
    def _projects_stream(self) -> ProjectsStream:
        return t.cast("ProjectsStream", self._tap.streams["projects"])

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """A project's feedback; a project Usersnap no longer knows is skipped, not fatal.

        A project deleted mid-run must not cost the other projects their sync: it is
        logged by name, the rest continue, and the tap fails at the end (see ``sync_all``).
        """
        try:
            yield from super().get_records(context)
        except ProjectNotFoundError as exc:
            project_id = str((context or {}).get("project_id"))
            self.logger.error("%s; skipping it, the other projects continue", exc)  # noqa: TRY400
            self._tap.skipped_projects.append(project_id)

    def prepare_request_payload(
        self,
        context: Context | None,
        next_page_token: str | None,
    ) -> dict[str, t.Any]:
        """Oldest first, from the bookmark (or ``start_date``) on, when there is one."""
        body: dict[str, t.Any] = {
            "order_by": {"order_by_type": "created_at", "direction": "asc"},
        }
        start = self.get_starting_timestamp(context)
        if start is not None:
            body["query"] = [
                {"filter_type": "created_at", "operator": "gte", "value": format_timestamp(start)}
            ]
        return body

    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        """Yield a page's items, then write STATE: every finished page is a resume point."""
        yield from super().parse_response(response)
        self._write_state_message()

    def post_process(self, row: Record, context: Context | None = None) -> Record | None:
        """Add ``project_name``; normalise timestamps so bookmarks compare correctly.

        An item this run already emitted for the project is dropped: a page that repeats
        items of an earlier page must neither duplicate them nor, being older than the
        bookmark, trip the SDK's sort check and end the run.
        """
        if self._is_repeat(row, context):
            return None
        project_id = row.get("project_id") or (context or {}).get("project_id")
        row["project_id"] = project_id
        row["created_at"] = normalise_timestamp(row.get("created_at"))
        row["updated_at"] = normalise_timestamp(row.get("updated_at"))
        row["project_name"] = self._project_names.get(project_id)
        return row

    def _is_repeat(self, row: Record, context: Context | None) -> bool:
        """Whether this run already emitted the item for the partition being read."""
        partition = (context or {}).get("project_id")
        emitted = self._emitted_ids
        if partition not in emitted:
            emitted.clear()  # partitions are read one after another: keep one id set
            emitted[partition] = set()
        feedback_id = row.get("feedback_id")
        if feedback_id is None:
            return False
        if feedback_id in emitted[partition]:
            self.logger.info(
                "Skipped feedback %s of project %s: already read in this run (repeated by "
                "the API on a later page)",
                feedback_id,
                partition,
            )
            return True
        emitted[partition].add(feedback_id)
        return False

    @functools.cached_property
    def _emitted_ids(self) -> dict[t.Any, set[str]]:
        """Feedback ids emitted in this run, for the current partition only."""
        return {}

    @functools.cached_property
    def _project_names(self) -> dict[str | None, str | None]:
        return {p.get("project_id"): p.get("name") for p in self._projects_stream.listing()}
