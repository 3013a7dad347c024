"""The feedback stream's state: its whole layout, and each project's read progress.

The stream's state holds the table versions (:data:`ACTIVE`, :data:`PENDING`; see
:mod:`~tap_usersnap.feedback.reconciliation`), the pinned scope (:data:`SCOPE_START`,
:data:`SCOPE_SETTING`; see :mod:`~tap_usersnap.feedback.scope`) and one partition per
project, ``{"context": {"project_id": …},
"replication_key": "created_at", "replication_key_value": <bookmark>,
"updated_at_mark": <edit mark>}``:

- the **bookmark** is the ``created_at`` of the newest item delivered: the next run asks for
  items created at or after it;
- the **edit mark** is the newest ``updated_at`` the last edit scan saw: the next scan
  re-emits items changed after it;
- the **count** is how many items were created before the bookmark's second (and from
  ``start_date`` on) when the project was last read: fewer at the API means deletions.
  (The API's filters take whole seconds, so the API can count no finer; a count kept by an
  older version, before the bookmark's very instant, differs only when items share the
  bookmark's second, and then costs one reconciliation.)

State comes from outside (hand-edited, ``meltano state set``, older versions), so every
value is normalised to the bookmark format, an unusable one stops the run with one line
naming the project, and a future bookmark is warned about.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import typing as t

from tap_usersnap.http.errors import UsersnapError
from tap_usersnap.records.timestamps import (
    FUTURE_TOLERANCE,
    format_timestamp,
    parse_timestamp,
    second_of,
)

#: Stream state keys: the version the stream's rows carry ...
ACTIVE = "table_version"
#: ... and the version of a full read not yet activated.
PENDING = "deletes_pending_version"
#: Stream state keys: the pinned lower bound (null: all history) and the setting it came from.
SCOPE_START = "scope_start"
SCOPE_SETTING = "scope_setting"
#: The field each project's bookmark follows.
REPLICATION_KEY = "created_at"
#: Partition state key of the edit scan's mark (newest ``updated_at`` seen).
EDIT_MARK = "updated_at_mark"
BOOKMARK = "replication_key_value"
#: Partition state key of how many items were created before the bookmark's second (from
#: ``start_date`` on): fewer at the API next time means some were deleted.
COUNT = "feedback_count"


class StateError(UsersnapError):
    """A value in the state cannot be used; the user must correct or clear it."""


@dataclasses.dataclass
class ProjectState:
    """Where one project's read stands, and its partition of the Singer state."""

    project_id: str
    #: ``created_at`` bookmark from the state (normalised), or None on a first run.
    bookmark: str | None
    #: ``updated_at`` mark of the last edit scan, or None.
    edit_mark: str | None
    #: Where the new-feedback pass starts: the bookmark or ``start_date``, the later one.
    start: str | None
    #: The project's writable state partition, created on first write.
    partition: t.Callable[[], dict[str, t.Any]]
    #: The count kept in the state by the last run (None: none kept).
    saved_count: int | None = None
    #: Items the API held before this run's read began (None: not counted, deletes off).
    baseline: int | None = None
    #: Items this run's ``created_at`` pass delivered (or dropped as delivered already) ...
    read: int = 0
    #: ... and how many of them were created in the bookmark's second (filters are whole
    #: seconds, so counts are taken before a second, never before an instant).
    at_bookmark: int = 0
    #: Entries of this run's pass skipped without a ``created_at``: the API counts them too.
    unbookmarked: int = 0

    @property
    def count(self) -> int | None:
        """Items created before the bookmark's second (from ``start_date`` on), if counted."""
        return None if self.baseline is None else self.baseline + self.read - self.at_bookmark

    def advance(self, created_ats: list[str]) -> None:
        """Move the bookmark to the newest of a page's delivered items, counting them."""
        if not created_ats:
            return
        newest = max(created_ats)
        self.read += len(created_ats)
        if self.bookmark is None or newest > self.bookmark:
            if self.bookmark is None or second_of(self.bookmark) != second_of(newest):
                self.at_bookmark = 0
            self.bookmark = newest
        second = second_of(self.bookmark)
        self.at_bookmark += sum(1 for created in created_ats if created >= second)

    def save(self, replication_key: str) -> None:
        """Write the bookmark and count into the project's state partition."""
        if self.bookmark is None:
            return
        state = self.partition()
        state["replication_key"] = replication_key
        state[BOOKMARK] = self.bookmark
        count = self.count
        if count is None:
            state.pop(COUNT, None)
        else:
            state[COUNT] = count

    def start_from_bookmark(self, scope_start: str | None) -> None:
        """The new-feedback pass starts at the bookmark, or the scope's start if later."""
        self.start = later_of(self.bookmark, scope_start)

    def restart(self, start_date: str | None) -> None:
        """Read this project again from ``start_date``, counting from nothing.

        Only in memory: the state partition keeps the bookmark and count it had until the
        re-read is complete and activated (:meth:`adopt_reread`).
        """
        self.bookmark, self.start, self.read, self.at_bookmark = None, start_date, 0, 0
        self.baseline, self.unbookmarked = 0, 0

    @property
    def received(self) -> int:
        """Entries this run's pass received from the API, delivered or skipped."""
        return self.read + self.unbookmarked

    def adopt_reread(self, replication_key: str) -> None:
        """A complete re-read's bookmark and count replace the partition's.

        A project that now holds nothing keeps its bookmark, with a count of zero.
        """
        if self.bookmark is not None:
            self.save(replication_key)
        elif self.saved_count is not None:
            self.partition()[COUNT] = 0

    def set_edit_mark(self, mark: str) -> None:
        """Keep the edit scan's new mark."""
        self.edit_mark = mark
        self.partition()[EDIT_MARK] = mark


def load_project_states(
    stream_state: dict[str, t.Any],
    project_ids: list[str],
    *,
    replication_key: str,
    start_date: str | None,
    full_table: bool,
    partition_for: t.Callable[[str], dict[str, t.Any]],
    logger: logging.Logger,
) -> dict[str, ProjectState]:
    """Every project's :class:`ProjectState` from the stream's state, checked and normalised.

    A stream-level bookmark without partitions (the layout of older taps) is every
    project's lower bound. With ``full_table`` the bookmarks are not used: all is read.

    Raises:
        StateError: A bookmark or mark is not a timestamp (names the project and value).
    """
    saved = saved_partitions(stream_state)
    legacy = _legacy_bookmark(stream_state, replication_key, logger)
    states = {}
    for project_id in project_ids:
        entry = saved.get(project_id) or {}
        bookmark = _bookmark(entry, project_id, replication_key) or legacy
        _warn_if_future(bookmark, project_id, logger)
        if full_table:
            bookmark = None
        saved_count = entry.get(COUNT)
        state = states[project_id] = ProjectState(
            project_id=project_id,
            bookmark=bookmark,
            edit_mark=_read(entry.get(EDIT_MARK), project_id, EDIT_MARK),
            start=None,
            partition=_lazy(partition_for, project_id),
            saved_count=saved_count if isinstance(saved_count, int) else None,
        )
        state.start_from_bookmark(start_date)
    return states


def _bookmark(entry: dict[str, t.Any], project_id: str, replication_key: str) -> str | None:
    """The project's own bookmark, normalised."""
    if entry.get("replication_key", replication_key) != replication_key:
        return None
    return _read(entry.get(BOOKMARK), project_id, BOOKMARK)


def _warn_if_future(bookmark: str | None, project_id: str, logger: logging.Logger) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    if bookmark and parse_timestamp(bookmark) > now + FUTURE_TOLERANCE:
        logger.warning(
            "The state's bookmark of project %s, %s, is in the future: no feedback created "
            "before it will be read for this project. Correct or clear the state if wrong",
            project_id,
            bookmark,
        )


def saved_partitions(stream_state: dict[str, t.Any]) -> dict[str, dict[str, t.Any]]:
    """``{project_id: partition}`` of the state's partitions that name a project."""
    saved = {}
    for partition in stream_state.get("partitions") or []:
        context = partition.get("context") if isinstance(partition, dict) else None
        project_id = context.get("project_id") if isinstance(context, dict) else None
        if isinstance(project_id, str):
            saved[project_id] = partition
    return saved


def new_version(now: int, active: int | None) -> int:
    """A table version later than the active one, even if the clock went back."""
    return max(now, (active or 0) + 1)


def state_version(value: t.Any) -> int | None:
    """A table version from state, if it is one (state comes from outside)."""
    return value if type(value) is int and value > 0 else None


def prune_partitions(stream_state: dict[str, t.Any], in_scope: t.Container[str]) -> None:
    """Drop the state of projects no longer read, once their rows are reconciled away."""
    if isinstance(stream_state.get("partitions"), list):
        stream_state["partitions"] = [
            partition
            for project_id, partition in saved_partitions(stream_state).items()
            if project_id in in_scope
        ]


def later_of(*moments: str | None) -> str | None:
    """The latest of some timestamps (any ISO 8601 form), in the bookmark format."""
    parsed = [parse_timestamp(m) for m in moments if m]
    return format_timestamp(max(parsed)) if parsed else None


def _lazy(
    partition_for: t.Callable[[str], dict[str, t.Any]], project_id: str
) -> t.Callable[[], dict[str, t.Any]]:
    cache: list[dict[str, t.Any]] = []

    def partition() -> dict[str, t.Any]:
        if not cache:
            cache.append(partition_for(project_id))
        return cache[0]

    return partition


def _legacy_bookmark(
    stream_state: dict[str, t.Any], replication_key: str, logger: logging.Logger
) -> str | None:
    value = stream_state.get(BOOKMARK)
    if not value or stream_state.get("replication_key", replication_key) != replication_key:
        return None
    bookmark = _read(value, "(every project: stream-level bookmark)", BOOKMARK)
    logger.info(
        "The state holds a stream-level bookmark, %s (an older layout): every project is "
        "read from it unless it has a bookmark of its own",
        bookmark,
    )
    return bookmark


def _read(value: t.Any, project_id: str, key: str) -> str | None:
    """A timestamp from state, normalised; None if absent."""
    if value is None or value == "":
        return None
    try:
        return format_timestamp(parse_timestamp(str(value) if isinstance(value, str) else ""))
    except (ValueError, OverflowError):
        msg = (
            f"The state of feedback project {project_id} holds an unusable {key}: "
            f"{str(value)[:60]!r} is not an ISO 8601 timestamp. Correct it or clear the "
            "state (meltano state clear <state id>)"
        )
        raise StateError(msg) from None
