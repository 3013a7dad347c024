"""Reading the projects' pages: each project's in order, and in threads when the API is slow.

:class:`ProjectReader` gives one project's pages, checked: the edit scan (if
``capture_edits``), then new feedback from the project's start, a long read in slices read
at once (:class:`SlicedRead`, cut as :mod:`~tap_usersnap.feedback.slices` decides). If the
API refuses a page cursor (the item it names was deleted meanwhile), the project is read
again from its bookmark, once; the target upserts what is read twice.

:class:`ReadAhead` reads pages in the sync's own thread while the API answers quickly, and
once a page takes over ``SLOW_FETCH_SECONDS`` hands the rest to up to ``concurrency``
threads, one project each: projects interleave, each project's pages keep their order.
Bounded queues between the threads and the one that emits keep memory flat.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import itertools
import logging
import operator
import queue
import threading
import time
import typing as t

from tap_usersnap.feedback.checks import FeedbackPage, checked_page
from tap_usersnap.feedback.edits import EditWindow, scan_edits
from tap_usersnap.feedback.handover import (
    FINISHED,
    POLL_SECONDS,
    Failed,
    Finished,
    hand_over,
    put_unless_stopped,
    quick_switches,
)
from tap_usersnap.feedback.requests import FeedbackQuery, RequestKind
from tap_usersnap.feedback.slices import AHEAD, SLICE_PAGES
from tap_usersnap.http.client import Page
from tap_usersnap.http.errors import CursorRejectedError
from tap_usersnap.records.timestamps import is_canonical, is_timestamp, normalise_timestamp

if t.TYPE_CHECKING:
    from tap_usersnap.feedback.report import RunReport
    from tap_usersnap.feedback.requests import FeedbackApi
    from tap_usersnap.feedback.slices import Slicing
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
        self._api, self._slicing = api, slicing
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
        bounds: list[str] | None = None
        if self._scan_edits:
            window = None if self._rereading else EditWindow.of(project, self._scope_start)
            kind = RequestKind.EDIT_MARK if window is None else RequestKind.EDIT_SCAN
            scanned: t.Iterable[Page] = self._api.pages(FeedbackQuery(kind, project_id))
            if window is None:  # the mark is one one-item request: sent beside the probes
                jobs = [
                    functools.partial(first_page, scanned),
                    functools.partial(self._bounds, project),
                ]
                scanned, bounds = self._api.map(operator.call, jobs)
            yield from scan_edits(
                project,
                window,
                (checked_page(project_id, page, self._report) for page in scanned),
                started=self._started,
                ceiling=self._ceiling,
            )
        bounds = self._bounds(project) if bounds is None else bounds
        if self._slicing and bounds:
            read = SlicedRead(self._api, self._slicing.concurrency)
            pages = read(project_id, project.start, bounds)
        else:
            query = FeedbackQuery(RequestKind.NEW_FEEDBACK, project_id, project.start)
            pages = self._api.pages(query)
        for page in pages:
            yield checked_page(project_id, page, self._report)

    def _bounds(self, project: ProjectState) -> list[str]:
        """Where the project's new-feedback read is cut into slices (none: page by page)."""
        return self._slicing.bounds(project, self._ceiling) if self._slicing else []


def first_page(pages: t.Iterable[Page]) -> list[Page]:
    """The first page of a read, read now (all an edit mark takes)."""
    return list(itertools.islice(pages, 1))


@dataclasses.dataclass(frozen=True)
class SlicedRead:
    """``read(project_id, start, bounds)``: the project's new-feedback pages, slice by slice."""

    api: FeedbackApi
    concurrency: int

    def __call__(self, project_id: str, start: str | None, bounds: list[str]) -> t.Iterator[Page]:
        """Every page of ``[start, ∞)``, slice after slice.

        A slice's pages and its end fit its queue, so its worker moves on at once; how many
        slices are read ahead of the one handed out is bounded (``AHEAD``).
        """
        slices = list(zip([start, *bounds], [*bounds, None], strict=True))
        arrived: list[queue.Queue[Page | Finished | Failed]] = [
            queue.Queue(maxsize=SLICE_PAGES + 1) for _ in slices
        ]
        workers = min(self.concurrency, len(slices))
        ahead = threading.Semaphore(AHEAD * workers)
        stop = threading.Event()
        numbers = itertools.count()
        lock = threading.Lock()

        def work() -> None:
            while not stop.is_set():
                if not ahead.acquire(timeout=POLL_SECONDS):
                    continue
                with lock:
                    number = next(numbers)
                if number >= len(slices):
                    return
                low, high = slices[number]
                query = FeedbackQuery(RequestKind.NEW_FEEDBACK, project_id, low, high)
                floor = low if number else None  # before the start: for the checks to tell
                pages = (
                    Page(within(p.items, floor, high), p.response) for p in self.api.pages(query)
                )
                hand_over(pages, functools.partial(put_unless_stopped, arrived[number], stop=stop))

        with quick_switches():
            for n in range(workers):
                name = f"slice-{project_id[:8]}-{n}"
                threading.Thread(target=work, name=name, daemon=True).start()
            try:
                for slice_pages in arrived:
                    while not isinstance(item := slice_pages.get(), Finished):
                        if isinstance(item, Failed):
                            raise item.error
                        yield item
                    ahead.release()
            finally:
                stop.set()


def within(items: list[t.Any], low: str | None, high: str | None) -> list[t.Any]:
    """The items inside ``[low, high)`` (once each, whatever the API), or unplaceable (checked)."""
    if low is None and high is None:
        return items
    kept = []
    for item in items:
        created = item.get("created_at") if isinstance(item, dict) else None
        if is_canonical(created) or is_timestamp(created):
            created = normalise_timestamp(t.cast("str", created))
            if (low is not None and created < low) or (high is not None and created >= high):
                continue
        kept.append(item)
    return kept


K = t.TypeVar("K", bound=t.Hashable)
P = t.TypeVar("P")

#: A page fetch slower than this (twice in a row) means waiting dominates: read ahead.
SLOW_FETCH_SECONDS = 0.008


class ReadAhead(t.Generic[K, P]):
    """Yields ``(key, page)`` for every page of every key, then ``(key, FINISHED)``.

    A key whose fetching raised yields ``(key, Failed(error))`` last instead, and the other
    keys go on. With a concurrency of 1 no thread is ever started.
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
        with quick_switches():
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
            hand_over(pages or self._fetch(key), functools.partial(self._put, key))

    def _put(self, key: K, item: P | Finished | Failed) -> bool:
        """Wait for room in the queue, unless the reader has stopped meanwhile."""
        return put_unless_stopped(self._arrived, (key, item), self._stop)
