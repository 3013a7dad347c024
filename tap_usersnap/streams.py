"""The Usersnap streams: one class per stream."""

from __future__ import annotations

import functools
import typing as t
from http import HTTPStatus

from singer_sdk import StreamSchema
from typing_extensions import override

from tap_usersnap.client import UsersnapStream
from tap_usersnap.envelope import describe_request
from tap_usersnap.errors import (
    EndpointNotFoundError,
    ProjectNotFoundError,
    RequestRefusedError,
    UsersnapError,
)
from tap_usersnap.feedback import FeedbackStream
from tap_usersnap.items import MAX_QUOTED
from tap_usersnap.pagination import UsersnapCursorPaginator
from tap_usersnap.schemas import SCHEMAS

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context, Record


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

    _listing: list[dict[str, t.Any]] | None = None
    _paginator: UsersnapCursorPaginator | None = None
    #: False when the listing stopped early: a project missing from it may exist.
    listing_complete = True

    def listing(self) -> list[dict[str, t.Any]]:
        """The projects in scope, fetched once per run and shared with the other streams."""
        if self._listing is None:
            wanted = self.usersnap.project_ids
            projects = self._keyed(p for p in self._list_all() if isinstance(p, dict))
            if wanted:
                projects = [p for p in projects if p.get("project_id") in wanted]
            self._listing = projects
        return self._listing

    @property
    def known_project_ids(self) -> set[str]:
        """The projects whose rows (and assignees) the warehouse holds, as the state says."""
        known = self.stream_state.get(KNOWN_PROJECTS)
        return {p for p in known if isinstance(p, str)} if isinstance(known, list) else set()

    def remember_listed(self, *, retired: bool) -> None:
        """Keep the listed projects in state; with ``retired``, the others' rows are gone."""
        listed = {p.get("project_id") for p in self.listing()} - {None}
        keep = listed if retired else listed | self.known_project_ids
        self.stream_state[KNOWN_PROJECTS] = sorted(t.cast("set[str]", keep))

    def _keyed(self, projects: t.Iterable[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
        """The listed projects that have a project_id; the others skipped, by position."""
        keyed = []
        for position, project in enumerate(projects, start=1):
            if isinstance(project.get("project_id"), str) and project["project_id"]:
                keyed.append(project)
                continue
            name = project.get("name")
            named = f" ({str(name)[:MAX_QUOTED]!r})" if isinstance(name, str) else ""
            what = f"project {position}{named} of the projects listing"
            self.usersnap.report.skipped_item(what, "it has no project_id")
        return keyed

    def _list_all(self) -> list[dict[str, t.Any]]:
        """Every page of ``GET /projects``.

        The listing documents ``has_more`` but no ``next``: if the API refuses the cursor
        taken from the last project's id, the run goes on with the projects listed so far.
        """
        projects: list[dict[str, t.Any]] = []
        try:
            for project in self.request_records(None):
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
            self.listing_complete = False
            self.logger.warning(
                "Listing projects stopped after %d: Usersnap refused the next page's cursor "
                "(%s); going on with the projects listed (no deletion is applied this run)",
                len(projects),
                exc,
            )
        return projects

    @override
    def get_new_paginator(self) -> UsersnapCursorPaginator:
        """The paginator, kept to tell a refused fallback cursor from other failures."""
        self._paginator = super().get_new_paginator()
        return self._paginator

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Emit the shared listing (copies, so emitting never alters it)."""
        self.version_full_table()
        for project in self.listing():
            yield dict(project)


class ProjectAssigneesStream(UsersnapStream):
    """Who feedback can be assigned to in each project: ``GET /projects/{api_key}/assignees``.

    One partition per project of the shared projects listing, so ``project_ids`` applies and
    ``GET /projects`` is not repeated; the listing also gives each project's ``api_key``,
    which keys this endpoint. Full table, as the API has no change marker for users. A
    project whose endpoint answers 404, or that has no assignees, emits nothing; one whose
    endpoint is refused (403) is skipped with a warning.
    """

    name = "project_assignees"
    path = "/projects/{api_key}/assignees"
    primary_keys = ("project_id", "user_id")
    replication_key = None
    records_key = "users"
    id_key = "user_id"
    #: Full table has no bookmark: one stream-level state, not an entry per project.
    state_partitioning_keys: t.ClassVar[list[str]] = []
    schema = StreamSchema(SCHEMAS)

    @property
    @override
    def partitions(self) -> list[dict[str, t.Any]]:
        """``{project_id}`` of every project in scope that has an api_key.

        The api_key itself stays out of the context, so the SDK's metrics and logs, which
        print every context, do not repeat it; :meth:`get_url` looks it up.
        """
        return [{"project_id": project_id} for project_id in self._api_keys]

    @functools.cached_property
    def _api_keys(self) -> dict[str, str]:
        api_keys = {}
        for project in self.usersnap.projects_listing():
            if project.get("api_key"):
                api_keys[project["project_id"]] = project["api_key"]
            else:
                self.logger.info(
                    "Project %s has no api_key: no assignees to read", project["project_id"]
                )
        return api_keys

    @override
    def get_url(self, context: Context | None) -> str:
        """The endpoint of the context's project, keyed by that project's api_key."""
        project_id = (context or {})["project_id"]
        return super().get_url({"api_key": self._api_keys[project_id]})

    @override
    def get_url_params(
        self,
        context: Context | None,
        next_page_token: str | None,
    ) -> dict[str, t.Any]:
        """No parameters (the spec documents none); ``after`` only if the API ever pages."""
        return {"after": next_page_token} if next_page_token else {}

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """The project's assignees; a 404 or an empty list is logged, not an error."""
        self.version_full_table()
        if not context:
            return  # no project in scope: the SDK still calls once, with an empty context
        project_id = context["project_id"]
        count = 0
        try:
            for record in super().get_records(context):
                count += 1
                yield record
        except EndpointNotFoundError as exc:
            self.logger.info("Project %s has no assignees endpoint (%s); skipped", project_id, exc)
            return
        except RequestRefusedError as exc:
            self.usersnap.report.refused_endpoint(f"the assignees of project {project_id}", exc)
            return
        except ProjectNotFoundError as exc:
            self.usersnap.report.skipped_project(project_id, exc)
            return
        if count == 0:
            self.logger.info("Project %s has no assignees", project_id)

    @override
    def validate_response(self, response: requests.Response) -> None:
        """A 404 means this project has no assignees endpoint; the rest as for any stream."""
        if response.status_code == HTTPStatus.NOT_FOUND:
            msg = f"Usersnap answered 404 to {describe_request(response)}"
            raise EndpointNotFoundError(msg)
        super().validate_response(response)

    @override
    def post_process(self, row: Record, context: Context | None = None) -> Record | None:
        """Add ``project_id``, the key's other half (the api_key is in the projects stream)."""
        row["project_id"] = (context or {})["project_id"]
        return row


__all__ = ["FeedbackStream", "ProjectAssigneesStream", "ProjectsStream"]
