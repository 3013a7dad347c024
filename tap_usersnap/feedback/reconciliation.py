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
import typing as t

from tap_usersnap.feedback.deletes import find_deletions, mass_deletions
from tap_usersnap.feedback.state import (
    ACTIVE,
    PENDING,
    REPLICATION_KEY,
    new_version,
    prune_partitions,
    saved_partitions,
    state_version,
)

if t.TYPE_CHECKING:
    import logging

    from tap_usersnap.feedback.report import RunReport
    from tap_usersnap.feedback.requests import FeedbackCounts
    from tap_usersnap.feedback.state import ProjectState


class StreamOutput(t.Protocol):
    """What the feedback engine needs of the stream that emits its records."""

    def write_state(self) -> None:
        """Write a STATE message: every record before it is out."""

    def use_table_version(self, version: int) -> None:
        """Make every RECORD from now on carry ``version``."""

    def activate_version(self) -> None:
        """ACTIVATE_VERSION for this run's records, after them all."""


class Mode(enum.Enum):
    """How this run reads the feedback table."""

    #: New items only; records carry the active version.
    INCREMENTAL = "incremental"
    #: Everything from the scope's start (first run, full refresh, FULL_TABLE), saved as it goes.
    FIRST_READ = "first read"
    #: Everything again, after a deletion; the state keeps the last bookmarks until activation.
    RECONCILE = "reconciliation"


class Reconciliation:
    """One run's versions and deletions in the feedback stream."""

    def __init__(
        self,
        output: StreamOutput,
        counts: FeedbackCounts,
        *,
        report: RunReport,
        logger: logging.Logger,
        max_delete_percent: int,
        sharded: bool,
    ) -> None:
        self._output = output
        self._counts = counts
        self._report = report
        self._logger = logger
        self._max_delete_percent = max_delete_percent
        #: ``project_ids`` is set: other extractors may load other projects into the table.
        self._sharded = sharded
        self.mode = Mode.INCREMENTAL
        #: The version this run's records carry (None: deletes are off).
        self.version: int | None = None
        #: Each project's count at the start of a full read (None: could not count).
        self.expected: dict[str, int | None] = {}
        #: Projects read to their end in this run.
        self.finished: set[str] = set()
        #: Why this run's full read may not be activated, known before it starts.
        self.held: list[str] = []
        self._state: dict[str, t.Any] = {}
        self._projects: dict[str, ProjectState] = {}

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
        state: dict[str, t.Any],
        projects: dict[str, ProjectState],
        *,
        now: int,
        full_table: bool,
        scope_start: str | None,
        gone: t.Collection[str],
        held: list[str],
    ) -> None:
        """Pick the run's mode and version; count what a full read must deliver.

        ``state`` is the stream's, ``now`` the run's table version; ``gone`` are projects
        Usersnap confirmed deleted; ``held`` says why no deletion may be applied this run,
        whatever is found (the listing, the scope).
        """
        self._state, self._projects = state, projects
        active, pending = state_version(state.get(ACTIVE)), state_version(state.get(PENDING))
        first_run = active is None and pending is None and not saved_partitions(state)
        if full_table or first_run:
            self._start(Mode.FIRST_READ, new_version(now, active), held)
            return
        if pending is not None and pending == active:  # a first read that did not finish
            self._logger.info("Resuming the full read under table version %d", pending)
            for project in projects.values():
                if project.bookmark is not None:
                    project.baseline = project.saved_count
            self._start(Mode.FIRST_READ, pending, held)
            return
        reasons = find_deletions(
            projects,
            gone,
            count=self._counts.before_bookmark,
            parallel=self._counts.parallel,
            report=self._report,
            logger=self._logger,
        )
        if pending is not None:
            reasons.insert(0, "the reconciliation of an earlier run is not activated yet")
        elif active is None:
            reasons.insert(0, "the state holds no table version yet (an earlier tap's state)")
        held = held + mass_deletions(projects.values(), self._max_delete_percent)
        if reasons and held:
            self._report.deletes_held("feedback", f"{'; '.join(reasons)}; but {'; '.join(held)}")
            for project in projects.values():
                if project.saved_count is not None:  # so the next run finds the deletion again
                    project.baseline = project.saved_count
            reasons = []
        if not reasons:
            self.version = active
            if active is not None:
                self._output.use_table_version(active)
            return
        version = pending if pending is not None and pending > (active or 0) else None
        version = version or new_version(now, active)
        self._logger.warning(
            "Feedback was deleted in Usersnap (%s): reading every project again from %s; "
            "ACTIVATE_VERSION %d then removes what is gone, once every project is read in full",
            "; ".join(reasons),
            scope_start or "the beginning",
            version,
        )
        for project in projects.values():
            project.restart(scope_start)
        self._start(Mode.RECONCILE, version, [])

    def _start(self, mode: Mode, version: int, held: list[str]) -> None:
        self.mode, self.version, self.held = mode, version, held
        if mode is Mode.RECONCILE and self._sharded:
            self._logger.warning(
                "A reconciliation with project_ids set: ACTIVATE_VERSION acts on the whole "
                "feedback table, so another extractor's projects in the same table would be "
                "retired; shards with capture_deletes must load into separate schemas"
            )
        for project in self._projects.values():
            if project.bookmark is None:
                project.baseline = 0  # counted from nothing: the count follows the read
        self._state[PENDING] = version
        if mode is Mode.FIRST_READ:
            self._state[ACTIVE] = version
        self._output.use_table_version(version)
        self.expected = self._counts.to_read_all(self._projects.values())
        self._output.write_state()

    def finish(self, held: list[str]) -> None:
        """After the last record: ACTIVATE_VERSION if the full read is complete.

        ``held`` says why no activation may go out, found during the run (a skipped
        project). Otherwise the activation is held back with one WARNING and the pending
        version stays, so the next run tries again.
        """
        if not self.full_read or self.version is None:
            return
        problems = self.held + held
        problems += shortfalls(self._projects, self.expected, self.finished, self._counts)
        if problems:
            self._report.deletes_held(
                "feedback", f"the {self.mode.value} is not complete: {'; '.join(problems)}"
            )
            return
        self._output.activate_version()
        self._state.pop(PENDING, None)
        if self.deferred:
            for project in self._projects.values():
                project.adopt_reread(REPLICATION_KEY)
        prune_partitions(self._state, self._projects)
        self._output.write_state()


def shortfalls(
    projects: dict[str, ProjectState],
    expected: dict[str, int | None],
    finished: set[str],
    counts: FeedbackCounts,
) -> list[str]:
    """Each project read short of what Usersnap holds, with the numbers."""
    problems = []
    for project_id, project in projects.items():
        at_start = expected.get(project_id)
        if project_id not in finished:
            problems.append(f"project {project_id} was not read to its end")
        elif at_start is None:
            problems.append(f"project {project_id} could not be counted")
        elif project.received < at_start:
            now = counts.recount(project)
            if now is None or project.received < now:
                problems.append(
                    f"project {project_id} delivered {project.received} items where Usersnap "
                    f"counted {at_start} at the start of the run and {now} at its end"
                )
    return problems
