"""The edit scan: find feedback edited since the last run, so the warehouse follows edits.

The API cannot filter on ``updated_at`` but can sort by it, newest first: the scan reads
until it passes the project's edit mark, usually one request. Only items earlier runs loaded
are re-emitted (created inside ``[start_date, bookmark)``); newer ones come with the
``created_at`` pass. The new mark is the newest ``updated_at`` when the scan began, so an
edit made during the run is after it and is caught next time. A project with no mark or no
bookmark yet only takes the mark (a one-item request). An ``updated_at`` in the future
(beyond a few minutes of clock skew) never becomes the mark, or later edits would be missed:
the newest edit that is not is taken, or, for a first scan, the run's start.
"""

from __future__ import annotations

import dataclasses
import typing as t

from tap_usersnap.feedback.checks import FeedbackPage
from tap_usersnap.records.timestamps import changed_at

if t.TYPE_CHECKING:
    from tap_usersnap.feedback.state import ProjectState


@dataclasses.dataclass(frozen=True)
class EditWindow:
    """What counts as an edit to re-emit for one project."""

    #: Changed at or after this (the last scan's mark).
    since: str
    #: Created at or after this (``start_date``), if set.
    created_from: str | None
    #: Created before this (the bookmark): items the earlier runs delivered.
    created_before: str

    @classmethod
    def of(cls, project: ProjectState, start_date: str | None) -> EditWindow | None:
        """The project's window; None when there is nothing to re-emit (first scan)."""
        if project.edit_mark is None or project.bookmark is None:
            return None
        return cls(project.edit_mark, start_date, project.bookmark)

    def holds(self, item: dict[str, t.Any]) -> bool:
        """Changed since the mark, and created inside what earlier runs already loaded."""
        if changed_at(item) < self.since:
            return False
        created = item["created_at"]
        return (self.created_from is None or created >= self.created_from) and (
            created < self.created_before
        )

    def passed(self, items: list[dict[str, t.Any]]) -> bool:
        """The scan (newest change first) has gone past the mark: no more pages needed."""
        return not items or changed_at(items[-1]) < self.since


def scan_edits(
    project: ProjectState,
    window: EditWindow | None,
    pages: t.Iterable[FeedbackPage],
    *,
    started: str,
    ceiling: str,
) -> t.Iterator[FeedbackPage]:
    """The scan's pages, filtered to the edits, then one empty page carrying the new mark.

    ``started`` is the run's start and ``ceiling`` the latest instant a timestamp may name.
    """
    new_mark = None
    for page in pages:
        if new_mark is None:
            new_mark = next((c for i in page.items if (c := changed_at(i)) <= ceiling), None)
        if window is None:
            if new_mark is None and page.items:  # one item asked for, and it is in the future
                new_mark = started
            break
        yield page.but_only([i for i in page.items if window.holds(i)], edits=True)
        if window.passed(page.items):
            break
    yield FeedbackPage(project.project_id, [], edit_mark=new_mark or project.edit_mark)
