"""The Usersnap streams: one class per stream."""

from __future__ import annotations

import functools
import typing as t
from http import HTTPStatus
from importlib import resources

from singer_sdk import SchemaDirectory, StreamSchema
from typing_extensions import override

from tap_usersnap import schemas
from tap_usersnap.client import UsersnapStream
from tap_usersnap.deletes import PENDING, count_query, find_deletions, prune_partitions
from tap_usersnap.derived import derived_fields
from tap_usersnap.edit_scan import EditWindow, scan_edits
from tap_usersnap.envelope import describe_request, page_items
from tap_usersnap.errors import (
    CursorRejectedError,
    EndpointNotFoundError,
    ProjectNotFoundError,
    RequestRefusedError,
    UsersnapError,
)
from tap_usersnap.pages import FeedbackPage, RecentIds, checked_page
from tap_usersnap.pagination import UsersnapCursorPaginator
from tap_usersnap.prefetch import Failed, Finished, PageFeed
from tap_usersnap.progress import BackfillProgress
from tap_usersnap.project_state import ProjectState, later_of, load_project_states
from tap_usersnap.sdk_private import BookmarksPerPage

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context, Record

SCHEMAS = SchemaDirectory(resources.files(schemas))

#: Context flag of the edit scan's requests.
EDIT_SCAN = "edit_scan"
FULL_TABLE = "FULL_TABLE"


class ProjectsStream(UsersnapStream):
    """Every project the key can see (or those in ``project_ids``): ``GET /projects``."""

    name = "projects"
    path = "/projects"
    primary_keys = ("project_id",)
    replication_key = None
    records_key = "projects"
    id_key = "project_id"
    schema = StreamSchema(SCHEMAS)

    _listing: list[dict[str, t.Any]] | None = None
    _paginator: UsersnapCursorPaginator | None = None

    def listing(self) -> list[dict[str, t.Any]]:
        """The projects in scope, fetched once per run and shared with the other streams."""
        if self._listing is None:
            wanted = self.usersnap.project_ids
            projects = [p for p in self._list_all() if isinstance(p, dict)]
            if wanted:
                projects = [p for p in projects if p.get("project_id") in wanted]
            self._listing = projects
        return self._listing

    def _list_all(self) -> list[dict[str, t.Any]]:
        """Every page of ``GET /projects``.

        The listing documents ``has_more`` but no ``next``: if the API refuses the cursor
        taken from the last project's id, the run goes on with the projects listed so far.
        """
        projects: list[dict[str, t.Any]] = []
        try:
            for project in self.request_records(None):
                projects.append(project)
        except RequestRefusedError as exc:
            msg = (
                f"{exc}: the REST API is not enabled for this workspace's plan (it needs an "
                "Enterprise plan), or this API key may not list projects"
            )
            raise UsersnapError(msg) from exc
        except UsersnapError as exc:
            if not (projects and self._paginator and self._paginator.used_fallback):
                raise
            self.logger.warning(
                "Listing projects stopped after %d: Usersnap refused the next page's cursor "
                "(%s); going on with the projects listed",
                len(projects),
                exc,
            )
        return projects

    @override
    def get_new_paginator(self) -> UsersnapCursorPaginator:
        """The paginator, kept to tell a refused fallback cursor from other failures."""
        self._paginator = super().get_new_paginator()
        return self._paginator

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Emit the shared listing (copies, so emitting never alters it)."""
        if self.captures_deletes:
            self.use_table_version(self.usersnap.table_version)
        for project in self.listing():
            yield dict(project)


class FeedbackStream(BookmarksPerPage, UsersnapStream):
    """Feedback items, oldest first, incrementally by ``created_at``, one partition per project.

    Read with ``POST /projects/{project_id}/feedbacks/filter`` filtered on
    ``created_at gte <bookmark>`` and ordered by ``created_at`` ascending, so a resumed run
    loses nothing. Items created at the bookmark's instant are read again (the target
    upserts on ``feedback_id``). With ``capture_edits`` (the default), each project's read
    starts with an edit scan (:mod:`tap_usersnap.edit_scan`).
    """

    name = "feedback"
    path = "/projects/{project_id}/feedbacks/filter"
    http_method = "POST"
    primary_keys = ("feedback_id",)
    replication_key = "created_at"
    is_sorted = True
    records_key = "feedbacks"
    id_key = "feedback_id"
    schema = StreamSchema(SCHEMAS)

    #: Every project's read progress, set up at the start of the sync.
    projects: dict[str, ProjectState]
    #: This run re-reads every project to apply deletions (see :mod:`tap_usersnap.deletes`).
    reconciling = False

    @property
    @override
    def partitions(self) -> None:
        """None: the SDK reads the stream in one pass; :meth:`get_records` reads projects.

        Projects are read concurrently, so not as SDK partitions, one after another. State
        is still one partition per project (:mod:`tap_usersnap.project_state`).
        """
        return None

    @property
    def full_table(self) -> bool:
        """The catalog asks for FULL_TABLE: read everything, state bookmarks aside."""
        return self.replication_method == FULL_TABLE

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Every project's items, page by page as they arrive; STATE after each page.

        Pages of different projects interleave; each project's come in created_at order.
        Every page is a resume point for its project: its bookmark moves past the page's
        items once they are out. A project Usersnap no longer knows is skipped by name
        (the run then fails at the end); any other failure ends the run.
        """
        self.projects = load_project_states(
            self.stream_state,
            self._project_ids(),
            replication_key=str(self.replication_key),
            start_date=self.config.get("start_date"),
            full_table=self.full_table,
            partition_for=lambda pid: self.get_context_state({"project_id": pid}),
            logger=self.logger,
        )
        self.reconciling = False
        if self.captures_deletes and not self.full_table:
            self._prepare_deletes()
        concurrency = int(self.config["concurrency"])
        feed = PageFeed(list(self.projects), self._fetch_pages, concurrency=concurrency)
        progress = BackfillProgress(self._count_to_read, self.logger)
        recent: dict[str, RecentIds] = {}
        for project_id, page in feed:
            if isinstance(page, Finished | Failed):
                recent.pop(project_id, None)
                progress.done(project_id)
                if isinstance(page, Failed):
                    self._project_failed(project_id, page.error)
                continue
            emitted: list[str] = []
            for item in self._new_items(page, recent.setdefault(project_id, RecentIds())):
                emitted.append(item["created_at"])
                yield item
            self._page_done(page, emitted)
            if not page.edits:
                progress.read(project_id, len(emitted))

    def _prepare_deletes(self) -> None:
        """Count each project; if anything was deleted, read every project again, versioned."""
        reasons = find_deletions(
            self.projects,
            self.stream_state,
            count=self._count_before_bookmark,
            every_project_listed=not self.usersnap.project_ids,
            logger=self.logger,
        )
        if not reasons:
            return
        version = self.usersnap.table_version
        self.logger.warning(
            "Feedback was deleted in Usersnap (%s): reading every project again from "
            "start_date; ACTIVATE_VERSION %d then removes what is gone from the warehouse",
            "; ".join(reasons),
            version,
        )
        start_date = self.config.get("start_date")
        for project in self.projects.values():
            project.restart(start_date)
        self.reconciling = True
        self.use_table_version(version)
        self.stream_state[PENDING] = version
        self.usersnap.state_writer.write_state(self.tap_state)

    def _count_before_bookmark(self, project: ProjectState) -> int:
        """How many of the project's items the API holds created before its bookmark."""
        query = count_query(self.config.get("start_date"), t.cast("str", project.bookmark))
        return self._count(project.project_id, query)

    def _count_to_read(self, project_id: str) -> int | None:
        """How many items the project's read asks for (for progress lines; None if unknown)."""
        start = self.projects[project_id].start
        query = [{"filter_type": "created_at", "operator": "gte", "value": start}] if start else []
        try:
            return self._count(project_id, query)
        except UsersnapError as exc:
            self.logger.info("No total for the progress of project %s: %s", project_id, exc)
            return None

    def _count(self, project_id: str, query: list[dict[str, str]]) -> int:
        url = f"{self.url_base}/projects/{project_id}/feedbacks/filter/count"
        total = self.post_json(url, {"query": query}).get("total_count")
        if not isinstance(total, int):
            msg = f"Usersnap's count of project {project_id} holds no total_count"
            raise UsersnapError(msg)
        return total

    def finish_deletes(self) -> None:
        """After a reconciliation's last record: ACTIVATE_VERSION, then a state without it."""
        if not self.reconciling:
            return
        self.activate_version()
        self.stream_state.pop(PENDING, None)
        prune_partitions(self.stream_state, self.projects)
        self.usersnap.state_writer.write_state(self.tap_state)

    def _project_ids(self) -> list[str]:
        """The projects to read: the ``project_ids`` setting, else every project."""
        return self.usersnap.project_ids or [
            p["project_id"] for p in self._projects_stream.listing()
        ]

    @property
    def _projects_stream(self) -> ProjectsStream:
        return t.cast("ProjectsStream", self.usersnap.streams["projects"])

    def _project_failed(self, project_id: str, error: Exception) -> None:
        if not isinstance(error, ProjectNotFoundError):
            raise error
        self.usersnap.report.skipped_project(project_id, error)

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
                    page.project_id,
                )

    def _page_done(self, page: FeedbackPage, emitted: list[str]) -> None:
        """The page's records are out: move its project's bookmark or mark, write STATE."""
        project = self.projects[page.project_id]
        if not page.edits and emitted:
            project.advance(emitted)
            project.save(str(self.replication_key))
        if page.edit_mark is not None:
            project.set_edit_mark(page.edit_mark)
        self.usersnap.state_writer.write_state(self.tap_state)

    def _fetch_pages(self, project_id: str) -> t.Iterator[FeedbackPage]:
        """One project's pages; read again from its bookmark if a page cursor is refused.

        The API's cursor names the last item read: if that item is deleted while the tap
        pages past it, the next page is refused. Reading again from the bookmark (once)
        loses nothing; the target upserts what is read twice.
        """
        project = self.projects[project_id]
        try:
            yield from self._read_project(project)
        except CursorRejectedError as exc:
            self.logger.warning("%s: reading project %s again from its bookmark", exc, project_id)
            project.start = later_of(project.bookmark, self.config.get("start_date"))
            yield from self._read_project(project)

    def _read_project(self, project: ProjectState) -> t.Iterator[FeedbackPage]:
        """The edit scan (if on), then new feedback from the project's start."""
        project_id = project.project_id
        if self.config.get("capture_edits") and not self.full_table:
            window = (
                None if self.reconciling else EditWindow.of(project, self.config.get("start_date"))
            )
            context = {"project_id": project_id, EDIT_SCAN: window is None}
            yield from scan_edits(project, window, self._pages(context))
        yield from self._pages({"project_id": project_id})

    def _pages(self, context: Context) -> t.Iterator[FeedbackPage]:
        """Checked pages through the SDK's request loop (paging, retries, metrics)."""
        project_id = context["project_id"]
        for raw_items in self.request_records(context):
            yield checked_page(project_id, t.cast("list[t.Any]", raw_items), self.usersnap.report)

    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        """One list per answer, the page's raw items, even when empty.

        The SDK's request loop then hands :meth:`_pages` whole pages, and paging follows
        ``has_more`` alone (an empty page that says ``has_more`` is followed). Entries that
        are not objects stay in: :func:`checked_page` skips them naming their project.
        """
        yield t.cast("dict", list(page_items(response, self.records_key)))

    @override
    def get_url_params(
        self,
        context: Context | None,
        next_page_token: str | None,
    ) -> dict[str, t.Any]:
        """A first edit scan needs only the newest item; every other read full pages."""
        params = super().get_url_params(context, next_page_token)
        if context and context.get(EDIT_SCAN):
            params["limit"] = 1
        return params

    @override
    def prepare_request_payload(
        self,
        context: Context | None,
        next_page_token: str | None,
    ) -> dict[str, t.Any]:
        """New feedback oldest first from the bookmark; or, for the edit scan, newest edit first."""
        context = context or {}
        if EDIT_SCAN in context:
            return {"order_by": {"order_by_type": "updated_at", "direction": "desc"}}
        body: dict[str, t.Any] = {
            "order_by": {"order_by_type": "created_at", "direction": "asc"},
        }
        start = self.projects[context["project_id"]].start
        if start is not None:
            body["query"] = [{"filter_type": "created_at", "operator": "gte", "value": start}]
        return body

    @override
    def post_process(self, row: Record, context: Context | None = None) -> Record | None:
        """Add ``project_name`` and the derived fields."""
        row["project_name"] = self._project_names.get(row["project_id"])
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
    project whose endpoint answers 404, or that has no assignees, emits nothing; one whose
    endpoint is refused (403) is skipped with a warning.
    """

    name = "project_assignees"
    path = "/projects/{api_key}/assignees"
    primary_keys = ("project_id", "user_id")
    replication_key = None
    records_key = "users"
    id_key = "user_id"
    #: Full table has no bookmark: one stream-level state, not an entry per project.
    state_partitioning_keys: t.ClassVar[list[str]] = []
    schema = StreamSchema(SCHEMAS)

    @property
    @override
    def partitions(self) -> list[dict[str, t.Any]]:
        """``{project_id}`` of every project in scope that has an api_key.

        The api_key itself stays out of the context, so the SDK's metrics and logs, which
        print every context, do not repeat it; :meth:`get_url` looks it up.
        """
        return [{"project_id": project_id} for project_id in self._api_keys]

    @functools.cached_property
    def _api_keys(self) -> dict[str, str]:
        projects = t.cast("ProjectsStream", self.usersnap.streams["projects"]).listing()
        api_keys = {}
        for project in projects:
            if project.get("api_key"):
                api_keys[project["project_id"]] = project["api_key"]
            else:
                self.logger.info(
                    "Project %s has no api_key: no assignees to read", project["project_id"]
                )
        return api_keys

    @override
    def get_url(self, context: Context | None) -> str:
        """The endpoint of the context's project, keyed by that project's api_key."""
        project_id = (context or {})["project_id"]
        return super().get_url({"api_key": self._api_keys[project_id]})

    @override
    def get_url_params(
        self,
        context: Context | None,
        next_page_token: str | None,
    ) -> dict[str, t.Any]:
        """No parameters (the spec documents none); ``after`` only if the API ever pages."""
        return {"after": next_page_token} if next_page_token else {}

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """The project's assignees; a 404 or an empty list is logged, not an error."""
        if self.captures_deletes:
            self.use_table_version(self.usersnap.table_version)
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
        except RequestRefusedError as exc:
            self.usersnap.report.refused_endpoint(f"the assignees of project {project_id}", exc)
            return
        except ProjectNotFoundError as exc:
            self.usersnap.report.skipped_project(project_id, exc)
            return
        if count == 0:
            self.logger.info("Project %s has no assignees", project_id)

    @override
    def validate_response(self, response: requests.Response) -> None:
        """A 404 means this project has no assignees endpoint; the rest as for any stream."""
        if response.status_code == HTTPStatus.NOT_FOUND:
            msg = f"Usersnap answered 404 to {describe_request(response)}"
            raise EndpointNotFoundError(msg)
        super().validate_response(response)

    @override
    def post_process(self, row: Record, context: Context | None = None) -> Record | None:
        """Add ``project_id``, the key's other half (the api_key is in the projects stream)."""
        row["project_id"] = (context or {})["project_id"]
        return row
