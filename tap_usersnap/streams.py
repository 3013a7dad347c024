"""The full-table streams: projects (listed once, shared by every stream) and assignees.

Both are read in full each run; with ``capture_deletes`` their records carry a new table
version, activated at the run's end unless a project may be missing (see the tap).
"""

from __future__ import annotations

import collections
import typing as t

from singer_sdk.pagination import SinglePagePaginator
from typing_extensions import override

from tap_usersnap.base import Listing, UsersnapStream
from tap_usersnap.client import (
    ProjectRefusedError,
    UsersnapError,
    describe,
    envelope_data,
    project_url,
    said_more,
)
from tap_usersnap.deletes import ACTIVE, new_version, state_version
from tap_usersnap.records import (
    MAX_QUOTED,
    conform,
    key_problem,
    project_id_problem,
    project_label,
)

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context

#: Projects stream state key: the projects listed by the last run whose deletions applied.
KNOWN_PROJECTS = "project_ids"


class FullTableStream(UsersnapStream):
    """A stream read in full each run, under a new table version (with ``capture_deletes``)."""

    replication_key = None
    #: This run's table version (None: deletes are off).
    version: int | None = None

    def start_version(self) -> None:
        """With ``capture_deletes``, RECORDs carry a version later than the active one.

        Without, they carry the active one, if deletes were on before: an SDK SQL sink
        never retires a row whose version a record without one set to null.
        """
        active = state_version(self.stream_state, ACTIVE, self.logger, self.name)
        if not self.run.settings.capture_deletes:
            self.use_table_version(active)
        elif self.version is None:
            self.version = new_version(self.run.table_version, active)
            self.use_table_version(self.version)

    @override
    def get_new_paginator(self) -> SinglePagePaginator:  # type: ignore[override]
        """One page: the spec gives these endpoints no cursor."""
        return SinglePagePaginator()

    def activate(self) -> None:
        """ACTIVATE_VERSION after the run's records; the version becomes the active one."""
        if self.version is not None and self.selected:
            self.activate_version(self.version)
            self.stream_state[ACTIVE] = self.version


class ProjectsStream(FullTableStream):
    """Every project the key can see (or those in ``project_ids``): ``GET /projects``.

    The spec gives ``/projects`` no parameters and no cursor: when the listing says
    ``has_more`` and offers no way on, every listed project is delivered, no deletion is
    applied on the strength of it, and the run fails at its end naming the numbers.
    """

    name = "projects"
    path = "/projects"
    primary_keys = ("project_id",)
    records_key = "projects"

    _listed_count: int | None = None
    _cut_short = False

    @override
    def parse_response(self, response: requests.Response) -> t.Iterator[dict[str, t.Any]]:
        data = envelope_data(response)
        count = data.get("count")
        self._listed_count, self._cut_short = count if type(count) is int else None, said_more(data)
        yield from super().parse_response(response)

    def list_all(self) -> Listing:
        """The run's listing: every project with an id, conformed, in scope."""
        try:
            listed = list(self.request_records(None))
        except ProjectRefusedError as error:
            msg = (
                f"{error}: the REST API is not enabled for this workspace's plan (it needs an "
                "Enterprise plan), or this API key may not list projects"
            )
            raise UsersnapError(msg) from error
        projects, seen = [], set()
        for position, project in enumerate(listed, start=1):
            problem = project_id_problem(project.get("project_id"))
            if not problem and project["project_id"] in seen:  # its first listing is read
                problem = "its project_id is listed twice"
            if problem:
                name = project.get("name")
                named = f" ({name[:MAX_QUOTED]!r})" if isinstance(name, str) else ""
                self.run.report.skipped_item(
                    f"project {position}{named} of the projects listing", problem
                )
                continue
            for change in conform(project, self.shape):
                self.run.report.altered_item(f"project {project['project_id']}", change)
            seen.add(project["project_id"])
            projects.append(project)
        if self._cut_short:
            short = (
                f"The Usersnap project listing (GET /projects) is not complete: it listed "
                f"{len(listed)} project(s) of a count of {self._listed_count or 'unknown'}, said "
                "has_more, and gives no way to the rest (the API documents no cursor for it); "
                "the listed projects were synced, no deletion was applied"
            )
            self.logger.warning("%s", short)
            self.run.report.failures.append(short)
        wanted = set(self.run.settings.project_ids)
        in_scope = [p for p in projects if not wanted or p["project_id"] in wanted]
        return Listing(in_scope, complete=not self._cut_short)

    @property
    def known_project_ids(self) -> set[str]:
        """The projects whose rows (and assignees) the warehouse holds, as the state says."""
        known = self.stream_state.get(KNOWN_PROJECTS)
        return {p for p in known if not project_id_problem(p)} if isinstance(known, list) else set()

    def remember_listed(self, *, retired: bool) -> None:
        """Keep the listed projects in state; with ``retired``, the others' rows are gone."""
        listed = self.run.listing.ids()
        keep = listed if retired else listed | self.known_project_ids
        self.stream_state[KNOWN_PROJECTS] = sorted(keep)

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """The shared listing (copies, so emitting never alters it)."""
        self.start_version()
        yield from (dict(project) for project in self.run.listing.projects)


class ProjectAssigneesStream(FullTableStream):
    """Who feedback can be assigned to in each project: ``GET /projects/{api_key}/assignees``.

    The listing gives each project's ``api_key``, which keys this endpoint; the projects are
    read some at once (``concurrency``). A project whose endpoint is refused (403, 404) or
    pages where the spec has no cursor keeps its rows: the stream's deletions wait.
    """

    name = "project_assignees"
    path = "/projects/{api_key}/assignees"
    primary_keys = ("project_id", "user_id")
    records_key = "users"
    state_partitioning_keys: t.ClassVar[list[str]] = []
    #: Why a project's assignees could not all be read this run (deletions then wait).
    unread: list[str]

    @override
    def get_url(self, context: Context | None) -> str:
        """The endpoint of the context's project, keyed by its api_key (kept out of logs)."""
        project_id = (context or {})["project_id"]
        api_key = next(
            p["api_key"] for p in self.run.listing.projects if p["project_id"] == project_id
        )
        return project_url(self.url_base, api_key, "assignees")

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Every listed project's assignees, in the listing's order."""
        self.start_version()
        self.unread, projects = [], []
        keys = collections.Counter(p.get("api_key") for p in self.run.listing.projects)
        for project in self.run.listing.projects:
            label = project_label(project.get("name"), project["project_id"])
            if not project.get("api_key") or keys[project["api_key"]] > 1:
                why = "has no api_key" if not project.get("api_key") else "shares its api_key"
                self.unread.append(f"project {label} {why}")
                self.logger.warning(
                    "Project %s %s in the listing: its assignees cannot be read", label, why
                )
            else:
                projects.append(project)
        try:
            for records in self.at_once(self._assignees, projects):
                yield from records
        except Exception:
            self.write_records_out()  # the projects' before the failure
            raise

    def _assignees(self, project: dict[str, t.Any]) -> list[dict[str, t.Any]]:
        label = project_label(project.get("name"), project["project_id"])
        context = {"project_id": project["project_id"]}
        try:
            users = list(self.request_records(context))
        except ProjectRefusedError as error:
            self.unread.append("an assignees endpoint was refused")
            self.run.report.refused_endpoint(f"the assignees of project {label}", error)
            return []
        records, seen = [], set()
        for position, user in enumerate(users, start=1):
            user_id = user.get("user_id")
            problem = key_problem(user_id, "user_id")
            if problem or user_id in seen:
                problem = problem or "its user_id is listed twice"
                self.run.report.skipped_item(f"assignee {position} of project {label}", problem)
                self.unread.append(f"an assignee of project {label} was skipped")
                continue
            seen.add(user_id)
            user["project_id"] = project["project_id"]  # the key's other half
            records.append(user)
        if not records:
            self.logger.info("Project %s has no assignees", label)
        return records

    @override
    def parse_response(self, response: requests.Response) -> t.Iterator[dict[str, t.Any]]:
        data = envelope_data(response)
        if any(type(user) is not dict for user in data["users"]):  # skipped by name below
            self.unread.append(f"an entry of {describe(response)} was skipped")
        if said_more(data):
            self.unread.append(f"{describe(response)} said has_more")
            self.logger.warning(
                "Usersnap said has_more for %s, which has no cursor: its first page was "
                "read, and no assignee row is retired this run",
                describe(response),
            )
        yield from super().parse_response(response)
