"""What one project's new-feedback pass may take into its bookmark and its count.

The tap asks for items created at or after the project's start, oldest first. An answer
that ignores the filter, the order or the clock must never move the bookmark past items
not yet delivered, nor inflate the count that deletes compare with:

- created before the scope's start (``start_date``): out of scope, not emitted;
- created before the project's start (loaded by an earlier run): emitted, not counted;
- created in the future (beyond :data:`~tap_usersnap.timestamps.FUTURE_TOLERANCE`):
  emitted, not bookmarked;
- out of ``created_at`` order: emitted; the project's saved bookmark then waits for the end
  of its read, so a run stopped at any point resumes before the disorder.

Each is told in one WARNING per page (named, never quoting content).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t

from tap_usersnap.items import describe_item
from tap_usersnap.timestamps import FUTURE_TOLERANCE, format_timestamp

if t.TYPE_CHECKING:
    import logging

    from tap_usersnap.report import RunReport


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
        for item in items:
            created = item["created_at"]
            if self.scope_start and created < self.scope_start:
                outside += 1
                continue
            emit.append(item)
            if self.start and created < self.start:
                stale += 1
            elif created > self.ceiling:
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
