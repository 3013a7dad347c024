"""Deletions and late arrivals reach the warehouse; a row that still exists never leaves it.

Every feedback RECORD carries a table version kept in state; ACTIVATE_VERSION retires the
rows of older versions. Counts find deletions and late items; a sweep re-reads every
project under a new, pending version, activated only once complete. The whole design, its
guards and costs: docs/state-and-deletes.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t

from tap_usersnap.client import CredentialsRejectedError, UsersnapError
from tap_usersnap.records import format_timestamp, is_timestamp, parse_timestamp
from tap_usersnap.state import NEW, REREAD, ProjectState, Reread, next_second

if t.TYPE_CHECKING:
    import logging

    from tap_usersnap.base import UsersnapStream
    from tap_usersnap.records import RunReport
    from tap_usersnap.settings import Settings

#: Stream state keys: the version the rows carry, a sweep's not yet activated, when that
#: sweep began, when the last activated one began (the next is due ``sweep_days`` on), and
#: that a deletion the pending sweep may have passed calls for one more, and since when
#: ``capture_deletes`` has been off (deletions then went unseen: a sweep follows).
ACTIVE, PENDING, SWEEP_STARTED, SWEPT_AT, SWEEP_AGAIN, DELETES_OFF = (
    "table_version",
    "deletes_pending_version",
    "sweep_started_at",
    "swept_at",
    "sweep_again",
    "deletes_off_since",
)
#: A project of fewer items may lose any share of them at once (a small project emptied).
MIN_GUARDED_ITEMS = 20
#: How many skipped items the line that holds a sweep back names (each has its own warning).
NAMED_ITEMS = 3


def new_version(now: int, active: int | None) -> int:
    """A table version later than the active one, even if the clock went back."""
    return max(now, (active or 0) + 1)


def state_version(
    state: dict[str, t.Any], key: str, logger: logging.Logger, stream: str = "feedback"
) -> int | None:
    """The table version a stream's state keeps under ``key``; None if absent.

    One no target can store (state comes from outside) is dropped with a warning.
    """
    value = state.get(key)
    if value is None or (type(value) is int and 0 < value < 2**63):
        return value
    logger.warning(
        "The state of the %s stream holds an unusable %s, %r, which is no table version: "
        "dropped (a new version is taken where one is needed)",
        stream,
        key,
        str(value)[:60],
    )
    del state[key]
    return None


@dataclasses.dataclass
class Gaps:
    """Known projects missing from this run's scope, and what that means for deletions."""

    #: Usersnap confirms them gone: their rows leave with the next activation.
    gone: list[str]
    #: Usersnap still answers for them: their feedback is read by id.
    answering: list[str]
    #: Why no deletion may be applied to feedback this run.
    held: list[str]

    def held_for_listing(self) -> list[str]:
        """Why no project or assignee row may be retired (a project answering is unlisted)."""
        return self.held + [
            f"project {p} is missing from the project listing, but Usersnap still answers for it"
            for p in self.answering
        ]


def scope_gaps(
    known: set[str],
    *,
    listed: set[str],
    complete: bool,
    wanted: t.Collection[str],
    exists: t.Callable[[str], bool | None],
) -> Gaps:
    """The gaps between the projects whose rows the warehouse holds and this run's listing.

    ``known``: from state; ``listed``: those the listing gave (``complete``: read to its
    end); ``wanted``: ``project_ids``. A project missing from the listing is gone only when
    its own endpoint says it does not exist.
    """
    gaps = Gaps(gone=[], answering=[], held=[])
    left_out = sorted(known - set(wanted)) if wanted else []
    if left_out:
        gaps.held.append(
            f"project_ids leaves out {len(left_out)} project(s) whose rows the warehouse "
            f"holds ({', '.join(left_out)}); to retire them on purpose, run once with a "
            "full refresh (meltano run --full-refresh ...)"
        )
    if not complete:
        gaps.held.append("the project listing stopped early, so a missing project may exist")
        return gaps
    for project_id in sorted(known - listed - set(left_out)):
        found = exists(project_id)
        if found is None:
            gaps.held.append(
                f"project {project_id} is missing from the project listing, and Usersnap "
                "did not say whether it exists"
            )
        else:
            (gaps.answering if found else gaps.gone).append(project_id)
    return gaps


class Sweeps:
    """One run's count checks of the feedback stream, its re-reads, sweeps and versions."""

    def __init__(
        self,
        stream: UsersnapStream,
        count: t.Callable[[str, str | None, str | None], int],
        settings: Settings,
        report: RunReport,
        *,
        scope_start: str | None,
        table_version: int,
    ) -> None:
        self.stream, self.count, self.settings, self.report = stream, count, settings, report
        self.state = stream.stream_state
        self.scope_start, self.table_version = scope_start, table_version
        #: Why no deletion may be applied this run (known before the read).
        self.held: tuple[str, ...] = ()
        #: The whole second the run began: a re-read that ends must have reached it.
        self.started = format_timestamp(dt.datetime.now(dt.timezone.utc))[:19]
        #: Re-reads short by the same number twice: the sweep ends without retiring a row.
        self.given_up: list[str] = []

    def _each(
        self, projects: list[ProjectState], func: t.Callable[[ProjectState], int]
    ) -> dict[str, int | Exception]:
        """``func`` of each project, some at once; a failure is its value, but bad credentials."""

        def outcome(project: ProjectState) -> int | Exception:
            try:
                return func(project)
            except CredentialsRejectedError:
                raise
            except UsersnapError as error:
                return error

        outcomes = self.stream.at_once(outcome, projects)
        return dict(zip([p.project_id for p in projects], outcomes, strict=True))

    def plan(self, projects: list[ProjectState], gaps: Gaps, full_table: bool) -> int | None:
        """Compare counts, pick re-reads: the version this run's records carry."""
        state = self.state
        fewer, guarded, guards = self._compare_counts(projects)
        self.held = (*gaps.held, *guards)
        active = state_version(state, ACTIVE, self.stream.logger)
        pending = state_version(state, PENDING, self.stream.logger)
        now = format_timestamp(dt.datetime.now(dt.timezone.utc))
        if not self.settings.capture_deletes:  # no deletion to guard: every count is taken
            for project, outcome in fewer + guarded:
                project.counted = outcome
            if pending is not None:  # without versions, a sweep under way means nothing
                self._end_sweep(projects)
            state.setdefault(DELETES_OFF, now)
            # Rows keep the active version (if deletes were on): an SDK SQL sink never
            # retires a row whose version a record without one set to null.
            return active
        state.setdefault(SWEPT_AT, now)
        first_run = full_table or (
            active is None and pending is None and not any(p.bookmark for p in projects)
        )
        if first_run or (pending is not None and SWEEP_STARTED not in state):
            # A first read, a full refresh, or a read begun by an older tap: all from the
            # start, under a new version (rows of the old one may be gone from Usersnap).
            version = new_version(self.table_version, max(active or 0, pending or 0))
            if active is None:
                state[ACTIVE] = version
            self._start_sweep(projects, version, now)
            return version
        if pending is not None:
            self._continue_sweep(projects, fewer)
            return pending
        reasons = [f"project {p} is gone (Usersnap says it does not exist)" for p in gaps.gone]
        reasons += [
            f"project {p.project_id} holds {n} items created before {p.counted_before}, "
            f"{(p.counted or 0) - n} fewer than the last run counted"
            for p, n in fewer + guarded
        ]
        if state.get(SWEEP_AGAIN):
            reasons.append("an item the last sweep had re-read was deleted during it")
        if off_since := state.get(DELETES_OFF):
            reasons.append(f"capture_deletes was off from {off_since}, looking for none")
        if self._sweep_due(state[SWEPT_AT], now):
            reasons.append(f"the last full sweep began at {state[SWEPT_AT]}")
        if reasons and self.held:
            self.report.deletes_held(
                "feedback", f"{'; '.join(reasons)}; but {'; '.join(self.held)}"
            )
        elif reasons:
            version = new_version(self.table_version, active)
            for project, outcome in fewer:
                project.counted = outcome
            self._start_sweep(projects, version, now, reasons)
            return version
        return active

    def late(self, projects: list[ProjectState]) -> list[ProjectState]:
        """The projects whose count rose by more than the new items their read took there.

        Those items became visible late: each such project is read again, now. A count that
        rose by less than the new items hides a deletion: the count kept is what it would be
        without one, so the next run finds it.
        """
        late = []
        for project in projects:
            if project.counted is None or NEW not in project.finished:
                continue
            if project.surplus <= project.new_before_cut:
                project.counted += project.new_before_cut
                continue
            reread = project.reread
            fresh = reread is not None and reread.position is None and reread.before == 0
            if fresh and REREAD in project.finished:
                continue  # re-read from the start in this run, after the count: it had them
            self.stream.logger.info(
                "Project %s holds %d more items created before %s than the last run "
                "counted, %d of them new: feedback became visible late; reading the "
                "project again",
                project.label,
                project.surplus,
                project.counted_before,
                project.new_before_cut,
            )
            project.reread = Reread()  # a re-read under way may have passed them
            project.finished.discard(REREAD)
            late.append(project)
        return late

    def _continue_sweep(
        self, projects: list[ProjectState], fewer: list[tuple[ProjectState, int]]
    ) -> None:
        """A pending sweep goes on; a new project joins it.

        A deletion in a project the sweep may have passed already calls for one more sweep.
        """
        for project, outcome in fewer:
            if project.reread != Reread():  # it may have passed the deleted item already
                self.state[SWEEP_AGAIN] = True
            project.counted = outcome
        for project in projects:
            if project.bookmark is None and project.reread is None:
                project.reread = Reread()

    def _compare_counts(
        self, projects: list[ProjectState]
    ) -> tuple[list[tuple[ProjectState, int]], list[tuple[ProjectState, int]], list[str]]:
        """Each counted project's count now against the last run's, at the same cut.

        Returns those with fewer items, those with fewer beyond ``max_delete_percent``, and
        the guard's words for these. More items are checked after the read (:meth:`late`); a
        project that cannot be counted is not checked this run.
        """
        counts = self._each(
            [p for p in projects if p.counted is not None],
            lambda p: self.count(p.project_id, self.scope_start, p.counted_before),
        )
        fewer, guarded, guards = [], [], []
        limit = self.settings.max_delete_percent
        for project in projects:
            now, saved = counts.get(project.project_id), project.counted
            if isinstance(now, Exception):
                self.report.detection_skipped(project.project_id, now)
                continue
            if now is None or saved is None or now == saved:
                continue
            if now > saved:
                project.surplus = now - saved
                continue
            percent = 100 * (saved - now) / saved
            if saved >= MIN_GUARDED_ITEMS and percent > limit:
                guarded.append((project, now))
                guards.append(
                    f"project {project.project_id} would lose {saved - now} of its {saved} "
                    f"items ({percent:.0f}%, more than max_delete_percent {limit}%: set "
                    "max_delete_percent to 100 for one run if Usersnap really deleted them)"
                )
            else:
                fewer.append((project, now))
        return fewer, guarded, guards

    def _start_sweep(
        self,
        projects: list[ProjectState],
        version: int,
        now: str,
        reasons: t.Sequence[str] = (),
    ) -> None:
        """Every project re-read from the scope's start under ``version``, pending."""
        if reasons:
            self.stream.logger.warning(
                "Deletions to apply in Usersnap's feedback (%s): every project is read again "
                "from %s; ACTIVATE_VERSION %d then removes what is gone, once every project is "
                "read in full (new feedback keeps loading first in every run until then)",
                "; ".join(reasons),
                self.scope_start or "the beginning",
                version,
            )
            if self.settings.project_ids:
                self.stream.logger.warning(
                    "A sweep with project_ids set: ACTIVATE_VERSION acts on the whole feedback "
                    "table, so another extractor's projects in the same table would be "
                    "retired; shards with capture_deletes must load into separate schemas"
                )
        self.state[PENDING], self.state[SWEEP_STARTED] = version, now
        self.state.pop(SWEEP_AGAIN, None)  # this sweep reads every item again
        self.state.pop(DELETES_OFF, None)
        for project in projects:
            project.reread = Reread()
            project.save()
        self.stream.write_state()

    def _end_sweep(self, projects: list[ProjectState]) -> t.Any:
        """No sweep pending, no project re-read: returns when the sweep that ended began."""
        self.state.pop(PENDING, None)
        for project in projects:
            project.reread = None
        return self.state.pop(SWEEP_STARTED, None)

    def _sweep_due(self, swept_at: t.Any, now: str) -> bool:
        """The last sweep began ``sweep_days`` ago or more, or its time is unreadable or ahead."""
        days = self.settings.sweep_days
        if not days:
            return False
        if not is_timestamp(swept_at):
            return True
        elapsed = parse_timestamp(now) - parse_timestamp(swept_at)
        return not dt.timedelta(days=-1) < elapsed < dt.timedelta(days=days)  # or in the future

    def finish(self, projects: list[ProjectState]) -> int | None:
        """Each read project's count moved to its new cut; a sweep activated once complete."""
        read = [p for p in projects if p.finished]
        counts = self._each(read, self._recount)
        for project in read:
            outcome = counts[project.project_id]
            if isinstance(outcome, Exception):
                self.stream.logger.warning(
                    "Could not count the feedback of project %s: %s", project.label, outcome
                )
            if project.reread_ended:
                self._check_reread(project, None if isinstance(outcome, Exception) else outcome)
            project.save()
        state = self.state
        pending = state_version(state, PENDING, self.stream.logger)
        given_up = f"{'; '.join(self.given_up)}: Usersnap lists fewer items than it counts"
        if pending is None or not self.settings.capture_deletes:
            if self.given_up:
                self.stream.logger.warning(
                    "%s; the re-read stops there, no row was retired", given_up
                )
            return None
        skipped = [
            f"feedback {i} of project {p.project_id}" for p in projects for i in p.unread_rows
        ]
        what = "first read" if state.get(ACTIVE) == pending else "sweep"
        if self.given_up or skipped:
            why = [f"{given_up}, so which are gone cannot be told"] if self.given_up else []
            if skipped:  # Usersnap still has them: their rows must not be retired
                more = len(skipped) - NAMED_ITEMS
                named = ", ".join(skipped[:NAMED_ITEMS]) + (f" and {more} more" if more > 0 else "")
                why.append(f"{named} could not be read (skipped above)")
            self.report.deletes_held(
                "feedback",
                f"{'; '.join(why)}; the {what} ends without retiring a row, and the next sweep "
                "is due in sweep_days",
            )
            self._end_sweep(projects)
            state.pop(SWEEP_AGAIN, None)  # the next sweep is due in sweep_days, as said
            state[SWEPT_AT] = format_timestamp(dt.datetime.now(dt.timezone.utc))
            for project in projects:
                project.save()
            return None
        held = [f"project {p} was refused" for p in self.report.refused_projects]
        held += self.held
        unread = [
            f"project {p.project_id} is not re-read to its end yet"
            for p in projects
            if p.reread is not None
        ]
        if held:
            self.report.deletes_held(
                "feedback", f"the {what} is not complete: {'; '.join(held + unread)}"
            )
            return None
        if unread:
            self.stream.logger.info(
                "The %s under table version %d goes on next run: %s",
                what,
                pending,
                "; ".join(unread),
            )
            return None
        state[ACTIVE], state[SWEPT_AT] = pending, self._end_sweep(projects)
        ids = {p.project_id for p in projects}  # the state of projects gone is dropped
        state["partitions"] = [
            p for p in state["partitions"] if (p.get("context") or {}).get("project_id") in ids
        ]
        return pending

    def _recount(self, project: ProjectState) -> int:
        """The project's count moved to its new cut, the second after its bookmark's.

        It grows by the items created between the old cut and the new, counted apart, so a
        deletion among the older items during this run shows at the next. Returns the least
        a re-read that ended must have delivered: the new count, or, if more, the count of
        all created before the run began (a read that ended early, on an empty page or
        has_more false too soon, would agree with a count up to its own end).
        """
        before_run = 0
        if project.reread_ended:
            before_run = self.count(project.project_id, self.scope_start, self.started)
        if project.bookmark is None:
            project.counted = project.counted_before = None
            return before_run
        cut = next_second(project.bookmark)
        counted, before = project.counted, project.counted_before
        if counted is None or before is None or cut < before or project.reread_ended:
            counted = self.count(project.project_id, self.scope_start, cut)
        elif cut != before:  # at least the items delivered there, if some left meanwhile
            counted += max(self.count(project.project_id, before, cut), project.new_after_cut)
        project.counted, project.counted_before = counted, cut  # kept as they were on a failure
        return max(counted, before_run)

    def _check_reread(self, project: ProjectState, expected: int | None) -> None:
        """A re-read that ended: done, unless it delivered fewer items than Usersnap counts.

        ``expected``: from :meth:`_recount` (None: the count failed). Short once, it starts
        again; short by the same number twice, the sweep ends without retiring a row (which
        items are gone cannot be told).
        """
        reread = project.reread
        assert reread is not None  # noqa: S101 - called for a re-read only
        short = None if expected is None else expected - reread.delivered
        if short is not None and short <= 0:
            project.reread = None
            return
        why = f"the re-read of project {project.project_id} delivered {reread.delivered} items " + (
            "and Usersnap could not count them"
            if expected is None
            else f"where Usersnap counts {expected}"
        )
        if short is not None and short == project.shortfall:
            self.given_up.append(f"{why}, as at its last re-read")
            project.reread = None
            return
        self.report.deletes_held("feedback", f"{why}; it starts again next run")
        project.reread, project.shortfall = Reread(), short
