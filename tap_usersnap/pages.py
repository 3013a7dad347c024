"""Pages of feedback as the feedback stream hands them from the API to the records it emits."""

from __future__ import annotations

import collections
import dataclasses
import logging
import typing as t

from tap_usersnap.items import cut_deep_custom_data, describe_item, unusable_reason
from tap_usersnap.mending import mend, shape_of
from tap_usersnap.schemas import schema_of
from tap_usersnap.timestamps import is_canonical, is_timestamp, normalise_timestamp

if t.TYPE_CHECKING:
    from tap_usersnap.report import RunReport


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


@dataclasses.dataclass
class RawPage:
    """One API page's entries as decoded, and whether its body may hold NUL or surrogates."""

    items: list[t.Any]
    check_text: bool


#: What a feedback record may hold: the stream's schema file.
FEEDBACK_SHAPE = shape_of(schema_of("feedback"))


def checked_page(project_id: str, raw: RawPage, report: RunReport) -> FeedbackPage:
    """The usable items of an API page, ready to emit.

    An item that cannot be keyed or bookmarked is skipped and reported; a ``custom_data``
    too deep to store is replaced and reported; a value of the wrong type, a NUL or a lone
    surrogate is mended and reported (:mod:`tap_usersnap.mending`). Timestamps are
    normalised (bookmarks compare as strings) and every item names its project. Runs once
    per item: the usual item (Usersnap's own timestamp form, shallow custom data) takes the
    short way.
    """
    items, skipped = [], []
    raw_items = raw.items
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
        for change in mend(item, FEEDBACK_SHAPE, check_text=raw.check_text):
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
