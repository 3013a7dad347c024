"""Reading the projects' pages: each project's in order, several projects at once when slow.

A :class:`ProjectReader` gives one project's pages, checked: first the edit scan (if
``capture_edits``), then new feedback from the project's start. The API's cursor names the
last item read: if that item is deleted while the tap pages past it, the next page is
refused; reading again from the bookmark (once) loses nothing, and the target upserts what
is read twice. It runs in the read-ahead threads, so it only reads.

Left to itself, a read of many projects waits on the network one page at a time.
:class:`ReadAhead` reads pages in the sync's own thread while the API answers quickly
(threads would only add switching cost to a sync that is busy writing records), and once
fetching a page takes longer than ``SLOW_FETCH_SECONDS`` it hands the rest to up to
``concurrency`` worker threads, one project each. Pages of different projects then
interleave, while each project's pages keep their order (one thread reads a project at a
time, from where it stands to its end). A bounded queue between the workers and the reader
keeps memory flat however large the backfill: a worker waits while the reader is behind.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
import typing as t

from tap_usersnap.feedback.checks import FeedbackPage, checked_page
from tap_usersnap.feedback.edits import EditWindow, scan_edits
from tap_usersnap.feedback.handoff import FINISHED, Failed, Finished, put_unless_stopped
from tap_usersnap.feedback.requests import FeedbackQuery, RequestKind
from tap_usersnap.feedback.slices import SlicedRead, slice_bounds, slice_count
from tap_usersnap.http.errors import CursorRejectedError
from tap_usersnap.records.timestamps import is_timestamp, normalise_timestamp

if t.TYPE_CHECKING:
    from tap_usersnap.feedback.report import RunReport
    from tap_usersnap.feedback.requests import FeedbackApi
    from tap_usersnap.feedback.state import ProjectState


class ProjectReader:
    """``reader(project_id)``: that project's pages, checked, in the order they are emitted."""

    def __init__(
        self,
        api: FeedbackApi,
        projects: dict[str, ProjectState],
        *,
        scope_start: str | None,
        scan_edits: bool,
        rereading: bool,
        started: str,
        ceiling: str,
        report: RunReport,
        logger: logging.Logger,
        slicing: Slicing | None = None,
    ) -> None:
        self._api = api
        #: How a long read is cut into slices read at once (None: page by page).
        self._slicing = slicing
        self._projects = projects
        self._scope_start = scope_start
        self._scan_edits = scan_edits
        #: A reconciliation's re-read only takes each edit mark: it re-emits every item.
        self._rereading = rereading
        self._started, self._ceiling = started, ceiling
        self._report = report
        self._logger = logger

    def __call__(self, project_id: str) -> t.Iterator[FeedbackPage]:
        """The project's pages; read again from its bookmark if a page cursor is refused."""
        project = self._projects[project_id]
        try:
            yield from self._read(project)
        except CursorRejectedError as exc:
            self._logger.warning("%s: reading project %s again from its bookmark", exc, project_id)
            project.start_from_bookmark(self._scope_start)
            yield from self._read(project)

    def _read(self, project: ProjectState) -> t.Iterator[FeedbackPage]:
        """The edit scan (if on), then new feedback from the project's start."""
        project_id = project.project_id
        if self._scan_edits:
            window = None if self._rereading else EditWindow.of(project, self._scope_start)
            kind = RequestKind.EDIT_MARK if window is None else RequestKind.EDIT_SCAN
            yield from scan_edits(
                project,
                window,
                self._pages(FeedbackQuery(kind, project_id)),
                started=self._started,
                ceiling=self._ceiling,
            )
        slicing = self._slicing
        bounds = slicing.bounds(project) if slicing else []
        if slicing and bounds:
            read = SlicedRead(self._api, concurrency=slicing.concurrency)
            for page in read(project_id, project.start, bounds):
                yield checked_page(project_id, page, self._report)
            return
        yield from self._pages(FeedbackQuery(RequestKind.NEW_FEEDBACK, project_id, project.start))

    def _pages(self, query: FeedbackQuery) -> t.Iterator[FeedbackPage]:
        for page in self._api.pages(query):
            yield checked_page(query.project_id, page, self._report)


class Slicing:
    """When a project's new-feedback read is cut into slices, and where."""

    def __init__(
        self,
        api: FeedbackApi,
        total: t.Callable[[ProjectState], int | None],
        *,
        page_size: int,
        concurrency: int,
    ) -> None:
        self._api = api
        #: The items the read asks for, if known (the count of a full read).
        self._total = total
        self._page_size = page_size
        self.concurrency = concurrency

    def bounds(self, project: ProjectState) -> list[str]:
        """The inner bounds of the project's slices; none: read it page by page.

        Even in time between the read's start (or the oldest item) and the newest item.
        """
        total = self._total(project)
        count = slice_count(total or 0, self._page_size)
        if self.concurrency < 2 or count < 2:  # noqa: PLR2004 - nothing to overlap
            return []
        pid = project.project_id
        start = project.start or self._first(FeedbackQuery(RequestKind.OLDEST, pid, project.start))
        end = self._first(FeedbackQuery(RequestKind.NEWEST, pid, project.start))
        return slice_bounds(start, end, count) if start and end else []

    def _first(self, query: FeedbackQuery) -> str | None:
        """When the one item a one-item request answers was created (None: no item)."""
        pages = self._api.pages(query)
        try:
            first = next(pages, None)
        finally:
            pages.close()  # type: ignore[attr-defined]
        created = first.items[0].get("created_at") if first and first.items else None
        return (
            normalise_timestamp(created)
            if isinstance(created, str) and is_timestamp(created)
            else None
        )


K = t.TypeVar("K", bound=t.Hashable)
P = t.TypeVar("P")

#: A page fetch slower than this (twice in a row) means waiting dominates: read ahead.
SLOW_FETCH_SECONDS = 0.008


class ReadAhead(t.Generic[K, P]):
    """Yields ``(key, page)`` for every page of every key, then ``(key, FINISHED)``.

    A key whose fetching raised yields ``(key, Failed(error))`` last instead, and the other
    keys go on: the reader decides whether that ends the run. With a concurrency of 1 no
    thread is ever started.
    """

    def __init__(
        self,
        keys: t.Sequence[K],
        fetch: t.Callable[[K], t.Iterator[P]],
        *,
        concurrency: int,
        depth: int = 2,
    ) -> None:
        self._fetch = fetch
        self._concurrency = max(1, min(concurrency, len(keys)))
        #: Keys still to read, with their pages iterator once reading has begun.
        self._jobs: collections.deque[tuple[K, t.Iterator[P] | None]] = collections.deque(
            (key, None) for key in keys
        )
        self._arrived: queue.Queue[tuple[K, P | Finished | Failed]] = queue.Queue(
            maxsize=depth * self._concurrency
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._recent_fetches: collections.deque[float] = collections.deque(maxlen=2)

    def __iter__(self) -> t.Generator[tuple[K, P | Finished | Failed], None, None]:
        """Every key's pages, each key's in order."""
        while self._jobs:
            key, pages = self._jobs.popleft()
            pages = iter(self._fetch(key)) if pages is None else pages
            try:
                while True:
                    started = time.perf_counter()
                    page = next(pages)
                    self._recent_fetches.append(time.perf_counter() - started)
                    yield key, page
                    if self._waiting_dominates():
                        self._jobs.appendleft((key, pages))
                        yield from self._read_ahead()
                        return
            except StopIteration:
                yield key, FINISHED
            except Exception as error:
                yield key, Failed(error)

    def _waiting_dominates(self) -> bool:
        return (
            self._concurrency > 1
            and len(self._recent_fetches) == self._recent_fetches.maxlen
            and min(self._recent_fetches) > SLOW_FETCH_SECONDS
        )

    def _read_ahead(self) -> t.Iterator[tuple[K, P | Finished | Failed]]:
        """The remaining keys, read by worker threads; stops them when the reader stops."""
        remaining = len(self._jobs)
        for n in range(min(self._concurrency, remaining)):
            threading.Thread(target=self._work, name=f"page-feed-{n}", daemon=True).start()
        try:
            while remaining:
                key, item = self._arrived.get()
                if isinstance(item, Finished | Failed):
                    remaining -= 1
                yield key, item
        finally:
            self._stop.set()

    def _work(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if not self._jobs:
                    return
                key, pages = self._jobs.popleft()
            try:
                for page in self._fetch(key) if pages is None else pages:
                    if not self._put(key, page):
                        return
            except Exception as error:
                self._put(key, Failed(error))
            else:
                self._put(key, FINISHED)

    def _put(self, key: K, item: P | Finished | Failed) -> bool:
        """Wait for room in the queue, unless the reader has stopped meanwhile."""
        return put_unless_stopped(self._arrived, (key, item), self._stop)
