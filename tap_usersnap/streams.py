"""The Usersnap streams: one class per stream."""

from __future__ import annotations

import datetime as dt
import functools
import typing as t
from importlib import resources

from singer_sdk import SchemaDirectory, StreamSchema

from tap_usersnap import schemas
from tap_usersnap.client import UsersnapStream
from tap_usersnap.prefetch import PageFeed

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context, Record

SCHEMAS = SchemaDirectory(resources.files(schemas))

#: The one timestamp format bookmarks and emitted records use: UTC, microseconds, ``Z``.
#: Fixed width, so bookmarks compare correctly as strings too.
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
TIMESTAMP_EXAMPLE = "2024-03-01T12:00:00.000000Z"


#: Marks the end of a page in the record loop (an object no API item can be).
PAGE_END: dict[str, t.Any] = {}


def normalise_timestamp(value: str | None) -> str | None:
    """Any ISO 8601 timestamp (``Z``, offsets, fewer fraction digits) as UTC ``...Z``."""
    if not value or _is_canonical(value):
        return value
    return format_timestamp(parse_timestamp(value))


def parse_timestamp(value: str) -> dt.datetime:
    """An ISO 8601 timestamp as an aware datetime; naive means UTC."""
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _is_canonical(value: str) -> bool:
    """Already ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (Usersnap's own form): the common fast path."""
    return len(value) == len(TIMESTAMP_EXAMPLE) and value[-1] == "Z" and value[19] == "."


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

    _feed: PageFeed[str, list[dict[str, t.Any]]] | None = None
    _starts: dict[str, str | None]

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
        """A project's items, page by page, from the read-ahead feed; STATE after each page.

        Every finished page is a resume point: the bookmark has advanced past its items.
        """
        project_id = (context or {})["project_id"]
        feed = self._page_feed()
        try:
            for page in feed.pages(project_id):
                yield from page
                self._write_state_message()
        except BaseException:
            feed.close()
            raise

    def _page_feed(self) -> PageFeed[str, list[dict[str, t.Any]]]:
        """Created once per run, in this thread, before any worker reads the state."""
        if self._feed is None:
            keys = [partition["project_id"] for partition in self.partitions]
            self._starts = {key: self._start_of({"project_id": key}) for key in keys}
            self._feed = PageFeed(
                keys, self._fetch_pages, concurrency=int(self.config["concurrency"])
            )
        return self._feed

    def _start_of(self, context: Context) -> str | None:
        """Where a project's read starts: its bookmark or ``start_date``, the later one.

        The SDK settles this per partition as it starts it; read-ahead threads need every
        project's start before then, so it is computed up front from the same inputs.
        """
        state = self.get_context_state(context)
        bookmark = None
        if state.get("replication_key") == self.replication_key:
            bookmark = state.get("replication_key_value")
        candidates = [parse_timestamp(v) for v in (bookmark, self.config.get("start_date")) if v]
        return format_timestamp(max(candidates)) if candidates else None

    def _fetch_pages(self, project_id: str) -> t.Iterator[list[dict[str, t.Any]]]:
        """One project's pages, through the SDK's request loop (paging, retries, metrics)."""
        page: list[dict[str, t.Any]] = []
        for item in self.request_records({"project_id": project_id}):
            if item is PAGE_END:
                yield page
                page = []
            else:
                page.append(item)

    def prepare_request_payload(
        self,
        context: Context | None,
        next_page_token: str | None,
    ) -> dict[str, t.Any]:
        """Oldest first, from the bookmark (or ``start_date``) on, when there is one."""
        body: dict[str, t.Any] = {
            "order_by": {"order_by_type": "created_at", "direction": "asc"},
        }
        project_id = (context or {})["project_id"]
        if project_id not in self._starts:  # a context outside the partitions: read inline
            self._starts[project_id] = self._start_of({"project_id": project_id})
        start = self._starts[project_id]
        if start is not None:
            body["query"] = [{"filter_type": "created_at", "operator": "gte", "value": start}]
        return body

    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        """A page's items, then :data:`PAGE_END`, so pages survive the SDK's record loop."""
        yield from super().parse_response(response)
        yield PAGE_END

    def post_process(self, row: Record, context: Context | None = None) -> Record | None:
        """Add ``project_name``; normalise timestamps so bookmarks compare correctly."""
        project_id = row.get("project_id") or (context or {}).get("project_id")
        row["project_id"] = project_id
        row["created_at"] = normalise_timestamp(row.get("created_at"))
        row["updated_at"] = normalise_timestamp(row.get("updated_at"))
        row["project_name"] = self._project_names.get(project_id)
        return row

    @functools.cached_property
    def _project_names(self) -> dict[str | None, str | None]:
        return {p.get("project_id"): p.get("name") for p in self._projects_stream.listing()}
