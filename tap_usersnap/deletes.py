"""Deletions in Usersnap reach the warehouse, and a row that still exists never leaves it.

Singer targets apply deletions with ACTIVATE_VERSION, per table: every row whose table
version is older (target-postgres: or unset) is deleted or marked ``_sdc_deleted_at``. So
every feedback RECORD carries the table's **active version**, kept in state
(``table_version``), and targets on the SDK's SQL sink (target-snowflake), which never
retire an unset version, retire exactly what they should. A new version starts only with a
**full read**: the first run, a full refresh, FULL_TABLE, or a **reconciliation**, when the
count of items created before a project's bookmark fell since the last run (one count
request per project) or Usersnap confirms a project gone. A reconciliation reads every
project again from the scope's start; the saved bookmarks wait until it is activated, and a
run cut short starts it again under the same pending version.

ACTIVATE_VERSION goes out only when the read was complete: every project read to its end,
delivering at least what Usersnap counted; nothing refused; the project listing complete;
no known project missing unless Usersnap confirms it gone; the scope no narrower than the
rows loaded; no project losing more than ``max_delete_percent`` of its items. Otherwise one
WARNING names the project and the numbers, every row stays, and the next run tries again.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import functools
import typing as t

from tap_usersnap.report import project_label

if t.TYPE_CHECKING:
    import logging

    from tap_usersnap.report import RunReport

#: Stream state keys: the version the rows carry, and a full read's not yet activated.
ACTIVE, PENDING = "table_version", "deletes_pending_version"
#: Partition state keys: the bookmark, the edit mark, and how many items were created before
#: the bookmark's second (``COUNTED_BEFORE``), from the scope's start on.
BOOKMARK, EDIT_MARK, COUNT, COUNTED_BEFORE = (
    "replication_key_value",
    "updated_at_mark",
    "feedback_count",
    "counted_before",
)
#: A project of fewer items may lose any share of them at once (a small project emptied).
MIN_GUARDED_ITEMS = 20


def new_version(now: int, active: int | None) -> int:
    """A table version later than the active one, even if the clock went back."""
    return max(now, (active or 0) + 1)


def state_version(value: t.Any) -> int | None:
    """A table version from state, if it is one (state comes from outside)."""
    return value if type(value) is int and value > 0 else None


@dataclasses.dataclass
class ProjectState:
    """Where one project's read stands, and its partition of the Singer state."""

    project_id: str
    name: str
    #: ``created_at`` of the newest item delivered (normalised), None on a first read.
    bookmark: str | None
    edit_mark: str | None
    #: Where the new-feedback read starts: the bookmark or the scope's start, the later.
    start: str | None
    #: The project's writable state partition, made when first written.
    partition_for: t.Callable[[], dict[str, t.Any]]
    #: The count the last run kept (None: none, or one counted another way).
    saved_count: int | None = None
    #: Items before ``start``'s second at the API when this run began (None: not counted).
    baseline: int | None = None
    #: Items this run's read received from ``start``'s second on, and how many of them fall
    #: in the bookmark's own second (the next count leaves those out).
    read: int = 0
    in_last_second: int = 0
    #: Entries received without a usable ``created_at``, or created in the future.
    unbookmarked: int = 0
    #: Items the API sent though the filter excludes them: before the scope, or before
    #: the project's start (each told once, at the project's end).
    outside: int = 0
    stale: int = 0
    #: Newest ``created_at`` taken; False once the API answered out of order.
    newest: str = ""
    ordered: bool = True
    finished: bool = False
    #: How many items the project holds, once a long read asks (-1: it would not say).
    total: int | None = None
    #: The ids of the last items read: an item the API repeats is emitted once.
    recent: collections.deque[str] = dataclasses.field(default_factory=collections.deque)
    recent_ids: set[str] = dataclasses.field(default_factory=set)

    def first_time(self, item_id: str) -> bool:
        """True the first time an id is read in this run (within the last 1000)."""
        if item_id in self.recent_ids:
            return False
        if len(self.recent) == 1000:  # noqa: PLR2004 - memory stays flat
            self.recent_ids.discard(self.recent.popleft())
        self.recent.append(item_id)
        self.recent_ids.add(item_id)
        return True

    @functools.cached_property
    def partition(self) -> dict[str, t.Any]:
        """The project's partition of the Singer state."""
        return self.partition_for()

    @property
    def label(self) -> str:
        """How logs name the project: its name and id."""
        return project_label(self.name, self.project_id)

    @property
    def received(self) -> int:
        """Entries this run's read received, delivered or skipped."""
        return self.read + self.unbookmarked

    @property
    def count(self) -> int | None:
        """Items created before the bookmark's second (from the scope's start), if counted."""
        return None if self.baseline is None else self.baseline + self.read - self.in_last_second

    def advance(self, created: str) -> None:
        """One item received, created at ``created``: the bookmark moves to the newest."""
        self.read += 1
        second = created[:19]
        if self.bookmark is None or created > self.bookmark:
            if self.bookmark is None or second > self.bookmark[:19]:
                self.in_last_second = 0
            self.bookmark = created
        if second == self.bookmark[:19]:
            self.in_last_second += 1

    def save(self) -> None:
        """Write the bookmark and count into the project's state partition."""
        if self.bookmark is None:
            return
        self.partition["replication_key"] = "created_at"
        self.partition[BOOKMARK] = self.bookmark
        count = self.count
        if count is None:
            self.partition.pop(COUNT, None)
            self.partition.pop(COUNTED_BEFORE, None)
        else:
            self.partition[COUNT] = count
            self.partition[COUNTED_BEFORE] = self.bookmark[:19]

    def restart(self, scope_start: str | None) -> None:
        """Read the project again from the scope's start (in memory: state waits)."""
        self.bookmark, self.start = None, scope_start
        self.read = self.in_last_second = self.unbookmarked = 0
        self.baseline = 0

    def set_edit_mark(self, mark: str) -> None:
        """Keep the edit scan's new mark."""
        self.edit_mark = mark
        self.partition[EDIT_MARK] = mark


def scope_gaps(
    known: set[str],
    *,
    listed: set[str],
    complete: bool,
    wanted: t.Collection[str],
    exists: t.Callable[[str], bool | None],
) -> tuple[list[str], list[str]]:
    """Known projects Usersnap confirms gone, and why no deletion may be applied this run.

    ``known``: the projects whose rows the warehouse holds; ``listed``: those the listing
    gave (``complete``: read to its end); ``wanted``: ``project_ids``. A project missing from
    the listing is gone only when its own endpoint says it does not exist.
    """
    held: list[str] = []
    left_out = sorted(known - set(wanted)) if wanted else []
    if left_out:
        held.append(
            f"project_ids leaves out {len(left_out)} project(s) whose rows the warehouse "
            f"holds ({', '.join(left_out)}); to retire them on purpose, run once with a "
            "full refresh (meltano run --full-refresh ...)"
        )
    if not complete:
        held.append("the project listing stopped early, so a missing project may exist")
        return [], held
    gone = []
    for project_id in sorted(known - listed - set(left_out)):
        found = exists(project_id)
        if found is False:
            gone.append(project_id)
        else:
            held.append(
                f"project {project_id} is missing from the project listing, but Usersnap "
                + ("still answers for it" if found else "did not say whether it exists")
            )
    return gone, held


class Mode(enum.Enum):
    """How this run reads the feedback table."""

    INCREMENTAL = "incremental read"
    FIRST_READ = "first read"
    RECONCILE = "reconciliation"


class Reconciliation:
    """One run's versions and deletions in the feedback stream."""

    def __init__(
        self,
        state: dict[str, t.Any],
        projects: dict[str, ProjectState],
        *,
        report: RunReport,
        logger: logging.Logger,
        max_delete_percent: int,
        sharded: bool,
    ) -> None:
        self._state, self._projects = state, projects
        self._report, self._logger = report, logger
        self._max_delete_percent, self._sharded = max_delete_percent, sharded
        self.mode = Mode.INCREMENTAL
        #: The version this run's records carry (None: deletes off, or none yet).
        self.version: int | None = None
        #: Each project's count at the start of a full read (None: could not count).
        self.expected: dict[str, int | None] = {}
        #: Why this run's full read may not be activated, known before it starts.
        self.held: list[str] = []

    @property
    def deferred(self) -> bool:
        """The saved bookmarks wait for the activation (a reconciliation's re-read)."""
        return self.mode is Mode.RECONCILE

    @property
    def full_read(self) -> bool:
        """This run reads every project from the scope's start (or resumes such a read)."""
        return self.mode is not Mode.INCREMENTAL

    def begin(
        self,
        *,
        now: int,
        full_table: bool,
        scope_start: str | None,
        gone: t.Collection[str],
        held: list[str],
        counts_now: t.Callable[[list[ProjectState]], dict[str, int | Exception]],
    ) -> None:
        """Pick the run's mode and version.

        ``gone``: projects Usersnap confirmed deleted; ``held``: why no deletion may apply
        this run whatever is found; ``counts_now`` counts the items before each given
        project's bookmark (some requests at once).
        """
        state, projects = self._state, self._projects
        active, pending = state_version(state.get(ACTIVE)), state_version(state.get(PENDING))
        saved = [p for p in state.get("partitions") or [] if isinstance(p, dict)]
        first_run = active is None and pending is None and not any(p.get(BOOKMARK) for p in saved)
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
        reasons = [f"project {p} is gone (Usersnap says it does not exist)" for p in sorted(gone)]
        reasons += self._fewer_than_last_run(counts_now)
        for reason in reasons:
            self._logger.info("Deletions to apply: %s", reason)
        if pending is not None:
            reasons.insert(0, "the reconciliation of an earlier run is not activated yet")
        elif active is None:
            reasons.insert(0, "the state holds no table version yet (an earlier tap's state)")
        held = held + self._mass_deletions()
        if reasons and held:
            self._report.deletes_held("feedback", f"{'; '.join(reasons)}; but {'; '.join(held)}")
            for project in projects.values():
                if project.saved_count is not None:  # so the next run finds it again
                    project.baseline = project.saved_count
            reasons = []
        if not reasons:
            self.version = active
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

    def _fewer_than_last_run(
        self, counts_now: t.Callable[[list[ProjectState]], dict[str, int | Exception]]
    ) -> list[str]:
        """Each project now holding fewer items before its bookmark than last run counted.

        A project that cannot be counted keeps the state's count and is not checked this
        run: detection never stops new items from loading.
        """
        reasons = []
        counts = counts_now([p for p in self._projects.values() if p.bookmark is not None])
        for project in self._projects.values():
            outcome = counts.get(project.project_id, 0)
            if isinstance(outcome, Exception):
                self._report.detection_skipped(project.project_id, outcome)
                project.baseline = project.saved_count
                continue
            project.baseline = outcome
            if project.saved_count is not None and outcome < project.saved_count:
                reasons.append(
                    f"project {project.project_id} holds {outcome} items created before its "
                    f"bookmark, {project.saved_count - outcome} fewer than last run"
                )
        return reasons

    def _mass_deletions(self) -> list[str]:
        """The projects that would lose more than ``max_delete_percent`` of their items."""
        problems = []
        for project in self._projects.values():
            saved, now = project.saved_count, project.baseline
            if saved is None or now is None or saved < MIN_GUARDED_ITEMS or now >= saved:
                continue
            percent = 100 * (saved - now) / saved
            if percent > self._max_delete_percent:
                problems.append(
                    f"project {project.project_id} would lose {saved - now} of {saved} items "
                    f"({percent:.0f}%, more than max_delete_percent {self._max_delete_percent}%: "
                    "set max_delete_percent to 100 for one run if Usersnap really deleted them)"
                )
        return problems

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

    def problems(self, recount: t.Callable[[ProjectState], int | None]) -> list[str]:
        """Why this run's full read may not be activated (empty: activate it)."""
        problems = list(self.held)
        for project_id, project in self._projects.items():
            at_start = self.expected.get(project_id)
            if not project.finished:
                problems.append(f"project {project.project_id} was not read to its end")
            elif at_start is None:
                problems.append(f"project {project.project_id} could not be counted")
            elif project.received < at_start:
                now = recount(project)
                if now is None or project.received < now:
                    problems.append(
                        f"project {project.project_id} delivered {project.received} items where "
                        f"Usersnap counted {at_start} at the start of the run and {now} at its end"
                    )
        return problems

    def activated(self) -> None:
        """The full read's ACTIVATE_VERSION is out: its bookmarks and counts become the state."""
        self._state.pop(PENDING, None)
        self._state[ACTIVE] = self.version
        for project in self._projects.values():
            if not self.deferred:
                continue
            if project.bookmark is not None:
                project.save()
            elif project.saved_count is not None:
                project.partition[COUNT] = 0
        partitions = self._state.get("partitions")
        if isinstance(partitions, list):  # the state of projects no longer read is dropped
            self._state["partitions"] = [
                p
                for p in partitions
                if isinstance(p, dict)
                and (p.get("context") or {}).get("project_id") in self._projects
            ]
