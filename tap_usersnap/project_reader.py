"""One project's pages, in the order the feedback stream emits them.

First the edit scan (if ``capture_edits``), then new feedback from the project's start.
The API's cursor names the last item read: if that item is deleted while the tap pages past
it, the next page is refused; reading again from the bookmark (once) loses nothing, and the
target upserts what is read twice. Runs in the read-ahead threads, so it only reads.
"""

from __future__ import annotations

import typing as t

from tap_usersnap.edit_scan import EditWindow, scan_edits
from tap_usersnap.errors import CursorRejectedError
from tap_usersnap.pages import FeedbackPage, RawPage, checked_page
from tap_usersnap.project_state import later_of

if t.TYPE_CHECKING:
    from tap_usersnap.feedback import FeedbackStream
    from tap_usersnap.project_state import ProjectState

#: Context flag of the edit scan's requests: True asks for one item (the mark) only.
EDIT_SCAN = "edit_scan"


class ProjectReader:
    """``reader(project_id)``: that project's pages, checked, through the SDK's request loop."""

    def __init__(self, stream: FeedbackStream) -> None:
        self._stream = stream

    def __call__(self, project_id: str) -> t.Iterator[FeedbackPage]:
        """The project's pages; read again from its bookmark if a page cursor is refused."""
        stream = self._stream
        project = stream.projects[project_id]
        try:
            yield from self._read(project)
        except CursorRejectedError as exc:
            stream.logger.warning("%s: reading project %s again from its bookmark", exc, project_id)
            project.start = later_of(project.bookmark, stream.scope_start)
            yield from self._read(project)

    def _read(self, project: ProjectState) -> t.Iterator[FeedbackPage]:
        """The edit scan (if on), then new feedback from the project's start."""
        stream = self._stream
        project_id = project.project_id
        if stream.config.get("capture_edits") and not stream.full_table:
            rereading = stream.reconciliation.deferred
            window = None if rereading else EditWindow.of(project, stream.scope_start)
            context = {"project_id": project_id, EDIT_SCAN: window is None}
            yield from scan_edits(
                project,
                window,
                self._pages(context),
                started=stream.started_at,
                ceiling=stream.future_ceiling,
            )
        yield from self._pages({"project_id": project_id})

    def _pages(self, context: dict[str, t.Any]) -> t.Iterator[FeedbackPage]:
        """Checked pages through the SDK's request loop (paging, retries, metrics)."""
        project_id = context["project_id"]
        report = self._stream.usersnap.report
        for raw in self._stream.request_records(context):
            yield checked_page(project_id, t.cast("RawPage", raw), report)
