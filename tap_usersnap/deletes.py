"""Deletions in Usersnap reach the warehouse, and a row that still exists never leaves it.

Singer targets apply deletions with ACTIVATE_VERSION, which is per table: every row whose
table version is older (target-postgres: or unset) is deleted or marked
``_sdc_deleted_at``. So every feedback RECORD carries the table's **active version**, kept
in state (``table_version``), and SDK-sink targets (target-snowflake, target-redshift), which
never retire an unset version, retire exactly what they should. A new version is cut only
when a **full read** starts:

- the first run, a full refresh (no state) or FULL_TABLE: every project from the scope's
  start; its progress is saved as it goes, so a failed first run resumes from its bookmarks
  under the same version (``deletes_pending_version`` equal to ``table_version``);
- a **reconciliation**, when the cheap check finds a deletion: the count of items created
  before each project's bookmark, one request per project, against the count kept in state
  (fewer now: some were deleted), or a project Usersnap confirms gone. Every project is read
  again from the scope's start under the pending version; its saved bookmark and count stay
  as they were until the re-read is activated. A reconciliation that fails midway starts
  again, under the same pending version, on the next run: the in-memory cursor of the
  failed re-read proves nothing about rows it did not reach.

ACTIVATE_VERSION goes out only when the read was complete: every project read to its end,
delivering at least what Usersnap counted at the start (or at the end, if items were deleted
meanwhile); nothing skipped; the project listing complete; no known project missing unless
Usersnap confirms it gone; the scope no narrower than the rows loaded; no project losing
more than ``max_delete_percent`` of its items. Otherwise the activation is held back with one
WARNING naming the project and the numbers, every row stays, and the next run tries again.
"""

from __future__ import annotations

import enum
import logging
import typing as t

from tap_usersnap.errors import CredentialsRejectedError, UsersnapError
from tap_usersnap.project_state import saved_partitions

if t.TYPE_CHECKING:
    from tap_usersnap.counts import FeedbackCounts
    from tap_usersnap.feedback import FeedbackStream
    from tap_usersnap.project_state import ProjectState
    from tap_usersnap.report import RunReport

#: Stream-level state keys: the version the stream's rows carry ...
ACTIVE = "table_version"
#: ... and the version of a full read not yet activated.
PENDING = "deletes_pending_version"
#: A project of fewer items may lose any share of them at once (a small project emptied).
MIN_GUARDED_ITEMS = 20


class Mode(enum.Enum):
    """How this run reads the feedback table."""

    #: New items only; records carry the active version.
    INCREMENTAL = "incremental"
    #: Everything from the scope's start (first run, full refresh, FULL_TABLE), saved as it goes.
    FIRST_READ = "first read"
    #: Everything again, after a deletion; the state keeps the last bookmarks until activation.
    RECONCILE = "reconciliation"


def new_version(now: int, active: int | None) -> int:
    """A version later than the active one, even if the clock went back."""
    return max(now, (active or 0) + 1)


def state_version(value: t.Any) -> int | None:
    """A table version from state, if it is one (state comes from outside)."""
    return value if type(value) is int and value > 0 else None


def find_deletions(
    projects: dict[str, ProjectState],
    gone: t.Collection[str],
    *,
    count: t.Callable[[ProjectState], int],
    report: RunReport,
    logger: logging.Logger,
) -> list[str]:
    """Why feedback must be reconciled (empty: nothing was deleted).

    Counts each project with a bookmark, keeping the count as the project's baseline. A
    project that cannot be counted keeps the state's count (what the warehouse holds) and
    is not checked this run: detection never stops new items from loading.
    """
    reasons = [f"project {pid} is gone (Usersnap answers SITE_NOT_FOUND)" for pid in sorted(gone)]
    for project in projects.values():
        if project.bookmark is None:
            project.baseline = 0
            continue
        try:
            now: int | None = count(project)
        except CredentialsRejectedError:
            raise
        except UsersnapError as exc:
            now = None
            report.detection_skipped(project.project_id, exc)
        project.baseline = project.saved_count if now is None else now
        if now is not None and project.saved_count is not None and now < project.saved_count:
            reasons.append(
                f"project {project.project_id} holds {now} items created before its "
                f"bookmark, {project.saved_count - now} fewer than last run"
            )
    for reason in reasons:
        logger.info("Deletions to apply: %s", reason)
    return reasons


def mass_deletions(projects: t.Iterable[ProjectState], max_percent: int) -> list[str]:
    """The projects that would lose more than ``max_percent`` of their items, with numbers."""
    problems = []
    for project in projects:
        saved, now = project.saved_count, project.baseline
        if saved is None or now is None or saved < MIN_GUARDED_ITEMS or now >= saved:
            continue
        percent = 100 * (saved - now) / saved
        if percent > max_percent:
            problems.append(
                f"project {project.project_id} would lose {saved - now} of {saved} items "
                f"({percent:.0f}%, more than max_delete_percent {max_percent}%: set "
                "max_delete_percent to 100 for one run if Usersnap really deleted them)"
            )
    return problems


def prune_partitions(stream_state: dict[str, t.Any], in_scope: t.Container[str]) -> None:
    """Drop the state of projects no longer read, once their rows are reconciled away."""
    if isinstance(stream_state.get("partitions"), list):
        stream_state["partitions"] = [
            partition
            for project_id, partition in saved_partitions(stream_state).items()
            if project_id in in_scope
        ]


class Reconciliation:
    """One run's versions and deletions in the feedback stream."""

    def __init__(self) -> None:
        self.mode = Mode.INCREMENTAL
        #: The version this run's records carry (None: deletes are off).
        self.version: int | None = None
        #: Each project's count at the start of a full read (None: could not count).
        self.expected: dict[str, int | None] = {}
        #: Projects read to their end in this run.
        self.finished: set[str] = set()
        #: Why this run's full read may not be activated, known before it starts.
        self.held: list[str] = []

    @property
    def deferred(self) -> bool:
        """The state's bookmarks wait for the activation (a reconciliation's re-read)."""
        return self.mode is Mode.RECONCILE

    @property
    def full_read(self) -> bool:
        """This run reads every project from the scope's start (or resumes such a read)."""
        return self.mode is not Mode.INCREMENTAL

    def begin(
        self,
        stream: FeedbackStream,
        counts: FeedbackCounts,
        *,
        gone: t.Collection[str],
        held: list[str],
    ) -> None:
        """Pick the run's mode and version; count what a full read must deliver.

        ``gone`` are projects Usersnap confirmed deleted; ``held`` says why no deletion may
        be applied this run, whatever is found (the listing, the scope).
        """
        state, projects = stream.stream_state, stream.projects
        active, pending = state_version(state.get(ACTIVE)), state_version(state.get(PENDING))
        now = stream.usersnap.table_version
        first_run = active is None and pending is None and not saved_partitions(state)
        if stream.full_table or first_run:
            self._start(stream, Mode.FIRST_READ, new_version(now, active), counts, held)
            return
        if pending is not None and pending == active:  # a first read that did not finish
            stream.logger.info("Resuming the full read under table version %d", pending)
            for project in projects.values():
                if project.bookmark is not None:
                    project.baseline = project.saved_count
            self._start(stream, Mode.FIRST_READ, pending, counts, held)
            return
        reasons = find_deletions(
            projects,
            gone,
            count=counts.before_bookmark,
            report=stream.usersnap.report,
            logger=stream.logger,
        )
        if pending is not None:
            reasons.insert(0, "the reconciliation of an earlier run is not activated yet")
        elif active is None:
            reasons.insert(0, "the state holds no table version yet (an earlier tap's state)")
        held = held + mass_deletions(projects.values(), stream.max_delete_percent)
        if reasons and held:
            stream.usersnap.report.deletes_held(
                "feedback", f"{'; '.join(reasons)}; but {'; '.join(held)}"
            )
            for project in projects.values():
                if project.saved_count is not None:  # so the next run finds the deletion again
                    project.baseline = project.saved_count
            reasons = []
        if not reasons:
            self.version = active
            if active is not None:
                stream.use_table_version(active)
            return
        version = pending if pending is not None and pending > (active or 0) else None
        version = version or new_version(now, active)
        stream.logger.warning(
            "Feedback was deleted in Usersnap (%s): reading every project again from %s; "
            "ACTIVATE_VERSION %d then removes what is gone, once every project is read in full",
            "; ".join(reasons),
            stream.scope_start or "the beginning",
            version,
        )
        for project in projects.values():
            project.restart(stream.scope_start)
        self._start(stream, Mode.RECONCILE, version, counts, [])

    def _start(
        self,
        stream: FeedbackStream,
        mode: Mode,
        version: int,
        counts: FeedbackCounts,
        held: list[str],
    ) -> None:
        self.mode, self.version, self.held = mode, version, held
        if mode is Mode.RECONCILE and stream.usersnap.project_ids:
            stream.logger.warning(
                "A reconciliation with project_ids set: ACTIVATE_VERSION acts on the whole "
                "feedback table, so another extractor's projects in the same table would be "
                "retired; shards with capture_deletes must load into separate schemas"
            )
        for project in stream.projects.values():
            if project.bookmark is None:
                project.baseline = 0  # counted from nothing: the count follows the read
        state = stream.stream_state
        state[PENDING] = version
        if mode is Mode.FIRST_READ:
            state[ACTIVE] = version
        stream.use_table_version(version)
        self.expected = {pid: counts.to_read(p) for pid, p in stream.projects.items()}
        stream.usersnap.state_writer.write_state(stream.tap_state)

    def finish(self, stream: FeedbackStream, counts: FeedbackCounts, held: list[str]) -> None:
        """After the last record: ACTIVATE_VERSION if the full read is complete.

        ``held`` says why no activation may go out, found during the run (a skipped
        project). Otherwise the activation is held back with one WARNING and the pending
        version stays, so the next run tries again.
        """
        if not self.full_read or self.version is None:
            return
        problems = self.held + held + self._shortfalls(stream, counts)
        if problems:
            stream.usersnap.report.deletes_held(
                "feedback", f"the {self.mode.value} is not complete: {'; '.join(problems)}"
            )
            return
        stream.activate_version()
        state = stream.stream_state
        state.pop(PENDING, None)
        if self.deferred:
            for project in stream.projects.values():
                project.adopt_reread(str(stream.replication_key))
        prune_partitions(state, stream.projects)
        stream.usersnap.state_writer.write_state(stream.tap_state)

    def _shortfalls(self, stream: FeedbackStream, counts: FeedbackCounts) -> list[str]:
        """Each project read short of what Usersnap holds, with the numbers."""
        problems = []
        for project_id, project in stream.projects.items():
            expected = self.expected.get(project_id)
            if project_id not in self.finished:
                problems.append(f"project {project_id} was not read to its end")
            elif expected is None:
                problems.append(f"project {project_id} could not be counted")
            elif project.received < expected:
                now = counts.recount(project)
                if now is None or project.received < now:
                    problems.append(
                        f"project {project_id} delivered {project.received} items where Usersnap "
                        f"counted {expected} at the start of the run and {now} at its end"
                    )
        return problems
