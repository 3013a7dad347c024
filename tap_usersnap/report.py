"""What a run could not deliver as asked, told as it happens and summed up at its end.

Nothing is skipped silently: each skipped or altered item, refused project and held-back
deletion is logged when it happens (naming it, never its content) and counted; the run ends
with a summary. A refused project or a partial project listing also fails the run, after
everything else was delivered.
"""

from __future__ import annotations

import logging
import threading
import time

#: Seconds between progress lines of a long read.
PROGRESS_SECONDS = 10.0


def project_label(name: object, project_id: str) -> str:
    """How logs name a project: ``'Web app' (<id>)``, or its id alone when it has no name."""
    return f"{name!r} ({project_id})" if name else str(project_id)


class RunReport:
    """The run's skipped and altered things; safe to use from several threads."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._lock = threading.Lock()
        self.skipped_items = 0
        self.altered_items = 0
        self.noted_items = 0
        #: Each refused project's id, with the answer (the run fails at its end).
        self.refused_projects: dict[str, str] = {}
        #: Endpoints a run can do without that were refused (assignees).
        self.refused: list[str] = []
        self.held_deletes: list[str] = []
        self.unchecked: list[str] = []
        #: Why the run must fail at its end although every other project was delivered.
        self.failures: list[str] = []
        self._next_progress = time.monotonic() + PROGRESS_SECONDS

    def skipped_item(self, what: str, problem: str, count: int = 1) -> None:
        """An item (or ``count``) that cannot be loaded: skipped, the others go on."""
        self._logger.warning("Skipped %s: %s", what, problem)
        with self._lock:
            self.skipped_items += count

    def altered_item(self, what: str, change: str) -> None:
        """A record emitted with a value replaced."""
        self._logger.warning("Changed %s: %s", what, change)
        with self._lock:
            self.altered_items += 1

    def noted_item(self, what: str, problem: str) -> None:
        """A record emitted as it came, with something the run had to work around."""
        self._logger.warning("Noted %s: %s", what, problem)
        with self._lock:
            self.noted_items += 1

    def refused_project(self, project: str, project_id: str, error: Exception) -> None:
        """A project Usersnap refuses: the others go on, the run fails at its end."""
        self._logger.error("%s; skipping project %s, the other projects continue", error, project)
        with self._lock:
            self.refused_projects.setdefault(project_id, getattr(error, "answer", str(error)))

    def refused_endpoint(self, what: str, error: Exception) -> None:
        """An endpoint the run can do without was refused: skipped, the run goes on."""
        self._logger.warning("%s; skipped %s, the rest of the run continues", error, what)
        with self._lock:
            self.refused.append(what)

    def detection_skipped(self, project: str, error: Exception) -> None:
        """A project's deletion count failed: not checked this run, its new items still load."""
        self._logger.warning(
            "Deletion detection skipped for project %s this run (its new feedback still "
            "loads; the next run counts again): %s",
            project,
            error,
        )
        with self._lock:
            self.unchecked.append(project)

    def deletes_held(self, what: str, why: str) -> None:
        """No ACTIVATE_VERSION for ``what``: every row stays, the next run tries again."""
        self._logger.warning(
            "Deletions not applied to %s, every row stays and the next run tries again: %s",
            what,
            why,
        )
        with self._lock:
            self.held_deletes.append(what)

    def progress(self, project: str, read: int, expected: int | None) -> None:
        """A project's items read so far; one line every :data:`PROGRESS_SECONDS` at most."""
        now = time.monotonic()
        if now < self._next_progress:
            return
        self._next_progress = now + PROGRESS_SECONDS
        of = f" of {expected}" if expected and expected > read else ""
        self._logger.info("Progress: project %s, %d%s items read", project, read, of)

    def finish(self) -> str | None:
        """Log the summary; why the run fails at its end (a refused project), if it must."""
        if self.skipped_items or self.altered_items or self.refused:
            self._logger.warning(
                "Run summary: %d item(s) skipped, %d emitted with a value replaced, %d "
                "endpoint(s) refused; each is named in a warning above",
                self.skipped_items,
                self.altered_items,
                len(self.refused),
            )
        if self.noted_items:
            self._logger.warning(
                "Run summary: %d feedback item(s) emitted with a warning (named above)",
                self.noted_items,
            )
        if self.unchecked:
            self._logger.warning(
                "Run summary: deletions not checked this run for %d project(s) (their count "
                "failed: %s); the next run checks again",
                len(self.unchecked),
                ", ".join(self.unchecked),
            )
        if self.held_deletes:
            self._logger.warning(
                "Run summary: deletions held back for %s (a warning above says why); "
                "nothing was removed from them",
                ", ".join(dict.fromkeys(self.held_deletes)),
            )
        failures = list(self.failures)
        if self.refused_projects:
            names = ", ".join(repr(p) for p in self.refused_projects)
            answers = "; ".join(f"{p!r}: {a}" for p, a in self.refused_projects.items())
            failures.append(
                f"Skipped {len(self.refused_projects)} Usersnap project(s) that Usersnap refused "
                f"or does not know: {names}; every other project was synced, the skipped "
                f"one(s) keep their rows and are tried again next run (Usersnap answered "
                f"{answers}). Check the project_ids setting and the key's access if the "
                "project should be read"
            )
        return ". ".join(failures) if failures else None
