"""The Usersnap streams: one class per stream."""

from __future__ import annotations

import collections
import dataclasses
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
from tap_usersnap.errors import EndpointNotFoundError, ProjectNotFoundError
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
#: Partition state key of the edit scan's high-water mark (newest ``updated_at`` seen).
UPDATED_AT_MARK = "updated_at_mark"
#: Context flag of the edit scan's requests.
EDIT_SCAN = "edit_scan"


def changed_at(item: dict[str, t.Any]) -> str:
    """When an item last changed, in the bookmark format (never-edited items: created)."""
    return t.cast("str", normalise_timestamp(item.get("updated_at") or item["created_at"]))


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


def _is_edit(item: dict[str, t.Any], since: str, created_before: str | None) -> bool:
    """Changed since the mark, and not new (new items come with the ``created_at`` pass)."""
    if changed_at(item) < since:
        return False
    created = normalise_timestamp(item["created_at"])
    return created_before is None or (created is not None and created < created_before)


class RecentIds:
    """The ids of a project's last few pages: an item the API repeats is emitted once.

    Bounded, so memory stays flat on projects of any size; a repeat from further back is
    emitted again, which a target that upserts on ``feedback_id`` absorbs.
    """

    def __init__(self, size: int = 1000) -> None:
        self._order: collections.deque[str] = collections.deque(maxlen=size)
        self._ids: set[str] = set()

    def is_new(self, item_id: str) -> bool:
        """True the first time an id is seen (within the window); remembers it."""
        if item_id in self._ids:
            return False
        if len(self._order) == self._order.maxlen:
            self._ids.discard(self._order[0])
        self._order.append(item_id)
        self._ids.add(item_id)
        return True


@dataclasses.dataclass
class FeedbackPage:
    """One page of a project's feedback, as handed from the read-ahead feed to the sync."""

    items: list[dict[str, t.Any]]
    #: Set on the page that ends the edit scan: the project's new ``updated_at`` mark.
    updated_at_mark: str | None = None


class FeedbackStream(UsersnapStream):
    """Feedback items, oldest first, incrementally by ``created_at``, one partition per project.

    Read with ``POST /projects/{project_id}/feedbacks/filter`` filtered on
    ``created_at gte <bookmark>`` and ordered by ``created_at`` ascending, so the bookmark
    can advance record by record and a resumed run loses nothing. Items created at the
    bookmark's instant are read again (the target upserts on ``feedback_id``).

    With ``capture_edits`` (the default), each project's read starts with an edit scan:
    see :meth:`_edited_pages`.
    """

    name = "feedback"
    path = "/projects/{project_id}/feedbacks/filter"
    http_method = "POST"
    primary_keys = ("feedback_id",)
    replication_key = "created_at"
    is_sorted = True
    records_key = "feedbacks"
    schema = StreamSchema(SCHEMAS)

    _feed: PageFeed[str, FeedbackPage] | None = None
    _starts: dict[str, str | None]
    _marks: dict[str, str | None]

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
        project_id = (context or {}).get("project_id")
        if project_id is None:  # no projects in scope: the SDK still calls once, with none
            return
        feed = self._page_feed()
        recent = RecentIds()
        try:
            for page in feed.pages(project_id):
                for item in page.items:
                    if recent.is_new(item["feedback_id"]):
                        yield item
                    else:
                        self.logger.info(
                            "Skipped feedback %s of project %s: already read in this run "
                            "(the API repeated it on a later page)",
                            item["feedback_id"],
                            project_id,
                        )
                if page.updated_at_mark is not None:
                    self.get_context_state({"project_id": project_id})[UPDATED_AT_MARK] = (
                        page.updated_at_mark
                    )
                    self.state_manager.is_flushed = False
                self._write_state_message()
        except ProjectNotFoundError as exc:
            self._tap.skip_project(project_id, exc, self.logger)
        except BaseException:
            feed.close()
            raise

    def _page_feed(self) -> PageFeed[str, FeedbackPage]:
        """Created once per run, in this thread, before any worker reads the state."""
        if self._feed is None:
            keys = [partition["project_id"] for partition in self.partitions]
            self._starts = {key: self._start_of({"project_id": key}) for key in keys}
            self._marks = {
                key: self.get_context_state({"project_id": key}).get(UPDATED_AT_MARK)
                for key in keys
            }
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

    def _fetch_pages(self, project_id: str) -> t.Iterator[FeedbackPage]:
        """One project's pages: the edit scan (if on), then new feedback from the bookmark."""
        if self.config.get("capture_edits"):
            yield from self._edited_pages(project_id)
        for items in self._pages({"project_id": project_id}):
            yield FeedbackPage(items)

    def _edited_pages(self, project_id: str) -> t.Iterator[FeedbackPage]:
        """Items edited since the project's ``updated_at`` mark, then the new mark.

        The API cannot filter on ``updated_at`` but can sort by it, newest first: the scan
        reads until it passes the old mark, usually one request. Items created since the
        bookmark are left to the ``created_at`` pass. The new mark is the newest
        ``updated_at`` when the scan began, so an edit made during the run is after it and
        is caught next time. A first run only takes the mark (one item).
        """
        since = self._marks.get(project_id)
        created_before = self._starts.get(project_id)
        context = {"project_id": project_id, EDIT_SCAN: True}
        new_mark = None
        for items in self._pages(context):
            if new_mark is None and items:
                new_mark = changed_at(items[0])
            if since is None:
                break
            yield FeedbackPage([i for i in items if _is_edit(i, since, created_before)])
            if not items or changed_at(items[-1]) < since:
                break
        yield FeedbackPage([], updated_at_mark=new_mark or since)

    def _pages(self, context: Context) -> t.Iterator[list[dict[str, t.Any]]]:
        """Pages through the SDK's request loop (paging, retries, metrics)."""
        page: list[dict[str, t.Any]] = []
        for item in self.request_records(context):
            if item is PAGE_END:
                yield page
                page = []
            else:
                page.append(item)

    def get_url_params(
        self,
        context: Context | None,
        next_page_token: str | None,
    ) -> dict[str, t.Any]:
        """A first run's edit scan needs only the newest item; every other read full pages."""
        params = super().get_url_params(context, next_page_token)
        context = context or {}
        if context.get(EDIT_SCAN) and self._marks.get(context["project_id"]) is None:
            params["limit"] = 1
        return params

    def prepare_request_payload(
        self,
        context: Context | None,
        next_page_token: str | None,
    ) -> dict[str, t.Any]:
        """New feedback oldest first from the bookmark; or, for the edit scan, newest edit first."""
        context = context or {}
        if context.get(EDIT_SCAN):
            return {"order_by": {"order_by_type": "updated_at", "direction": "desc"}}
        body: dict[str, t.Any] = {
            "order_by": {"order_by_type": "created_at", "direction": "asc"},
        }
        project_id = context["project_id"]
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

    def _increment_stream_state(
        self, latest_record: dict[str, t.Any], *, context: Context | None = None
    ) -> None:
        """Edits re-emitted by the edit scan are older than the bookmark: they must not move it.

        Overrides a private SDK hook: the SDK would otherwise take them as a sort error.
        """
        bookmark = self.get_context_state(context).get("replication_key_value")
        if bookmark and latest_record["created_at"] < bookmark:
            return
        super()._increment_stream_state(latest_record, context=context)

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
        except ProjectNotFoundError as exc:
            self._tap.skip_project(project_id, exc, self.logger)
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
