"""A long read of one project in ``created_at`` slices, read at once, handed out in order.

A project's pages come one after another (each page's cursor is in the answer before it),
so a long read waits a latency per page. Split into slices ``[b0, b1), [b1, b2), …,
[bn, ∞)`` on ``created_at``, up to ``concurrency`` slices are read at once, each by its own
cursor, and their pages are handed out in slice order: the engine sees the pages a single
read would give, oldest first, so every STATE is still a safe resume point and the
bookmark never claims a range not delivered. The last slice is open-ended, so items created
during the read land in it. Each slice keeps only the items inside its bounds: were the API
to ignore the filter, every item would still be handed out once, by its own slice.

Slices are cut by time, evenly between the read's start (or the oldest item) and the newest
item, about :data:`SLICE_PAGES` pages each (from the project's count). At most
:data:`AHEAD` x ``concurrency`` slices are read ahead of the one handed out, so at most about
that many slices' pages are in memory at once, and a run killed mid-read reads at most that
many again.
"""

from __future__ import annotations

import itertools
import math
import queue
import threading
import typing as t

from tap_usersnap.feedback.handoff import (
    FINISHED,
    POLL_SECONDS,
    Failed,
    Finished,
    put_unless_stopped,
)
from tap_usersnap.feedback.requests import FeedbackQuery, RequestKind
from tap_usersnap.http.client import Page
from tap_usersnap.records.timestamps import (
    format_timestamp,
    is_canonical,
    is_timestamp,
    normalise_timestamp,
    parse_timestamp,
)

if t.TYPE_CHECKING:
    from tap_usersnap.feedback.requests import FeedbackApi

#: Pages a slice is cut to hold, about.
SLICE_PAGES = 4
#: Slices read ahead of the one handed out, at most, per worker.
AHEAD = 2
#: A read expected to be shorter than this many pages is read page by page.
MIN_SLICED_PAGES = 3 * SLICE_PAGES
#: The most slices of one read.
MAX_SLICES = 1000


def slice_bounds(start: str, end: str, slices: int) -> list[str]:
    """The inner bounds of ``slices`` even slices of ``[start, end)``: increasing, distinct."""
    low, high = parse_timestamp(start), parse_timestamp(end)
    if slices < 2 or high <= low:  # noqa: PLR2004 - one slice has no inner bound
        return []
    step = (high - low) / slices
    bounds = [format_timestamp(low + step * number) for number in range(1, slices)]
    return [b for b, before in zip(bounds, [start, *bounds], strict=False) if b > before]


def slice_count(total: int, page_size: int) -> int:
    """How many slices a read of ``total`` items takes (1: read it page by page)."""
    if total < MIN_SLICED_PAGES * page_size:
        return 1
    return min(math.ceil(total / (SLICE_PAGES * page_size)), MAX_SLICES)


class SlicedRead:
    """``read(project_id, start, bounds)``: the project's new-feedback pages, slice by slice."""

    def __init__(self, api: FeedbackApi, *, concurrency: int) -> None:
        self._api = api
        self._concurrency = concurrency

    def __call__(self, project_id: str, start: str | None, bounds: list[str]) -> t.Iterator[Page]:
        """Every page of ``[start, ∞)``, in ``created_at`` order of the slices."""
        slices = list(zip([start, *bounds], [*bounds, None], strict=True))
        # A slice's pages and its end fit its queue, so a worker moves on to the next slice
        # at once; how many slices may be read ahead of the one handed out is bounded.
        arrived: list[queue.Queue[Page | Finished | Failed]] = [
            queue.Queue(maxsize=SLICE_PAGES + 1) for _ in slices
        ]
        workers = min(self._concurrency, len(slices))
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
                # The first slice's items from before the start go on to the page's checks,
                # as in a read page by page (emitted again, not counted, and told).
                floor = low if number else None
                try:
                    for page in self._api.pages(query):
                        kept = Page(within(page.items, floor, high), page.response)
                        if not put_unless_stopped(arrived[number], kept, stop):
                            return
                except Exception as error:
                    put_unless_stopped(arrived[number], Failed(error), stop)
                else:
                    put_unless_stopped(arrived[number], FINISHED, stop)

        for n in range(workers):
            threading.Thread(target=work, name=f"slice-{project_id[:8]}-{n}", daemon=True).start()
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
    """The items created inside ``[low, high)``; one without a usable ``created_at`` stays.

    Each is in exactly one slice, so it is handed out once even by an API that ignored the
    filter; one that cannot be placed is for the page's checks to skip and report.
    """
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
