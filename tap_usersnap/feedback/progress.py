"""Progress of long backfills: how far each project is, of how many, and the time left.

Quiet on short runs: nothing is logged before ``interval`` seconds have passed, and a
project's total (one count request) is only asked for once it is worth telling.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import typing as t

#: Seconds between progress lines.
INTERVAL_SECONDS = 10.0


@dataclasses.dataclass
class _Project:
    started: float
    read: int = 0
    total: int | None = None
    told: bool = False


class BackfillProgress:
    """Counts each project's items as they are emitted and logs a line every ``interval``."""

    def __init__(
        self,
        count_total: t.Callable[[str], int | None],
        logger: logging.Logger,
        *,
        interval: float = INTERVAL_SECONDS,
        clock: t.Callable[[], float] = time.monotonic,
    ) -> None:
        self._count_total = count_total
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._projects: dict[str, _Project] = {}
        self._next_line = clock() + interval

    def read(self, project_id: str, items: int) -> None:
        """``items`` more of the project's items are out; log if a line is due."""
        now = self._clock()
        project = self._projects.setdefault(project_id, _Project(started=now))
        project.read += items
        if now < self._next_line:
            return
        self._next_line = now + self._interval
        for pid, state in self._projects.items():
            self._tell(pid, state, now)

    def done(self, project_id: str) -> None:
        """The project is read; its last line, if any was logged for it."""
        project = self._projects.pop(project_id, None)
        if project is not None and project.told:
            elapsed = self._clock() - project.started
            self._logger.info(
                "Progress: project %s done, %d items read in %s",
                project_id,
                project.read,
                _duration(elapsed),
            )

    def _tell(self, project_id: str, project: _Project, now: float) -> None:
        if project.total is None:
            project.total = self._count_total(project_id)
        project.told = True
        if not project.total:  # the API would not say
            self._logger.info("Progress: project %s, %d items read", project_id, project.read)
            return
        if project.read >= project.total:  # never 100% while the read goes on
            self._logger.info(
                "Progress: project %s, %d items read, more than the %d Usersnap counted at "
                "the start; still reading",
                project_id,
                project.read,
                project.total,
            )
            return
        total = project.total
        rate = project.read / max(now - project.started, 1e-9)
        left = (total - project.read) / rate if rate else float("inf")
        self._logger.info(
            "Progress: project %s, %d of %d items read (%.1f%%), about %s left",
            project_id,
            project.read,
            total,
            100.0 * project.read / total,
            _duration(left),
        )


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "an unknown time"
    seconds = round(seconds)
    if seconds < 60:  # noqa: PLR2004 - a minute
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:  # noqa: PLR2004 - an hour
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
