"""Each project's progress in the Singer state: bookmark, edit mark, name, count, re-read.

State comes from outside (a file, Meltano's backend): every value is checked as it is
loaded, and one that cannot be used stops the run with a line that names it. What each key
means: docs/state-and-deletes.md.
"""

from __future__ import annotations

import calendar
import contextlib
import dataclasses
import datetime as dt
import functools
import re
import typing as t

from tap_usersnap.client import UsersnapError
from tap_usersnap.records import (
    FUTURE_TOLERANCE,
    format_timestamp,
    is_timestamp,
    normalise_timestamp,
    parse_timestamp,
    project_id_problem,
    project_label,
    schema_of,
    shape_problem,
)
from tap_usersnap.settings import BACKFILL_WINDOW_PATTERN, START_DATE_TOLERANCE

if t.TYPE_CHECKING:
    import logging

    from tap_usersnap.settings import Settings

#: Partition state keys: the bookmark, the edit mark, the project's name, Usersnap's count
#: of its items created before the cut ``COUNTED_BEFORE`` (a whole second, from the scope's
#: start), and a pending re-read's position and the items it delivered before it.
BOOKMARK, EDIT_MARK, NAME, COUNT, COUNTED_BEFORE, REREAD_FROM, REREAD_ROWS, SHORT = (
    "replication_key_value",
    "updated_at_mark",
    "project_name",
    "feedback_count",
    "counted_before",
    "reread_from",
    "reread_rows",
    "reread_short",
)
#: Stream state keys: the pinned lower bound (null: all history) and the setting it came from.
SCOPE_START, SCOPE_SETTING = "scope_start", "scope_setting"
#: The two reads of a project: its new feedback, and its re-read.
NEW, REREAD = "new", "reread"


def next_second(timestamp: str) -> str:
    """The whole second after ``timestamp``'s: a cut that includes the bookmark's second."""
    moment = parse_timestamp(timestamp).astimezone(dt.timezone.utc).replace(microsecond=0)
    with contextlib.suppress(OverflowError):  # the last second there is (a state from outside)
        moment += dt.timedelta(seconds=1)
    return format_timestamp(moment)[:19]


@dataclasses.dataclass
class Reread:
    """A project's re-read, from ``position``'s second to its end: resumable across runs."""

    #: The whole second it resumes from (None: the scope's start).
    position: str | None = None
    #: Items delivered created before ``position``'s second.
    before: int = 0
    #: Items delivered in this run, and how many of them in the newest one's second.
    read: int = 0
    in_last: int = 0
    newest: str | None = None

    def advance(self, created: str | None) -> None:
        """One item delivered (or skipped), created at ``created`` (oldest first)."""
        self.read += 1
        if created is None:
            return
        second = created[:19]
        if self.newest is None or second > self.newest:
            self.newest, self.in_last = second, 0
        if second == self.newest:
            self.in_last += 1

    @property
    def delivered(self) -> int:
        """Items this re-read delivered, over every run."""
        return self.before + self.read

    def resume_point(self) -> tuple[str, int]:
        """Where the next run resumes and how many items lie before it."""
        if self.newest is None:
            return self.position or "", self.before
        return self.newest, self.before + self.read - self.in_last


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
    #: Usersnap's count of the items created before ``counted_before`` (None: not known).
    counted: int | None = None
    counted_before: str | None = None
    #: The pending re-read (None: none).
    reread: Reread | None = None
    #: How many more items Usersnap counts before ``counted_before`` than the last run did,
    #: and how many new ones this run's read took there (in the bookmark's second).
    surplus: int = 0
    new_before_cut: int = 0
    at_start: int = 0
    #: New items taken from ``counted_before`` on (what the next count must at least hold).
    new_after_cut: int = 0
    #: Whether the state held a partition for the project when the run began.
    has_partition: bool = False
    #: How many fewer items the last re-read delivered than Usersnap counted (None: none).
    shortfall: int | None = None
    #: The bookmark when this run's read of new feedback ended (the re-read takes only later).
    new_read_to: str | None = None
    #: Items this run's read took from ``start``'s second on.
    read: int = 0
    #: Entries received without a usable ``created_at``, or created in the future.
    unbookmarked: int = 0
    #: The ids of items a re-read had to skip: rows of theirs may be live, so no sweep retires.
    unread_rows: list[str] = dataclasses.field(default_factory=list)
    #: Items the API sent though its filter excludes them: before the scope, or the start.
    outside: int = 0
    stale: int = 0
    #: False once the API answered out of order (the bookmark is then saved at the read's end).
    ordered: bool = True
    #: The reads that ended, not refused ("new", "reread").
    finished: set[str] = dataclasses.field(default_factory=set)
    #: How many items the project holds, once a long read asks (-1: it would not say).
    total: int | None = None

    @functools.cached_property
    def partition(self) -> dict[str, t.Any]:
        """The project's partition of the Singer state."""
        return self.partition_for()

    @property
    def label(self) -> str:
        """How logs name the project: its name and id."""
        return project_label(self.name, self.project_id)

    def advance(self, created: str) -> None:
        """One item taken, created at ``created``: the bookmark moves to the newest."""
        self.read += 1
        if self.bookmark is None or created > self.bookmark:
            self.bookmark = created

    def save(self) -> None:
        """Write the bookmark, name, count and re-read position into the state partition."""
        if (
            self.bookmark is None
            and not self.has_partition
            and (self.reread is None or not self.reread.resume_point()[0])
        ):
            return  # nothing read yet: no partition
        self.save_position()
        partition = self.partition
        if self.name:
            partition[NAME] = self.name
        kept = {COUNT: self.counted, COUNTED_BEFORE: self.counted_before, SHORT: self.shortfall}
        if self.reread is None:
            kept |= {REREAD_FROM: None, REREAD_ROWS: None}
        for key, value in kept.items():
            if value is None:
                partition.pop(key, None)
            else:
                partition[key] = value

    def save_position(self) -> None:
        """Write where the reads got to, after each item (:meth:`save` writes the rest)."""
        partition = self.partition
        if self.bookmark is not None:
            partition["replication_key"] = "created_at"
            partition[BOOKMARK] = self.bookmark
        if self.reread is not None:
            partition[REREAD_FROM], partition[REREAD_ROWS] = self.reread.resume_point()

    def took(self, created: str) -> None:
        """An item taken from the bookmark on: the bookmark moves; it may explain a surplus.

        The first item at the bookmark's very instant is the one that set it, read again.
        """
        if created == self.start:
            if self.at_start:
                self.new_before_cut += 1
            self.at_start += 1
        elif self.start and created > self.start and created[:19] < (self.counted_before or ""):
            self.new_before_cut += 1
        elif self.counted_before and created[:19] >= self.counted_before:
            self.new_after_cut += 1
        self.advance(created)

    @property
    def reread_ended(self) -> bool:
        """A re-read is pending and this run read it to its end."""
        return self.reread is not None and REREAD in self.finished

    def reread_covers_new(self) -> bool:
        """The re-read passes the bookmark anyway: no read of new feedback before it."""
        reread = self.reread
        return reread is not None and (
            self.bookmark is None or (reread.position or "") >= self.bookmark[:19]
        )

    def place_reread(self, created: str | None, scope_start: str | None, *, takes: bool) -> str:
        """A re-read's item: ``drop``, ``emit`` (up to the bookmark), or ``new``.

        ``new``: past the bookmark, so it moves the bookmark as new feedback does, when the
        re-read ``takes`` new items (no read of new feedback of the project is under way)
        and the run's read of new feedback did not take it (``new_read_to``).
        """
        assert self.reread is not None  # noqa: S101 - a re-read is read only then
        if created is not None and scope_start and created < scope_start:
            if created[:19] < scope_start[:19]:  # the scope's own second comes back: untold
                self.outside += 1
            return "drop"
        self.reread.advance(created)
        upto = self.new_read_to or ""
        if not takes or (created is not None and (created <= upto or created < (self.start or ""))):
            if self.ordered:
                self.save_position()
            return "emit"
        return "new"

    def set_edit_mark(self, mark: str) -> None:
        """Keep the edit scan's new mark."""
        self.edit_mark = mark
        self.partition[EDIT_MARK] = mark


def saved_partitions(state: dict[str, t.Any], logger: logging.Logger) -> dict[str, dict]:
    """The state's partition of each project (a project named twice: its later bookmark)."""
    saved: dict[str, dict[str, t.Any]] = {}
    for entry in state.get("partitions") or []:
        pid = (entry.get("context") or {}).get("project_id") if isinstance(entry, dict) else None
        problem = None if pid is None else project_id_problem(pid)
        if problem:  # no request can name it: it would hold back every deletion for ever
            logger.warning("The state's feedback partition of a project was dropped: %s", problem)
        if pid is None or problem:
            continue
        if pid in saved:
            saved[pid] = max(saved[pid], entry, key=lambda e: str(e.get(BOOKMARK) or ""))
            logger.warning(
                "The state names project %s twice (feedback); kept the later bookmark, %s",
                pid,
                saved[pid].get(BOOKMARK),
            )
        else:
            saved[pid] = entry
    state["partitions"] = list(saved.values())
    return saved


class StateError(UsersnapError):
    """A value in the state cannot be used; the message tells the user to correct or clear it."""

    def __init__(self, problem: str) -> None:
        super().__init__(
            f"{problem}. Correct it or clear the state (meltano state clear <state id>)"
        )


def load_projects(
    state: dict[str, t.Any],
    saved: dict[str, dict[str, t.Any]],
    ids: list[str],
    names: dict[str, str],
    *,
    scope_start: str | None,
    full_table: bool,
    partition_for: t.Callable[[str], dict[str, t.Any]],
    logger: logging.Logger,
) -> dict[str, ProjectState]:
    """Every project's progress from state, checked.

    ``saved``: :func:`saved_partitions` of ``state``; ``names``: the listing's.
    """
    legacy = None
    if state.get(BOOKMARK) and state.get("replication_key", "created_at") == "created_at":
        legacy = timestamp_from_state(state[BOOKMARK], "the feedback stream", BOOKMARK)
        logger.info(
            "The state holds a stream-level bookmark, %s (an older layout): every project "
            "is read from it unless it has a bookmark of its own",
            legacy,
        )
    projects = {}
    now = dt.datetime.now(dt.timezone.utc)
    for pid in ids:
        entry = saved.get(pid) or {}
        where = f"feedback project {pid}"
        bookmark = timestamp_from_state(entry.get(BOOKMARK), where, BOOKMARK) or legacy
        if bookmark and parse_timestamp(bookmark) > now + FUTURE_TOLERANCE:
            logger.warning(
                "The state's bookmark of project %s, %s, is in the future: no feedback "
                "created before it will be read for this project. Correct or clear the "
                "state if wrong",
                pid,
                bookmark,
            )
        if full_table:
            bookmark = None
        count, cut = entry.get(COUNT), entry.get(COUNTED_BEFORE)
        counted = (
            not full_table
            and type(count) is int
            and isinstance(cut, str)
            and len(cut) == 19  # noqa: PLR2004 - a whole second, as saved
            and is_timestamp(cut)
        )
        saved_name = entry.get(NAME) if isinstance(entry.get(NAME), str) else None
        name = names.get(pid) or saved_name or ""
        short = entry.get(SHORT)
        project = ProjectState(
            project_id=pid,
            name=name,
            bookmark=bookmark,
            edit_mark=timestamp_from_state(entry.get(EDIT_MARK), where, EDIT_MARK),
            start=max(bookmark or "", scope_start or "") or None,
            partition_for=functools.partial(partition_for, pid),
            counted=count if counted else None,
            counted_before=cut if counted else None,
            has_partition=bool(entry),
            shortfall=short if type(short) is int and short > 0 else None,
        )
        if REREAD_FROM in entry and not full_table:
            position = timestamp_from_state(entry[REREAD_FROM], where, REREAD_FROM)
            before = entry.get(REREAD_ROWS)
            project.reread = Reread(
                position[:19] if position else None, before if type(before) is int else 0
            )
        if saved_name and name != saved_name:
            logger.info(
                "Project %s was renamed (it was %r): its feedback is read again, so that "
                "every row carries the new name",
                project.label,
                saved_name,
            )
            project.reread = Reread()
        projects[pid] = project
    return projects


def timestamp_from_state(value: t.Any, where: str, key: str) -> str | None:
    """A timestamp from state in the bookmark format; None if absent.

    Raises:
        StateError: It is not an ISO 8601 timestamp (names the project and the value).
    """
    if value is None or value == "":
        return None
    if not is_timestamp(value):
        msg = (
            f"The state of {where} holds an unusable {key}: {str(value)[:60]!r} is not an ISO "
            "8601 timestamp"
        )
        raise StateError(msg)
    return normalise_timestamp(value)


def pinned_scope(state: dict[str, t.Any], settings: Settings, logger: logging.Logger) -> str | None:
    """The lower bound pinned in state at the first run, else the setting's, pinned now.

    Deletes count and re-read within it, so it must not move once rows are loaded: a
    changed setting (as the user wrote it) is warned about and applies after a full refresh.
    """
    if settings.start_date:
        setting = f"start_date {settings.start_date}"
    elif settings.backfill_window:
        setting = f"backfill_window {' '.join(settings.backfill_window.split())}"
    else:
        setting = "all history"
    if SCOPE_SETTING not in state:
        scope = resolve_scope(settings, dt.datetime.now(dt.timezone.utc))
        state[SCOPE_START], state[SCOPE_SETTING] = scope, setting
        return scope
    pinned = timestamp_from_state(state.get(SCOPE_START), "the feedback stream", SCOPE_START)
    if pinned and parse_timestamp(pinned) > dt.datetime.now(dt.timezone.utc) + START_DATE_TOLERANCE:
        msg = (
            f"The state of the feedback stream holds a {SCOPE_START} in the future, {pinned}: "
            "no feedback could be read, and every loaded row would look deleted"
        )
        raise StateError(msg)
    if state.get(SCOPE_SETTING) != setting:
        logger.warning(
            "The feedback scope setting changed from %s to %s: the tap keeps reading from "
            "%s, as the first run did, so that no loaded row is retired. To apply the new "
            "setting, run once with a full refresh (meltano run --full-refresh ..., or "
            "clear the state)",
            state.get(SCOPE_SETTING),
            setting,
            pinned or "the beginning of history",
        )
    return pinned


def resolve_scope(settings: Settings, now: dt.datetime) -> str | None:
    """The instant the scope setting names now, in the bookmark format (None: all history)."""
    if settings.start_date:
        return normalise_timestamp(settings.start_date)
    window = re.match(BACKFILL_WINDOW_PATTERN, settings.backfill_window or "")
    if window is None:
        return None
    amount, unit = int(window.group(1)), window.group(2).rstrip("s")
    if unit == "month":
        index = now.year * 12 + now.month - 1 - amount
        year, month = divmod(index, 12)
        day = min(now.day, calendar.monthrange(year, month + 1)[1])
        return format_timestamp(now.replace(year=year, month=month + 1, day=day))
    return format_timestamp(now - dt.timedelta(days=amount * (7 if unit == "week" else 1)))


def check_state_file(state: dict[str, t.Any], name: str) -> None:
    """Raise :class:`StateError` naming the first part of a state file of the wrong shape.

    The SDK would fail on it with a traceback.
    """
    problem = shape_problem(state, schema_of("singer_state"))
    if problem:
        raise StateError(f"The state file {name} is not Singer state: {problem}")
