"""What a run could not deliver as asked, told as it happens and summed up at the end.

Nothing is skipped silently: each skipped or altered item, skipped project and refused
endpoint is logged when it happens (naming it, never its content) and counted; the run
ends with one summary line. A skipped project also fails the run, after every other
project was delivered.
"""

from __future__ import annotations

import logging
import re
import threading

from tap_usersnap.http.errors import ProjectNotFoundError, UsersnapError

#: The answer inside a failure's text: ``(403 FORBIDDEN: …)``, ``(400 SITE_NOT_FOUND on …)``.
_ANSWER = re.compile(r"\((\d{3} [A-Z_]+[^)]*)\)")


class RunReport:
    """The run's skipped and altered things; safe to use from the read-ahead threads."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._lock = threading.Lock()
        self.skipped_items = 0
        self.altered_items = 0
        self.noted_items = 0
        self.skipped_projects: list[str] = []
        #: What Usersnap answered for each skipped project.
        self.project_answers: dict[str, str] = {}
        #: Why the project listing is not the whole list, if it is not (one line).
        self.listing_short: str | None = None
        self.refused: list[str] = []
        #: Tables whose deletions were not applied this run, each with why.
        self.held_deletes: list[str] = []
        #: Projects whose deletions could not be checked this run.
        self.unchecked: list[str] = []

    def skipped_item(self, what: str, problem: str) -> None:
        """An item that cannot be keyed or bookmarked: skipped, the others go on."""
        self._logger.warning("Skipped %s: %s", what, problem)
        with self._lock:
            self.skipped_items += 1

    def altered_item(self, what: str, change: str) -> None:
        """An item emitted with a value replaced."""
        self._logger.warning("Changed %s: %s", what, change)
        with self._lock:
            self.altered_items += 1

    def skipped_out_of_scope(self, project_id: str, count: int, scope_start: str) -> None:
        """Items the API sent though created before the scope's start: not emitted."""
        self._logger.warning(
            "Skipped %d item(s) of project %s created before the scope's start, %s: the API "
            "ignored the created_at filter",
            count,
            project_id,
            scope_start,
        )
        with self._lock:
            self.skipped_items += count

    def noted_item(self, what: str, problem: str) -> None:
        """An item emitted as it came, with something the run had to work around."""
        self._logger.warning("Noted %s: %s", what, problem)
        with self._lock:
            self.noted_items += 1

    def skipped_project(self, project_id: str, error: Exception) -> None:
        """A project Usersnap refuses or does not know: the others go on, the run fails.

        At the end of the run; its rows stay, and the next run tries it again.
        """
        self._logger.error("%s; skipping it, the other projects continue", error)
        found = _ANSWER.search(str(error))
        with self._lock:
            if project_id not in self.skipped_projects:
                self.skipped_projects.append(project_id)
                self.project_answers[project_id] = found.group(1) if found else str(error)

    def listing_cut_short(self, listed: int, count: object) -> None:
        """``GET /projects`` said ``has_more`` and gave no way on: the run fails at the end.

        Every listed project is still read and delivered; nothing is retired on the
        strength of that listing.
        """
        self.listing_short = (
            f"The Usersnap project listing (GET /projects) is not complete: it listed "
            f"{listed} project(s) of a count of {count}, said has_more, and gives no way to "
            "the rest (the API documents no cursor for it); the listed projects were synced, "
            "no deletion was applied"
        )
        self._logger.warning("%s", self.listing_short)

    def refused_endpoint(self, what: str, error: Exception) -> None:
        """An optional endpoint the key may not read (403): skipped, the run goes on."""
        self._logger.warning("%s; skipped %s, the rest of the run continues", error, what)
        with self._lock:
            self.refused.append(what)

    def detection_skipped(self, project_id: str, error: Exception) -> None:
        """A project's deletion count failed: not checked this run, its new items still load."""
        self._logger.warning(
            "Deletion detection skipped for project %s this run (its new feedback still "
            "loads; the next run counts again): %s",
            project_id,
            error,
        )
        with self._lock:
            self.unchecked.append(project_id)

    def deletes_held(self, what: str, why: str) -> None:
        """No ACTIVATE_VERSION for ``what``: every row stays, the next run tries again."""
        self._logger.warning(
            "Deletions not applied to %s, every row stays and the next run tries again: %s",
            what,
            why,
        )
        with self._lock:
            self.held_deletes.append(what)

    def finish(self) -> None:
        """Log the summary; raise if a project had to be skipped."""
        if self.skipped_items or self.altered_items or self.refused:
            self._logger.warning(
                "Run summary: %d feedback item(s) skipped (no feedback_id or no usable "
                "created_at), %d emitted with a value replaced, %d endpoint(s) refused; each "
                "is named in a warning above",
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
        failures = [self.listing_short] if self.listing_short else []
        if self.skipped_projects:
            names = ", ".join(repr(p) for p in self.skipped_projects)
            answers = "; ".join(f"{p!r}: {self.project_answers[p]}" for p in self.skipped_projects)
            failures.append(
                f"Skipped {len(self.skipped_projects)} Usersnap project(s) that Usersnap refused "
                f"or does not know: {names}; every other project was synced, the skipped "
                f"one(s) keep their rows and are tried again next run (Usersnap answered "
                f"{answers}). Check the project_ids setting and the key's access if the "
                "project should be read"
            )
            raise ProjectNotFoundError(". ".join(failures))
        if failures:
            raise UsersnapError(failures[0])
