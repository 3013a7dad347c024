"""The projects stream: every project the key can see, listed once and shared with the others."""

from __future__ import annotations

import typing as t

from singer_sdk import StreamSchema
from typing_extensions import override

from tap_usersnap.http.errors import RequestRefusedError, UsersnapError
from tap_usersnap.http.loggable import describe_project
from tap_usersnap.http.pagination import ListingPaginator
from tap_usersnap.records.schemas import SCHEMAS
from tap_usersnap.streams.base import UsersnapStream

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context


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

    _paginator: ListingPaginator | None = None

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

        One request with no query parameters, as the spec has it: it documents ``has_more``
        and ``count`` but no cursor. An answer that says ``has_more`` is not whole: its
        projects are synced, nothing is retired on its strength, and the run fails at the
        end naming the numbers.
        """
        try:
            projects = list(self.read_records(None))
        except RequestRefusedError as exc:
            msg = (
                f"{exc}: the REST API is not enabled for this workspace's plan (it needs an "
                "Enterprise plan), or this API key may not list projects"
            )
            raise UsersnapError(msg) from exc
        data = self._paginator.data if self._paginator else {}
        complete = not data.get("has_more")
        if not complete:
            self.run.report.listing_cut_short(len(projects), data.get("count", "unknown"))
        return self._keyed(projects), complete

    @override
    def get_new_paginator(self) -> ListingPaginator:  # type: ignore[override]
        """One answer: the listing has no cursor."""
        self._paginator = ListingPaginator()
        return self._paginator

    @override
    def get_url_params(
        self, context: Context | None, next_page_token: str | None
    ) -> dict[str, t.Any]:
        """None: ``GET /projects`` takes no query parameter."""
        return {}

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Emit the shared listing (copies, so emitting never alters it)."""
        self.version_full_table()
        for project in self.run.listing.projects():
            yield dict(project)
