"""Where a long read of one project is cut into ``created_at`` slices, read at once.

A project's pages come one after another (each page's cursor is in the answer before it),
so a long read waits a latency per page. Cut into slices ``[b0, b1), [b1, b2), …,
[bn, ∞)``, up to ``concurrency`` of them are read at once, each by its own cursor, and their
pages handed out in slice order (:class:`~tap_usersnap.feedback.reader.SlicedRead`): the
engine sees the pages a single read would give, oldest first, so every STATE is still a
safe resume point and the bookmark never claims a range not delivered. The last slice is
open-ended, so items created during the read land in it.

A read is sliced when its count is known (a full read counts every project first) and long
enough: cut evenly in time between its start (or the oldest item) and the newest item,
about :data:`SLICE_PAGES` pages a slice. At most :data:`AHEAD` x ``concurrency`` slices are
read ahead of the one handed out, so about that many slices' pages are in memory at once,
and a run killed mid-read reads at most that many again.
"""

from __future__ import annotations

import logging
import math
import typing as t

from tap_usersnap.feedback.requests import FeedbackQuery, RequestKind
from tap_usersnap.http.errors import UsersnapError, result_or_failure
from tap_usersnap.records.timestamps import (
    format_timestamp,
    is_timestamp,
    normalise_timestamp,
    parse_timestamp,
)

if t.TYPE_CHECKING:
    from tap_usersnap.feedback.requests import FeedbackApi
    from tap_usersnap.feedback.state import ProjectState

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
    # Whole seconds: an API comparing at a coarser precision still splits where the tap does.
    bounds = [
        format_timestamp((low + step * number).replace(microsecond=0))
        for number in range(1, slices)
    ]
    return sorted({b for b in bounds if start < b < end})


def slice_count(total: int, page_size: int) -> int:
    """How many slices a read of ``total`` items takes (1: read it page by page)."""
    if total < MIN_SLICED_PAGES * page_size:
        return 1
    return min(math.ceil(total / (SLICE_PAGES * page_size)), MAX_SLICES)


class Slicing:
    """When a project's new-feedback read is cut into slices, and where."""

    def __init__(
        self,
        api: FeedbackApi,
        total: t.Callable[[ProjectState], int | None],
        *,
        page_size: int,
        concurrency: int,
        projects: int,
        logger: logging.Logger,
    ) -> None:
        self._api = api
        self._logger = logger
        #: The items the read asks for, if known (the count of a full read).
        self._total = total
        self._page_size = page_size
        #: Slices of one project read at once: ``concurrency`` shared by the projects read
        #: at once, so threads (and pages in memory) stay within it whatever the projects.
        self.concurrency = concurrency // max(1, min(concurrency, projects))

    def bounds(self, project: ProjectState, ceiling: str) -> list[str]:
        """The inner bounds of the project's slices; none: read it page by page.

        Even in time between the read's start (or the oldest item) and the newest item, never
        past ``ceiling`` (an item dated in the future must not spread the slices). Slicing is
        only a speed-up: if the one-item requests (sent at once) fail, it is read page by page.
        """
        total = self._total(project)
        count = slice_count(total or 0, self._page_size)
        if self.concurrency < 2 or count < 2:  # noqa: PLR2004 - nothing to overlap
            return []
        pid = project.project_id

        def ends() -> list[str | None]:
            newest = FeedbackQuery(RequestKind.NEWEST, pid, project.start)
            if project.start:
                return [project.start, self._first(newest)]
            return self._api.map(self._first, [FeedbackQuery(RequestKind.OLDEST, pid), newest])

        found = result_or_failure(ends)
        if isinstance(found, UsersnapError):
            self._logger.info("Project %s is read page by page (%s)", pid, found)
            return []
        start, end = found
        return slice_bounds(start, min(end, ceiling), count) if start and end else []

    def _first(self, query: FeedbackQuery) -> str | None:
        """When the one item a one-item request answers was created (None: none usable)."""
        pages = self._api.pages(query)
        try:
            first = next(pages, None)
        finally:
            pages.close()  # type: ignore[attr-defined]
        item = first.items[0] if first and first.items else None
        created = item.get("created_at") if isinstance(item, dict) else None
        return normalise_timestamp(created) if is_timestamp(created) else None
