"""The Usersnap streams: one class per stream."""

from __future__ import annotations

import collections
import dataclasses
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
from tap_usersnap.prefetch import Failed, Finished, PageFeed
from tap_usersnap.timestamps import (
    changed_at,
    format_timestamp,
    normalise_timestamp,
    parse_timestamp,
)

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context, Record

SCHEMAS = SchemaDirectory(resources.files(schemas))

#: Marks the end of a page in the record loop (an object no API item can be).
PAGE_END: dict[str, t.Any] = {}
#: Partition state key of the edit scan's high-water mark (newest ``updated_at`` seen).
UPDATED_AT_MARK = "updated_at_mark"
#: Context flag of the edit scan's requests.
EDIT_SCAN = "edit_scan"


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


def _is_edit(item: dict[str, t.Any], since: str, window: tuple[str | None, str]) -> bool:
    """Changed since the mark, and created inside what earlier runs already loaded.

    ``window`` is ``(start_date or None, bookmark)``: items created at or after the
    bookmark come with the ``created_at`` pass, items before ``start_date`` were never
    wanted.
    """
    if changed_at(item) < since:
        return False
    created = normalise_timestamp(item["created_at"]) or ""
    lower, bookmark = window
    return (lower is None or created >= lower) and created < bookmark


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
    #: Items re-emitted by the edit scan: they must not move the ``created_at`` bookmark.
    edits: bool = False


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

    _starts: dict[str, str | None]
    _edit_windows: dict[str, tuple[str | None, str] | None]
    _marks: dict[str, str | None]
    #: The project of the page being emitted, and whether it holds re-emitted edits.
    _emitting: tuple[str, bool] = ("", False)
    _partition_states: dict[str, dict[str, t.Any]]

    @property
    def partitions(self) -> None:
        """None: the SDK reads the stream in one pass; :meth:`get_records` reads projects.

        Projects are read concurrently, so not as SDK partitions, one after another. State
        is still one partition per project (see :meth:`_increment_stream_state`).
        """
        return None

    def project_ids(self) -> list[str]:
        """The projects to read: the ``project_ids`` setting, else every project."""
        configured = self.config.get("project_ids")
        if configured:
            return list(configured)
        return [p["project_id"] for p in self._projects_stream.listing()]

    @property
    def _projects_stream(self) -> ProjectsStream:
        return t.cast("ProjectsStream", self._tap.streams["projects"])

    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Every project's items, page by page as they arrive; STATE after each page.

        Pages of different projects interleave; each project's come in created_at order.
        Every page is a resume point for its project: its bookmark has advanced past the
        page's items. A project Usersnap no longer knows is skipped by name (the run then
        fails at the end); any other failure ends the run.
        """
        project_ids = self.project_ids()
        self._starts, self._edit_windows, self._marks = {}, {}, {}
        self._partition_states = {}
        lower = self._start_of(None)  # edits are only re-emitted from start_date on
        for pid in project_ids:  # read once, here, before any worker thread needs them
            state = self._saved_state(pid)
            bookmark = None
            if state.get("replication_key") == self.replication_key:
                # Normalised, as bookmarks are compared as strings from here on.
                bookmark = normalise_timestamp(state.get("replication_key_value"))
                state["replication_key_value"] = bookmark
            self._starts[pid] = self._start_of(bookmark)
            self._edit_windows[pid] = (lower, bookmark) if bookmark else None
            self._marks[pid] = state.get(UPDATED_AT_MARK)
        concurrency = int(self.config["concurrency"])
        feed = PageFeed(project_ids, self._fetch_pages, concurrency=concurrency)
        recent: dict[str, RecentIds] = {}
        for project_id, page in feed:
            if isinstance(page, Finished):
                recent.pop(project_id, None)
            elif isinstance(page, Failed):
                recent.pop(project_id, None)
                if not isinstance(page.error, ProjectNotFoundError):
                    raise page.error
                self._tap.skip_project(project_id, page.error, self.logger)
            else:
                self._emitting = (project_id, page.edits)
                yield from self._new_items(page, recent.setdefault(project_id, RecentIds()))
                self._page_done(project_id, page)

    def _partition_state(self, project_id: str) -> dict[str, t.Any]:
        """A project's writable partition state (created on first use), looked up once."""
        state = self._partition_states.get(project_id)
        if state is None:
            state = self.get_context_state({"project_id": project_id})
            self._partition_states[project_id] = state
        return state

    def _saved_state(self, project_id: str) -> dict[str, t.Any]:
        """A project's partition state as given, without adding an empty one if none."""
        for partition in self.stream_state.get("partitions") or []:
            if partition.get("context") == {"project_id": project_id}:
                return t.cast("dict[str, t.Any]", partition)
        return {}

    def _new_items(self, page: FeedbackPage, recent: RecentIds) -> t.Iterator[dict[str, t.Any]]:
        """The page's items, less any the API already gave in one of the last pages."""
        for item in page.items:
            if recent.is_new(item["feedback_id"]):
                yield item
            else:
                self.logger.info(
                    "Skipped feedback %s of project %s: already read in this run (the API "
                    "repeated it on a later page)",
                    item["feedback_id"],
                    item.get("project_id"),
                )

    def _page_done(self, project_id: str, page: FeedbackPage) -> None:
        """Keep the edit scan's new mark, then write STATE: the page is a resume point."""
        if page.updated_at_mark is not None:
            self._partition_state(project_id)[UPDATED_AT_MARK] = page.updated_at_mark
            self.state_manager.is_flushed = False
        self._write_state_message()

    def _start_of(self, bookmark: str | None) -> str | None:
        """Where a project's read starts: its bookmark or ``start_date``, the later one."""
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
        reads until it passes the old mark, usually one request. Only items earlier runs
        loaded are re-emitted (created before the bookmark); new ones come with the
        ``created_at`` pass. The new mark is the newest ``updated_at`` when the scan began,
        so an edit made during the run is after it and is caught next time. A project with
        no mark or no bookmark yet only takes the mark (one item).
        """
        criteria = self._edit_criteria(project_id)
        context = {"project_id": project_id, EDIT_SCAN: True}
        new_mark = None
        for items in self._pages(context):
            if new_mark is None and items:
                new_mark = changed_at(items[0])
            if criteria is None:
                break
            since, window = criteria
            yield FeedbackPage([i for i in items if _is_edit(i, since, window)], edits=True)
            if not items or changed_at(items[-1]) < since:
                break
        yield FeedbackPage([], updated_at_mark=new_mark or self._marks.get(project_id))

    def _pages(self, context: Context) -> t.Iterator[list[dict[str, t.Any]]]:
        """Pages through the SDK's request loop (paging, retries, metrics)."""
        page: list[dict[str, t.Any]] = []
        for item in self.request_records(context):
            if item is PAGE_END:
                yield page
                page = []
            else:
                item["project_id"] = item.get("project_id") or context["project_id"]
                page.append(item)

    def get_url_params(
        self,
        context: Context | None,
        next_page_token: str | None,
    ) -> dict[str, t.Any]:
        """A first run's edit scan needs only the newest item; every other read full pages."""
        params = super().get_url_params(context, next_page_token)
        if context and context.get(EDIT_SCAN) and not self._edit_criteria(context["project_id"]):
            params["limit"] = 1
        return params

    def _edit_criteria(self, project_id: str) -> tuple[str, tuple[str | None, str]] | None:
        """The mark and created_at window to look for edits in; None: only take the mark.

        A project with no mark or no bookmark yet has no edits to re-emit.
        """
        since, window = self._marks.get(project_id), self._edit_windows.get(project_id)
        return (since, window) if since is not None and window is not None else None

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
        start = self._starts.get(context["project_id"])
        if start is not None:
            body["query"] = [{"filter_type": "created_at", "operator": "gte", "value": start}]
        return body

    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        """A page's items, then :data:`PAGE_END`, so pages survive the SDK's record loop."""
        yield from super().parse_response(response)
        yield PAGE_END

    def _increment_stream_state(
        self,
        latest_record: dict[str, t.Any],
        *,
        context: Context | None = None,
    ) -> None:
        """Advance the bookmark of the record's own project (one state partition each).

        Overrides a private SDK hook: the SDK reads this stream in one pass (see
        :attr:`partitions`) and would keep one bookmark for all projects. Records come in
        created_at order per project, so the newest value is the bookmark, as the SDK does
        for sorted streams. Edits re-emitted by the edit scan, and items the API gives out
        of order, leave it be.
        """
        project_id, edits = self._emitting  # the record may have lost deselected fields
        if edits:
            return
        state = self._partition_state(project_id)
        value = latest_record["created_at"]
        bookmark = state.get("replication_key_value")
        if bookmark and value < bookmark:
            return  # an item the API gave out of order (or repeated): sent, bookmark kept
        state["replication_key"] = self.replication_key
        state["replication_key_value"] = value

    def post_process(self, row: Record, context: Context | None = None) -> Record | None:
        """Add ``project_name`` and the derived fields; normalise timestamps for bookmarks."""
        project_id = row["project_id"]
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
