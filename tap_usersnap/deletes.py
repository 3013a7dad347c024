"""Deletions in Usersnap reach the warehouse: detected cheaply, applied with ACTIVATE_VERSION.

Detection costs one request per project per run: the count of items created before the
project's bookmark (``POST …/feedbacks/filter/count``, from ``start_date`` on), against the
count the state kept. Fewer now means items were deleted; a project gone from the listing
means all of its items were.

Singer targets apply deletions with ACTIVATE_VERSION, which is per table: every row whose
table version is older (or unset) is deleted or marked ``_sdc_deleted_at``. So once a
deletion is found, every project in scope is read again from ``start_date``, each record
carrying the new table version, and ACTIVATE_VERSION follows the last one. Until it is out,
the state says the reconciliation is pending, so a run that fails midway deletes nothing
and the next run starts it again.
"""

from __future__ import annotations

import logging
import typing as t

from tap_usersnap.project_state import saved_partitions

if t.TYPE_CHECKING:
    from tap_usersnap.counts import FeedbackCounts
    from tap_usersnap.feedback import FeedbackStream
    from tap_usersnap.project_state import ProjectState

#: Stream-level state key: the table version of a reconciliation not yet activated.
PENDING = "deletes_pending_version"


def find_deletions(
    projects: dict[str, ProjectState],
    stream_state: dict[str, t.Any],
    *,
    count: t.Callable[[ProjectState], int],
    every_project_listed: bool,
    logger: logging.Logger,
) -> list[str]:
    """Why feedback must be reconciled (empty: nothing was deleted).

    Counts each project with a bookmark, keeping the count as the project's baseline.
    """
    reasons = []
    if stream_state.get(PENDING):
        reasons.append("a reconciliation of an earlier run did not finish")
    if every_project_listed:
        known = saved_partitions(stream_state)
        reasons += [f"project {pid} is gone" for pid in sorted(set(known) - set(projects))]
    for project in projects.values():
        if project.bookmark is None:
            project.baseline = 0
            continue
        now = project.baseline = count(project)
        if project.saved_count is not None and now < project.saved_count:
            reasons.append(
                f"project {project.project_id} holds {now} items created before its "
                f"bookmark, {project.saved_count - now} fewer than last run"
            )
    for reason in reasons:
        logger.info("Deletions to apply: %s", reason)
    return reasons


def prune_partitions(stream_state: dict[str, t.Any], in_scope: t.Container[str]) -> None:
    """Drop the state of projects no longer read, once their rows are reconciled away."""
    if isinstance(stream_state.get("partitions"), list):
        stream_state["partitions"] = [
            partition
            for project_id, partition in saved_partitions(stream_state).items()
            if project_id in in_scope
        ]


class Reconciliation:
    """One run's handling of deletions in the feedback stream."""

    def __init__(self) -> None:
        #: The table version of this run's re-read; None: no deletion found.
        self.version: int | None = None

    def begin(self, stream: FeedbackStream, counts: FeedbackCounts) -> None:
        """Count each project; if anything was deleted, read every project again, versioned."""
        reasons = find_deletions(
            stream.projects,
            stream.stream_state,
            count=counts.before_bookmark,
            every_project_listed=not stream.usersnap.project_ids,
            logger=stream.logger,
        )
        if not reasons:
            return
        self.version = stream.usersnap.table_version
        stream.logger.warning(
            "Feedback was deleted in Usersnap (%s): reading every project again from "
            "start_date; ACTIVATE_VERSION %d then removes what is gone from the warehouse",
            "; ".join(reasons),
            self.version,
        )
        start_date = stream.config.get("start_date")
        for project in stream.projects.values():
            project.restart(start_date)
        stream.use_table_version(self.version)
        stream.stream_state[PENDING] = self.version
        stream.usersnap.state_writer.write_state(stream.tap_state)

    def finish(self, stream: FeedbackStream) -> None:
        """After the last record: ACTIVATE_VERSION, then a state without the pending mark."""
        if self.version is None:
            return
        stream.activate_version()
        stream.stream_state.pop(PENDING, None)
        prune_partitions(stream.stream_state, stream.projects)
        stream.usersnap.state_writer.write_state(stream.tap_state)
