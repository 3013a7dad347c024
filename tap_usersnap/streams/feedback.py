"""The feedback stream: the SDK's side of the incremental engine (:mod:`tap_usersnap.feedback`).

It describes each feedback request through the SDK's ``get_http_request`` hook, from the
request's :class:`~tap_usersnap.feedback.requests.FeedbackQuery` (its kind alone decides
path, body and paging), and hands the engine what it reads through and writes to.
"""

from __future__ import annotations

import dataclasses
import functools
import typing as t

from singer_sdk import StreamSchema
from singer_sdk.streams.rest import HTTPRequest, PageContext
from typing_extensions import override

from tap_usersnap.feedback.deletes import scope_gaps
from tap_usersnap.feedback.engine import FeedbackSync
from tap_usersnap.feedback.requests import (
    FILTER_PATH,
    FeedbackQuery,
    project_exists,
    total_count,
)
from tap_usersnap.feedback.state import REPLICATION_KEY
from tap_usersnap.records.schemas import SCHEMAS
from tap_usersnap.sdk_private import ProjectBookmarks
from tap_usersnap.streams.base import UsersnapStream

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_usersnap.http.client import Page

FULL_TABLE = "FULL_TABLE"


@dataclasses.dataclass(slots=True)
class QueryPage(PageContext[str | None]):
    """The SDK's page context of one feedback request: which query, which page."""

    query: FeedbackQuery


class FeedbackStream(ProjectBookmarks, UsersnapStream):
    """Feedback items, oldest first, incrementally by ``created_at``, a bookmark per project.

    Read with ``POST /projects/{project_id}/feedbacks/filter`` filtered on
    ``created_at gte <bookmark>`` and ordered by ``created_at`` ascending, so a resumed run
    loses nothing. Items created at the bookmark's instant are read again (the target
    upserts on ``feedback_id``). With ``capture_edits`` (the default), each project's read
    starts with an edit scan (:mod:`tap_usersnap.feedback.edits`).
    """

    name = "feedback"
    path = FILTER_PATH  # the SDK's metrics name the endpoint by it
    http_method = "POST"
    primary_keys = ("feedback_id",)
    replication_key = REPLICATION_KEY
    is_sorted = True
    records_key = "feedbacks"
    id_key = "feedback_id"
    schema = StreamSchema(SCHEMAS)

    #: This run's engine (None until the stream syncs).
    engine: FeedbackSync | None = None

    @property
    @override
    def partitions(self) -> None:
        """None: the SDK reads the stream in one pass; the engine reads the projects.

        Projects are read concurrently, so not as SDK partitions, one after another. State
        is still one partition per project (:mod:`tap_usersnap.feedback.state`).
        """
        return None

    @property
    def full_table(self) -> bool:
        """The catalog asks for FULL_TABLE: read everything, state bookmarks aside."""
        return self.replication_method == FULL_TABLE

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict[str, t.Any]]:
        """Every project's records, from the engine (STATE after each page)."""
        listing = self.run.listing
        engine = self.engine = FeedbackSync(
            self,
            self,
            settings=self.settings,
            state=self.stream_state,
            partition_for=lambda pid: self.get_context_state({"project_id": pid}),
            full_table=self.full_table,
            project_ids=list(self.settings.project_ids)
            or [p["project_id"] for p in listing.projects()],
            project_names=listing.names(),
            scope_gaps=self.scope_gaps,
            table_version=self.run.table_version,
            report=self.run.report,
            logger=self.logger,
        )
        return engine.records()

    def finish_deletes(self, held: list[str]) -> None:
        """After the last record of a full read: ACTIVATE_VERSION, unless ``held`` or short."""
        if self.selected and self.engine is not None:
            self.engine.finish(held)

    def scope_gaps(self, known: set[str]) -> tuple[list[str], list[str]]:
        """Known projects Usersnap confirms gone, and why no deletion may apply this run."""
        listing = self.run.listing
        return scope_gaps(
            known,
            listed=listing.ids(),
            complete=listing.complete,
            wanted=self.settings.project_ids,
            exists=self.project_exists,
        )

    @functools.cache  # noqa: B019 - one stream per run; an answer per project, asked once
    def project_exists(self, project_id: str) -> bool | None:
        """Whether Usersnap still knows the project; None if it will not say."""
        return project_exists(self.count, project_id, self.logger)

    def pages(self, query: FeedbackQuery) -> t.Iterator[Page]:
        """Every page of a feedback read (the engine's :class:`FeedbackApi`)."""
        context = {"project_id": query.project_id}
        return self.read_pages(context, lambda token: QueryPage(context, token, query))

    def count(self, query: FeedbackQuery) -> int:
        """The count a count request answers (the engine's :class:`FeedbackApi`)."""
        context = {"project_id": query.project_id}
        return self.run.client.send(
            self.prepared(QueryPage(context, None, query)),
            total_count,
            observe=self.observer(context),
        )

    def map(self, func: t.Callable[[t.Any], t.Any], items: t.Sequence[t.Any]) -> list[t.Any]:
        """Per-project requests, some at once (the engine's :class:`FeedbackApi`)."""
        return self.run.client.map(func, items)

    @override
    def get_http_request(self, *, page: PageContext[str | None]) -> HTTPRequest:
        """The request of the page's query: its path, body and cursor parameters."""
        if not isinstance(page, QueryPage):
            msg = "a feedback request needs its FeedbackQuery (a QueryPage)"
            raise TypeError(msg)
        query = page.query
        return HTTPRequest(
            url=f"{self.url_base}{query.path}",
            method=self.http_method,
            headers=self.http_headers,
            params=query.params(self.settings.page_size, page.next_page_token),
            data=query.body(),
        )
