"""How many feedback items a project holds in a ``created_at`` range: one request each.

``POST /projects/{project_id}/feedbacks/filter/count`` takes the filter endpoint's ``query``.
Deletes compare the count before a bookmark with the state's and check that a full read
delivered what the project holds; progress lines use the same count of what a read asks for,
taken once.
"""

from __future__ import annotations

import logging
import typing as t

from tap_usersnap.errors import CredentialsRejectedError, ProjectNotFoundError, UsersnapError
from tap_usersnap.filters import Condition, created_before, created_from

if t.TYPE_CHECKING:
    from tap_usersnap.project_state import ProjectState


class FeedbackCounts:
    """Counts through a stream's retried POST."""

    def __init__(
        self,
        post_json: t.Callable[[str, dict[str, t.Any]], dict[str, t.Any]],
        *,
        url_base: str,
        start_date: str | None,
        logger: logging.Logger,
    ) -> None:
        self._post_json = post_json
        self._url_base = url_base
        self._start_date = start_date
        self._logger = logger
        self._to_read: dict[tuple[str, str | None], int | None] = {}

    def before_bookmark(self, project: ProjectState) -> int:
        """Items created before the project's bookmark, from ``start_date`` on."""
        query = [created_before(str(project.bookmark))]
        if self._start_date:
            query.insert(0, created_from(self._start_date))
        return self._count(project.project_id, query)

    def to_read(self, project: ProjectState) -> int | None:
        """Items the project's read asks for, counted once per run; None if the API won't say."""
        key = (project.project_id, project.start)
        if key not in self._to_read:
            self._to_read[key] = self.recount(project)
        return self._to_read[key]

    def recount(self, project: ProjectState) -> int | None:
        """Items the project's read asks for, now; None if the API will not say."""
        try:
            return self._count(
                project.project_id, [created_from(project.start)] if project.start else []
            )
        except CredentialsRejectedError:
            raise
        except UsersnapError as exc:
            self._logger.warning(
                "Could not count the feedback of project %s: %s", project.project_id, exc
            )
            return None

    def exists(self, project_id: str) -> bool | None:
        """Whether Usersnap still knows the project (its count answers); None: it won't say."""
        try:
            self._count(project_id, [])
        except ProjectNotFoundError:
            return False
        except CredentialsRejectedError:
            raise
        except UsersnapError as exc:
            self._logger.warning("Could not ask Usersnap about project %s: %s", project_id, exc)
            return None
        return True

    def _count(self, project_id: str, query: list[Condition]) -> int:
        url = f"{self._url_base}/projects/{project_id}/feedbacks/filter/count"
        total = self._post_json(url, {"query": query}).get("total_count")
        if not isinstance(total, int):
            msg = f"Usersnap's count of project {project_id} holds no total_count"
            raise UsersnapError(msg)
        return total
