"""The assignees stream: who feedback can be assigned to, in each project of the listing."""

from __future__ import annotations

import functools
import typing as t

from singer_sdk import StreamSchema
from typing_extensions import override

from tap_usersnap.http.errors import (
    EndpointNotFoundError,
    ProjectNotFoundError,
    RequestRefusedError,
)
from tap_usersnap.records.schemas import SCHEMAS
from tap_usersnap.streams.base import UsersnapStream

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context


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
    def partitions(self) -> None:
        """None: one pass; :meth:`get_records` reads the projects, some at once.

        Their requests overlap, bounded by the run's ``concurrency``.

        Each project's context is ``{project_id}``: the api_key stays out of it, so the SDK's
        metrics and logs, which print every context, do not repeat it.
        """
        return None

    @functools.cached_property
    def _api_keys(self) -> dict[str, str]:
        api_keys = {}
        for project in self.run.listing.projects():
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
        """Every project's assignees, in the listing's order; each project read on its own."""
        self.version_full_table()
        project_ids = list(self._api_keys)
        for records in self.run.client.map(self._project_assignees, project_ids):
            yield from records

    def _project_assignees(self, project_id: str) -> list[dict[str, t.Any]]:
        """One project's assignees; a 404 or an empty list is logged, not an error."""
        records = []
        try:
            for record in self.read_records({"project_id": project_id}):
                record["project_id"] = project_id  # the key's other half
                records.append(record)
        except EndpointNotFoundError as exc:
            self.logger.info("Project %s has no assignees endpoint (%s); skipped", project_id, exc)
            return []
        except RequestRefusedError as exc:
            self.run.report.refused_endpoint(f"the assignees of project {project_id}", exc)
            return []
        except ProjectNotFoundError as exc:
            self.run.report.skipped_project(project_id, exc)
            return []
        if not records:
            self.logger.info("Project %s has no assignees", project_id)
        return records
