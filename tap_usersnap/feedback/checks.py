"""What one page of a project's feedback may emit, bookmark and count.

Each item from the API is checked first, so one bad item never costs the others:

- an item that cannot be keyed (no ``feedback_id``) or bookmarked (no usable
  ``created_at``) is skipped, loudly: one WARNING naming its project and number, and a
  count in the run's summary;
- a ``custom_data`` nested deeper than any target could store (website visitors write it)
  is replaced by null; a value of the wrong type, a NUL or a lone surrogate is mended
  (:mod:`~tap_usersnap.records.mending`); timestamps are normalised, as bookmarks compare
  as strings.

Then each page of the new-feedback pass is sorted out against the pass's bounds
(:class:`PassBounds`), as an answer that ignores the filter, the order or the clock must
never move the bookmark past items not yet delivered, nor inflate the count that deletes
compare with:

- created before the scope's start (``start_date``): out of scope, not emitted;
- created before the project's start (loaded by an earlier run): emitted, not counted;
- created in the second of either start but before it: asked for, as the API's filters
  take whole seconds (``gte`` that second): not emitted (delivered already, or out of
  scope), but counted, as the API's counts from that second count them;
- created in the future (beyond :data:`~tap_usersnap.records.timestamps.FUTURE_TOLERANCE`):
  emitted, not bookmarked;
- out of ``created_at`` order: emitted; the project's saved bookmark then waits for the end
  of its read, so a run stopped at any point resumes before the disorder.

Each is told in one WARNING per page (named, never quoting content).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t

from tap_usersnap.http.loggable import MAX_QUOTED, describe_item
from tap_usersnap.http.responses import read_strictly
from tap_usersnap.records.mending import body_needs_text_check, mend, shape_of
from tap_usersnap.records.schemas import schema_of
from tap_usersnap.records.timestamps import (
    FUTURE_TOLERANCE,
    format_timestamp,
    is_canonical,
    is_timestamp,
    normalise_timestamp,
    second_of,
)

if t.TYPE_CHECKING:
    import logging

    from tap_usersnap.feedback.report import RunReport
    from tap_usersnap.http.client import Page

#: ``custom_data`` nested deeper than this is replaced by ``null`` (jsonb and the targets'
#: JSON decoders stop far below the thousands a hostile visitor can send).
MAX_CUSTOM_DATA_DEPTH = 64
#: What a feedback record may hold: the stream's schema file.
FEEDBACK_SHAPE = shape_of(schema_of("feedback"))


@dataclasses.dataclass
class FeedbackPage:
    """One page of one project's feedback: each page carries its project."""

    project_id: str
    items: list[dict[str, t.Any]]
    #: Items re-emitted by the edit scan: they must not move the ``created_at`` bookmark.
    edits: bool = False
    #: Set on the page that ends the edit scan: the project's new edit mark.
    edit_mark: str | None = None
    #: ``created_at`` of the skipped items that have one: the API counts them, so the
    #: project's count of items before its bookmark must too (see ``deletes``).
    skipped: list[str] = dataclasses.field(default_factory=list)
    #: How many of the API's entries were skipped, with a created_at or without.
    dropped: int = 0

    def but_only(self, items: list[dict[str, t.Any]], *, edits: bool) -> FeedbackPage:
        """The same project's page with other items."""
        return dataclasses.replace(self, items=items, edits=edits)


def checked_page(project_id: str, raw: Page, report: RunReport) -> FeedbackPage:
    """The usable items of an API page, ready to emit.

    An item that cannot be keyed or bookmarked is skipped and reported; a ``custom_data``
    too deep to store is replaced and reported; a value of the wrong type, a NUL or a lone
    surrogate is mended and reported (:mod:`tap_usersnap.records.mending`). Timestamps are
    normalised (bookmarks compare as strings) and every item names its project. Runs once
    per item: the usual item (Usersnap's own timestamp form, shallow custom data) takes the
    short way.
    """
    items, skipped = [], []
    raw_items = raw.items
    response = raw.response
    check_text = not read_strictly(response) or body_needs_text_check(response.content)
    for item in raw_items:
        if not (
            type(item) is dict
            and is_canonical(item.get("created_at"))
            and type(feedback_id := item.get("feedback_id")) is str
            and feedback_id
        ):  # not the usual item: check it in full
            problem = unusable_reason(item)
            if problem is not None:
                report.skipped_item(describe_item(item, project_id), problem)
                skipped.extend(_created_at_if_any(item))
                continue
            item["created_at"] = normalise_timestamp(item["created_at"])
        updated_at = item.get("updated_at")
        if updated_at is not None and not is_canonical(updated_at):
            _normalise_updated_at(item, project_id, report)
        if not item.get("project_id"):
            item["project_id"] = project_id
        if item.get("custom_data") and cut_deep_custom_data(item):
            report.altered_item(
                describe_item(item, project_id),
                "its custom_data is nested too deep for any target to store; emitted as null",
            )
        for change in mend(item, FEEDBACK_SHAPE, check_text=check_text):
            report.altered_item(describe_item(item, project_id), change)
        items.append(item)
    return FeedbackPage(project_id, items, skipped=skipped, dropped=len(raw_items) - len(items))


def _created_at_if_any(item: t.Any) -> list[str]:
    """A skipped item's ``created_at`` in the bookmark format, if it has a usable one."""
    created_at = item.get("created_at") if isinstance(item, dict) else None
    return [normalise_timestamp(created_at)] if is_timestamp(created_at) else []


def _normalise_updated_at(item: dict[str, t.Any], project_id: str, report: RunReport) -> None:
    """Any ISO 8601 string in the bookmark format; anything else (an epoch number) null."""
    updated_at = item["updated_at"]
    if is_timestamp(updated_at):
        item["updated_at"] = normalise_timestamp(updated_at)
        return
    item["updated_at"] = None  # the edit scan then goes by created_at
    report.altered_item(
        describe_item(item, project_id), "its updated_at is not a timestamp; emitted as null"
    )


def unusable_reason(item: t.Any) -> str | None:
    """Why an item can be neither keyed nor bookmarked; ``None`` when it is fine."""
    if not isinstance(item, dict):
        return f"the entry is {'null' if item is None else 'a ' + type(item).__name__}"
    feedback_id = item.get("feedback_id")
    if not isinstance(feedback_id, str) or not feedback_id:
        return "it has no feedback_id"
    created_at = item.get("created_at")
    if not isinstance(created_at, str):
        if created_at is None:
            return "its created_at is missing or null"
        return f"its created_at is a {type(created_at).__name__}, not a timestamp"
    if is_canonical(created_at) or is_timestamp(created_at):  # Usersnap's own form: the usual case
        return None
    return f"its created_at {created_at[:MAX_QUOTED]!r} is not an ISO 8601 timestamp"


def cut_deep_custom_data(item: dict[str, t.Any]) -> bool:
    """Replace a too-deep ``custom_data`` by ``None``; True if it did."""
    value = item.get("custom_data")
    if not isinstance(value, dict | list) or not _too_deep(value):
        return False
    item["custom_data"] = None
    return True


def _too_deep(value: dict[str, t.Any] | list[t.Any]) -> bool:
    """Nested deeper than :data:`MAX_CUSTOM_DATA_DEPTH`, without recursion.

    A value cut while decoding (:data:`~tap_usersnap.http.responses.TOO_DEEP`) sits deeper still.
    Runs for every item: a flat value (the usual custom data) costs one pass.
    """
    level: list[t.Any] = [value]
    for _ in range(MAX_CUSTOM_DATA_DEPTH):
        level = [
            child
            for current in level
            for child in (current.values() if type(current) is dict else current)
            if type(child) in _CONTAINERS
        ]
        if not level:
            return False
    return True


_CONTAINERS = (dict, list)


def future_ceiling(now: dt.datetime | None = None) -> str:
    """The latest instant an item's timestamp may name now, in the bookmark format."""
    return format_timestamp((now or dt.datetime.now(dt.timezone.utc)) + FUTURE_TOLERANCE)


@dataclasses.dataclass
class Bounded:
    """One page sorted out: what to emit, and what the bookmark and count may take."""

    emit: list[dict[str, t.Any]]
    #: ``created_at`` of the items (and skipped entries) the bookmark and count take.
    counted: list[str]
    #: Entries the API counts that the bookmark may not take (created in the future).
    unbookmarked: int


@dataclasses.dataclass
class PassBounds:
    """The bounds of one project's new-feedback pass in this run."""

    project_id: str
    #: The scope's start: nothing before it is emitted.
    scope_start: str | None
    #: The project's start: items before it were loaded already.
    start: str | None
    ceiling: str
    #: Newest ``created_at`` counted so far; False once the API answered out of order.
    newest: str | None = None
    ordered: bool = True

    def sort(
        self,
        items: list[dict[str, t.Any]],
        skipped: list[str],
        *,
        report: RunReport,
        logger: logging.Logger,
    ) -> Bounded:
        """The page's items and skipped entries, sorted out against the pass's bounds."""
        emit, counted, future, stale, outside = [], [], [], 0, 0
        scope_second = second_of(self.scope_start) if self.scope_start else None
        start_second = second_of(self.start) if self.start else None
        for item in items:
            created = item["created_at"]
            if self.scope_start and created < self.scope_start:
                if scope_second is not None and created >= scope_second:
                    counted.append(created)  # asked for (filters are whole seconds), as counted
                else:
                    outside += 1
                continue
            if self.start and created < self.start:
                if start_second is not None and created >= start_second:
                    counted.append(created)  # the start's second: delivered already, dropped
                    continue
                emit.append(item)
                stale += 1
                continue
            emit.append(item)
            if created > self.ceiling:
                future.append(item)
            else:
                counted.append(created)
                if (item.get("updated_at") or "") > self.ceiling:
                    report.noted_item(
                        describe_item(item, self.project_id),
                        f"its updated_at {item['updated_at']} is in the future: emitted, but "
                        "the edit mark does not move to it",
                    )
        self._check_order(counted, logger)  # skipped entries come apart from their place
        counted += [c for c in skipped if (not self.start or c >= self.start) and c <= self.ceiling]
        if outside:
            report.skipped_out_of_scope(self.project_id, outside, str(self.scope_start))
        if stale:
            logger.warning(
                "Usersnap answered %d item(s) of project %s created before %s, which the tap "
                "did not ask for (it ignored the created_at filter): emitted again, not counted",
                stale,
                self.project_id,
                self.start,
            )
        for item in future:
            report.noted_item(
                describe_item(item, self.project_id),
                f"its created_at {item['created_at']} is in the future (more than "
                f"{FUTURE_TOLERANCE.seconds // 60} minutes ahead of this machine's clock): "
                "emitted, but the bookmark does not move to it",
            )
        return Bounded(emit, counted, len(future))

    def _check_order(self, counted: list[str], logger: logging.Logger) -> None:
        for created in counted:
            if self.newest is not None and created < self.newest and self.ordered:
                self.ordered = False
                logger.warning(
                    "Usersnap answered project %s out of created_at order (the tap asks oldest "
                    "first): its saved bookmark stays where it was until the project is read "
                    "to its end, so a run stopped before then reads it again from there",
                    self.project_id,
                )
            if self.newest is None or created > self.newest:
                self.newest = created
