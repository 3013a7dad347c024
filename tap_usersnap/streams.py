"""The Usersnap streams: one class per stream."""

from __future__ import annotations

import datetime as dt
import functools
import typing as t
from http import HTTPStatus
from importlib import resources

from singer_sdk import SchemaDirectory, StreamSchema

from tap_usersnap import schemas
from tap_usersnap.client import UsersnapStream
from tap_usersnap.derived import derived_fields
from tap_usersnap.envelope import describe_request
from tap_usersnap.errors import EndpointNotFoundError

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
        """Add ``project_name`` and the derived fields; normalise timestamps for bookmarks."""
        project_id = row.get("project_id") or (context or {}).get("project_id")
        row["project_id"] = project_id
        row["created_at"] = normalise_timestamp(row.get("created_at"))
        row["updated_at"] = normalise_timestamp(row.get("updated_at"))
        row["project_name"] = self._project_names.get(project_id)
        row.update(derived_fields(row))
        return row

    @functools.cached_property
    def _project_names(self) -> dict[str | None, str | None]:
        return {p.get("project_id"): p.get("name") for p in self._projects_stream.listing()}


class ProjectAssigneesStream(UsersnapStream):
    """Who feedback can be assigned to in each project: ``GET /projects/{api_key}/assignees``.

    One partition per project of the shared projects listing, so ``project_ids`` applies and
    ``GET /projects`` is not repeated; the listing also gives each project's ``api_key``,
    which keys this endpoint. Full table, as the API has no change marker for users. A
    project whose endpoint answers 404, or that has no assignees, emits nothing.
    """

    name = "project_assignees"
    path = "/projects/{api_key}/assignees"
    primary_keys = ("project_id", "user_id")
    replication_key = None
    records_key = "users"
    #: Full table has no bookmark: one stream-level state, not an entry per project.
    state_partitioning_keys: t.ClassVar[list[str]] = []
    schema = StreamSchema(SCHEMAS)

    @property
    def partitions(self) -> list[dict[str, t.Any]]:
        """``{project_id}`` of every project in scope that has an api_key.

        The api_key itself stays out of the context, so the SDK's metrics and logs, which
        print every context, do not repeat it; :meth:`get_url` looks it up.
        """
        return [{"project_id": project_id} for project_id in self._api_keys]

    @functools.cached_property
    def _api_keys(self) -> dict[str, str]:
        projects = t.cast("ProjectsStream", self._tap.streams["projects"]).listing()
        api_keys = {}
        for project in projects:
            if project.get("api_key"):
                api_keys[project["project_id"]] = project["api_key"]
            else:
                self.logger.info(
                    "Project %s has no api_key: no assignees to read", project["project_id"]
                )
        return api_keys

    def get_url(self, context: Context | None) -> str:
        """The endpoint of the context's project, keyed by that project's api_key."""
        project_id = (context or {})["project_id"]
        return super().get_url({"api_key": self._api_keys[project_id]})

    def get_url_params(
        self,
        context: Context | None,
        next_page_token: str | None,
    ) -> dict[str, t.Any]:
        """No parameters (the spec documents none); ``after`` only if the API ever pages."""
        return {"after": next_page_token} if next_page_token else {}

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """The project's assignees; a 404 or an empty list is logged, not an error."""
        if not context:
            return  # no project in scope: the SDK still calls once, with an empty context
        project_id = context["project_id"]
        count = 0
        try:
            for record in super().get_records(context):
                count += 1
                yield record
        except EndpointNotFoundError as exc:
            self.logger.info("Project %s has no assignees endpoint (%s); skipped", project_id, exc)
            return
        if count == 0:
            self.logger.info("Project %s has no assignees", project_id)

    def validate_response(self, response: requests.Response) -> None:
        """A 404 means this project has no assignees endpoint; the rest as for any stream."""
        if response.status_code == HTTPStatus.NOT_FOUND:
            msg = f"Usersnap answered 404 to {describe_request(response)}"
            raise EndpointNotFoundError(msg)
        super().validate_response(response)

    def post_process(self, row: Record, context: Context | None = None) -> Record | None:
        """Add ``project_id``, the key's other half (the api_key is in the projects stream)."""
        row["project_id"] = (context or {})["project_id"]
        return row
