"""The incremental engine: every project's feedback in, records out, a safe STATE after each page.

A run pins its scope (:mod:`~tap_usersnap.feedback.scope`), loads each project's progress
from state (:mod:`~tap_usersnap.feedback.state`), decides with the reconciliation whether
this is an incremental run or a full read, then reads every project
(:mod:`~tap_usersnap.feedback.reader`), checks each page
(:mod:`~tap_usersnap.feedback.checks`) and hands the records out. Pages of different
projects interleave; each project's come in ``created_at`` order. Every page is a resume
point for its project: its bookmark moves past the page's items once they are out. A project
Usersnap refuses (403, 404) or no longer knows (SITE_NOT_FOUND) is skipped by name (the run
then fails at the end, the project's rows stay); any other failure ends the run.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import typing as t

from tap_usersnap.feedback.checks import Bounded, FeedbackPage, PassBounds, future_ceiling
from tap_usersnap.feedback.handover import Failed, Finished
from tap_usersnap.feedback.progress import BackfillProgress
from tap_usersnap.feedback.reader import ProjectReader, ReadAhead
from tap_usersnap.feedback.reconciliation import Reconciliation
from tap_usersnap.feedback.requests import FeedbackCounts
from tap_usersnap.feedback.scope import pinned_scope
from tap_usersnap.feedback.slices import Slicing
from tap_usersnap.feedback.state import (
    REPLICATION_KEY,
    ProjectState,
    load_project_states,
    saved_partitions,
)
from tap_usersnap.http.errors import (
    EndpointNotFoundError,
    PaginationError,
    ProjectNotFoundError,
    RequestRefusedError,
)
from tap_usersnap.records.derived import derived_fields
from tap_usersnap.records.timestamps import format_timestamp

if t.TYPE_CHECKING:
    from tap_usersnap.feedback.reconciliation import StreamOutput
    from tap_usersnap.feedback.report import RunReport
    from tap_usersnap.feedback.requests import FeedbackApi
    from tap_usersnap.settings import Settings

#: What a project's own requests may fail with and the run still go on without it.
REFUSED_PROJECT = (ProjectNotFoundError, EndpointNotFoundError, RequestRefusedError)
#: A read is checked against its count once it is this many pages beyond it, and stopped
#: past twice the count plus as many pages: the API's ``has_more`` never ends it.
RUNAWAY_PAGES = 10


class FeedbackSync:
    """One run of the feedback stream, given what it reads, where it writes and its settings."""

    def __init__(
        self,
        api: FeedbackApi,
        output: StreamOutput,
        *,
        settings: Settings,
        state: dict[str, t.Any],
        partition_for: t.Callable[[str], dict[str, t.Any]],
        full_table: bool,
        project_ids: list[str],
        project_names: t.Mapping[str | None, str | None],
        scope_gaps: t.Callable[[set[str]], tuple[list[str], list[str]]],
        table_version: int,
        report: RunReport,
        logger: logging.Logger,
    ) -> None:
        self._api, self._output, self._settings = api, output, settings
        self._state, self._partition_for, self._full_table = state, partition_for, full_table
        #: The projects to read (``project_ids``, else every project listed), and their names.
        self._project_ids, self._names = project_ids, project_names
        self._scope_gaps = scope_gaps
        self._table_version = table_version
        self._report, self._logger = report, logger
        self.projects: dict[str, ProjectState] = {}
        self.counts = FeedbackCounts(api.count, scope_start=None, logger=logger)
        self.reconciliation = self._reconciliation()
        self._bounds: dict[str, PassBounds] = {}

    def records(self) -> t.Iterator[dict[str, t.Any]]:
        """Every project's records, page by page as they arrive; STATE after each page."""
        now = dt.datetime.now(dt.timezone.utc)
        started, ceiling = format_timestamp(now), future_ceiling(now)
        settings, logger = self._settings, self._logger
        scope_start = pinned_scope(self._state, settings, now=now, logger=logger)
        projects = self.projects = load_project_states(
            self._state,
            self._project_ids,
            replication_key=REPLICATION_KEY,
            start_date=scope_start,
            full_table=self._full_table,
            partition_for=self._partition_for,
            logger=logger,
        )
        counts = self.counts = FeedbackCounts(
            self._api.count, scope_start=scope_start, logger=logger, parallel=self._api.map
        )
        reconciliation = self.reconciliation = self._reconciliation()
        if settings.capture_deletes:
            gone, held = self._scope_gaps(set(saved_partitions(self._state)))
            reconciliation.begin(
                self._state,
                projects,
                now=self._table_version,
                full_table=self._full_table,
                scope_start=scope_start,
                gone=gone,
                held=held,
            )
        reader = ProjectReader(
            self._api,
            projects,
            scope_start=scope_start,
            scan_edits=settings.capture_edits and not self._full_table,
            rereading=reconciliation.deferred,
            started=started,
            ceiling=ceiling,
            report=self._report,
            logger=logger,
            slicing=Slicing(
                self._api,
                counts.known,
                page_size=settings.page_size,
                concurrency=settings.concurrency,
                projects=len(projects),
                logger=logger,
            ),
        )
        progress = BackfillProgress(lambda pid: counts.to_read(projects[pid]), logger)
        self._bounds = {
            pid: PassBounds(pid, scope_start, project.start, ceiling)
            for pid, project in projects.items()
        }
        recent: dict[str, RecentIds] = {}
        for project_id, page in ReadAhead(list(projects), reader, concurrency=settings.concurrency):
            if isinstance(page, Finished | Failed):
                recent.pop(project_id, None)
                progress.done(project_id)
                if isinstance(page, Failed):
                    self._project_failed(project_id, page.error)
                else:
                    self._project_finished(project_id)
                continue
            delivered = recent.setdefault(project_id, RecentIds()).fresh(page, logger)
            if page.edits:
                yield from with_names(delivered, self._names)
                self._page_done(page, None)
                continue
            bounded = self._bounds[project_id].sort(
                delivered, page.skipped, report=self._report, logger=logger
            )
            yield from with_names(bounded.emit, self._names)
            self._page_done(page, bounded)
            progress.read(project_id, len(bounded.emit))
            check_runaway(projects[project_id], counts, settings.page_size)

    def finish(self, held: list[str]) -> None:
        """After the last record of a full read: ACTIVATE_VERSION, unless ``held`` or short."""
        self.reconciliation.finish(held)

    def _reconciliation(self) -> Reconciliation:
        return Reconciliation(
            self._output,
            self.counts,
            report=self._report,
            logger=self._logger,
            max_delete_percent=self._settings.max_delete_percent,
            sharded=bool(self._settings.project_ids),
        )

    def _project_failed(self, project_id: str, error: Exception) -> None:
        """A project Usersnap refuses (403, 404) or does not know is skipped; else the run ends."""
        if not isinstance(
            error, ProjectNotFoundError | EndpointNotFoundError | RequestRefusedError
        ):
            raise error
        self._report.skipped_project(project_id, error)

    def _page_done(self, page: FeedbackPage, bounded: Bounded | None) -> None:
        """The page's records are out: move its project's bookmark or mark, write STATE.

        ``bounded`` is None for the edit scan's pages, which never move the bookmark.
        """
        project = self.projects[page.project_id]
        if bounded is not None:
            project.unbookmarked += page.dropped - len(page.skipped) + bounded.unbookmarked
            project.advance(bounded.counted)
            if bounded.counted and self._saves_bookmarks(page.project_id):
                project.save(REPLICATION_KEY)
        if page.edit_mark is not None:
            project.set_edit_mark(page.edit_mark)
        self._output.write_state()

    def _saves_bookmarks(self, project_id: str) -> bool:
        """Whether a page may move the saved bookmark now.

        Not during a re-read (deletes activate it), nor after pages out of order (the end of
        the project's read saves it).
        """
        return not self.reconciliation.deferred and self._bounds[project_id].ordered

    def _project_finished(self, project_id: str) -> None:
        """A project read to its end: a bookmark held back by disorder is safe now."""
        self.reconciliation.finished.add(project_id)
        if not self._bounds[project_id].ordered and not self.reconciliation.deferred:
            self.projects[project_id].save(REPLICATION_KEY)
            self._output.write_state()


def check_runaway(project: ProjectState, counts: FeedbackCounts, page_size: int) -> None:
    """Stop a read that goes on far beyond what the project holds (``has_more`` forever).

    Counted only once a read is long (the count is shared with the progress lines).
    """
    limit_pages = RUNAWAY_PAGES * page_size
    if project.received <= limit_pages:
        return
    total = counts.to_read(project)
    if total is not None and project.received > 2 * total + limit_pages:
        msg = (
            f"Usersnap kept answering has_more for project {project.project_id}: "
            f"{project.received} items read where it counts {total}; stopped (the state "
            "keeps the last bookmark reached, so the next run goes on from there)"
        )
        raise PaginationError(msg)


def with_names(
    items: list[dict[str, t.Any]], names: t.Mapping[str | None, str | None]
) -> list[dict[str, t.Any]]:
    """The records: each item with its ``project_name`` and the derived fields."""
    for item in items:
        item["project_name"] = names.get(item["project_id"])
        item.update(derived_fields(item))
    return items


class RecentIds:
    """The ids of a project's last few pages: an item the API repeats is emitted once.

    Bounded, so memory stays flat on projects of any size; a repeat from further back is
    emitted again, which a target that upserts on ``feedback_id`` absorbs.
    """

    def __init__(self, size: int = 1000) -> None:
        self._order: collections.deque[str] = collections.deque(maxlen=size)
        self._ids: set[str] = set()

    def fresh(self, page: FeedbackPage, logger: logging.Logger) -> list[dict[str, t.Any]]:
        """The page's items, less any the API already gave in one of the last pages."""
        fresh = [item for item in page.items if self.is_new(item["feedback_id"])]
        if len(fresh) < len(page.items):
            for item in page.items:
                if not any(item is kept for kept in fresh):
                    logger.info(
                        "Skipped feedback %s of project %s: already read in this run (the API "
                        "repeated it on a later page)",
                        item["feedback_id"],
                        page.project_id,
                    )
        return fresh

    def is_new(self, item_id: str) -> bool:
        """True the first time an id is seen (within the window); remembers it."""
        if item_id in self._ids:
            return False
        if len(self._order) == self._order.maxlen:
            self._ids.discard(self._order[0])
        self._order.append(item_id)
        self._ids.add(item_id)
        return True
