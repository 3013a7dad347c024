"""The feedback stream: every project's feedback, incrementally, with edits and deletes."""

from __future__ import annotations

import datetime as dt
import functools
import typing as t

from singer_sdk import StreamSchema
from typing_extensions import override

from tap_usersnap.client import UsersnapStream
from tap_usersnap.counts import FeedbackCounts
from tap_usersnap.deletes import Reconciliation
from tap_usersnap.derived import derived_fields
from tap_usersnap.envelope import page_items
from tap_usersnap.errors import PaginationError, ProjectNotFoundError
from tap_usersnap.filters import EDIT_SCAN_BODY, new_feedback_body
from tap_usersnap.mending import body_needs_text_check
from tap_usersnap.pages import FeedbackPage, RawPage, RecentIds
from tap_usersnap.prefetch import Failed, Finished, PageFeed
from tap_usersnap.progress import BackfillProgress
from tap_usersnap.project_reader import EDIT_SCAN, ProjectReader
from tap_usersnap.project_state import ProjectState, load_project_states, saved_partitions
from tap_usersnap.read_bounds import Bounded, PassBounds, future_ceiling
from tap_usersnap.schemas import SCHEMAS
from tap_usersnap.scope import pinned_scope
from tap_usersnap.sdk_private import BookmarksPerPage
from tap_usersnap.timestamps import format_timestamp

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context, Record

FULL_TABLE = "FULL_TABLE"
#: A read is checked against its count once it is this many pages beyond it, and stopped
#: past twice the count plus as many pages: the API's ``has_more`` never ends it.
RUNAWAY_PAGES = 10


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
    #: This run's handling of deletions (see :mod:`tap_usersnap.deletes`).
    reconciliation: Reconciliation
    #: Where the feedback history starts, pinned at the first run (:mod:`tap_usersnap.scope`).
    scope_start: str | None = None
    #: This run's counts (None until the stream syncs).
    _counts: FeedbackCounts | None = None
    #: When this run began, and the latest instant an item's timestamp may name.
    started_at: str
    future_ceiling: str

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.reconciliation = Reconciliation()

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
        now = dt.datetime.now(dt.timezone.utc)
        self.started_at, self.future_ceiling = format_timestamp(now), future_ceiling(now)
        self.scope_start = pinned_scope(self.stream_state, self.config, now=now, logger=self.logger)
        self.projects = load_project_states(
            self.stream_state,
            self._project_ids(),
            replication_key=str(self.replication_key),
            start_date=self.scope_start,
            full_table=self.full_table,
            partition_for=lambda pid: self.get_context_state({"project_id": pid}),
            logger=self.logger,
        )
        counts = self._counts = FeedbackCounts(
            self.post_json,
            url_base=self.url_base,
            start_date=self.scope_start,
            logger=self.logger,
        )
        self.reconciliation = Reconciliation()
        if self.captures_deletes:
            gone, held = self.usersnap.scope_gaps(set(saved_partitions(self.stream_state)))
            self.reconciliation.begin(self, counts, gone=gone, held=held)
        concurrency = int(self.config["concurrency"])
        feed = PageFeed(list(self.projects), ProjectReader(self), concurrency=concurrency)
        progress = BackfillProgress(lambda pid: counts.to_read(self.projects[pid]), self.logger)
        recent: dict[str, RecentIds] = {}
        self._bounds = {
            pid: PassBounds(pid, self.scope_start, project.start, self.future_ceiling)
            for pid, project in self.projects.items()
        }
        for project_id, page in feed:
            if isinstance(page, Finished | Failed):
                recent.pop(project_id, None)
                progress.done(project_id)
                if isinstance(page, Failed):
                    self._project_failed(project_id, page.error)
                else:
                    self._project_finished(project_id)
                continue
            delivered = recent.setdefault(project_id, RecentIds()).fresh(page, self.logger)
            if page.edits:
                yield from delivered
                self._page_done(page, None)
                continue
            bounded = self._bounds[project_id].sort(
                delivered, page.skipped, report=self.usersnap.report, logger=self.logger
            )
            yield from bounded.emit
            self._page_done(page, bounded)
            progress.read(project_id, len(bounded.emit))
            self._check_runaway(self.projects[project_id])

    def finish_deletes(self, held: list[str]) -> None:
        """After the last record of a full read: ACTIVATE_VERSION, unless ``held`` or short."""
        if self.selected and self._counts is not None:
            self.reconciliation.finish(self, self._counts, held)

    @property
    def max_delete_percent(self) -> int:
        """The ``max_delete_percent`` setting."""
        return int(self.config["max_delete_percent"])

    def _project_ids(self) -> list[str]:
        """The projects to read: the ``project_ids`` setting, else every project."""
        return self.usersnap.project_ids or [
            p["project_id"] for p in self.usersnap.projects_listing()
        ]

    def _project_failed(self, project_id: str, error: Exception) -> None:
        if not isinstance(error, ProjectNotFoundError):
            raise error
        self.usersnap.report.skipped_project(project_id, error)

    def _page_done(self, page: FeedbackPage, bounded: Bounded | None) -> None:
        """The page's records are out: move its project's bookmark or mark, write STATE.

        ``bounded`` is None for the edit scan's pages, which never move the bookmark.
        """
        project = self.projects[page.project_id]
        if bounded is not None:
            project.unbookmarked += page.dropped - len(page.skipped) + bounded.unbookmarked
            project.advance(bounded.counted)
            if bounded.counted and self._saves_bookmarks(page.project_id):
                project.save(str(self.replication_key))
        if page.edit_mark is not None:
            project.set_edit_mark(page.edit_mark)
        self.usersnap.state_writer.write_state(self.tap_state)

    def _saves_bookmarks(self, project_id: str) -> bool:
        """Whether a page may move the saved bookmark now.

        Not during a re-read (deletes activate it), nor after pages out of order (the end of
        the project's read saves it).
        """
        return not self.reconciliation.deferred and self._bounds[project_id].ordered

    def _project_finished(self, project_id: str) -> None:
        """A project read to its end: a bookmark held back by disorder is safe now."""
        self.reconciliation.finished.add(project_id)
        project = self.projects[project_id]
        if not self._bounds[project_id].ordered and not self.reconciliation.deferred:
            project.save(str(self.replication_key))
            self.usersnap.state_writer.write_state(self.tap_state)

    def _check_runaway(self, project: ProjectState) -> None:
        """Stop a read that goes on far beyond what the project holds (``has_more`` forever).

        Counted only once a read is long (the count is shared with the progress lines).
        """
        limit_pages = RUNAWAY_PAGES * self.page_size
        if project.received <= limit_pages:
            return
        total = t.cast("FeedbackCounts", self._counts).to_read(project)
        if total is not None and project.received > 2 * total + limit_pages:
            msg = (
                f"Usersnap kept answering has_more for project {project.project_id}: "
                f"{project.received} items read where it counts {total}; stopped (the state "
                "keeps the last bookmark reached, so the next run goes on from there)"
            )
            raise PaginationError(msg)

    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        """One list per answer, the page's raw items, even when empty.

        The SDK's request loop then hands :class:`ProjectReader` whole pages, and paging follows
        ``has_more`` alone (an empty page that says ``has_more`` is followed). Entries that
        are not objects stay in: :func:`checked_page` skips them naming their project.
        """
        items = list(page_items(response, self.records_key))
        yield t.cast("dict", RawPage(items, body_needs_text_check(response.content)))

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
            return EDIT_SCAN_BODY
        return new_feedback_body(self.projects[context["project_id"]].start)

    @override
    def post_process(self, row: Record, context: Context | None = None) -> Record | None:
        """Add ``project_name`` and the derived fields."""
        row["project_name"] = self._project_names.get(row["project_id"])
        row.update(derived_fields(row))
        return row

    @functools.cached_property
    def _project_names(self) -> dict[str | None, str | None]:
        return {p.get("project_id"): p.get("name") for p in self.usersnap.projects_listing()}
