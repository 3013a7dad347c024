"""The projects stream: every project the key can see, listed once and shared with the others."""

from __future__ import annotations

import typing as t

from singer_sdk import StreamSchema
from typing_extensions import override

from tap_usersnap.http.errors import RequestRefusedError, UsersnapError
from tap_usersnap.http.loggable import describe_project
from tap_usersnap.records.schemas import SCHEMAS
from tap_usersnap.streams.base import UsersnapStream

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_usersnap.http.pagination import UsersnapCursorPaginator


#: Projects stream state key: the projects listed by the last run whose deletions applied.
KNOWN_PROJECTS = "project_ids"


class ProjectsStream(UsersnapStream):
    """Every project the key can see (or those in ``project_ids``): ``GET /projects``."""

    name = "projects"
    path = "/projects"
    primary_keys = ("project_id",)
    replication_key = None
    records_key = "projects"
    id_key = "project_id"
    schema = StreamSchema(SCHEMAS)

    _paginator: UsersnapCursorPaginator | None = None

    @property
    def known_project_ids(self) -> set[str]:
        """The projects whose rows (and assignees) the warehouse holds, as the state says."""
        known = self.stream_state.get(KNOWN_PROJECTS)
        return {p for p in known if isinstance(p, str)} if isinstance(known, list) else set()

    def remember_listed(self, *, retired: bool) -> None:
        """Keep the listed projects in state; with ``retired``, the others' rows are gone."""
        listed = self.run.listing.ids()
        keep = listed if retired else listed | self.known_project_ids
        self.stream_state[KNOWN_PROJECTS] = sorted(keep)

    def _keyed(self, projects: t.Iterable[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
        """The listed projects that have a project_id; the others skipped, by position."""
        keyed = []
        for position, project in enumerate(projects, start=1):
            if isinstance(project.get("project_id"), str) and project["project_id"]:
                keyed.append(project)
                continue
            what = describe_project(position, project.get("name"))
            self.run.report.skipped_item(what, "it has no project_id")
        return keyed

    def list_all(self) -> tuple[list[dict[str, t.Any]], bool]:
        """Every project of ``GET /projects`` that has an id, and whether the listing is whole.

        The listing documents ``has_more`` but no ``next``: if the API refuses the cursor
        taken from the last project's id, the run goes on with the projects listed so far.
        """
        projects: list[dict[str, t.Any]] = []
        complete = True
        try:
            for project in self.read_records(None):
                projects.append(project)
        except RequestRefusedError as exc:
            msg = (
                f"{exc}: the REST API is not enabled for this workspace's plan (it needs an "
                "Enterprise plan), or this API key may not list projects"
            )
            raise UsersnapError(msg) from exc
        except UsersnapError as exc:
            if not (projects and self._paginator and self._paginator.used_fallback):
                raise
            complete = False
            self.logger.warning(
                "Listing projects stopped after %d: Usersnap refused the next page's cursor "
                "(%s); going on with the projects listed (no deletion is applied this run)",
                len(projects),
                exc,
            )
        return self._keyed(projects), complete

    @override
    def get_new_paginator(self) -> UsersnapCursorPaginator:
        """The paginator, kept to tell a refused fallback cursor from other failures."""
        self._paginator = super().get_new_paginator()
        return self._paginator

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Emit the shared listing (copies, so emitting never alters it)."""
        self.version_full_table()
        for project in self.run.listing.projects():
            yield dict(project)
