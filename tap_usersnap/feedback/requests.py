"""The feedback requests: what each kind asks the filter endpoint, and the counts it answers.

Every feedback request is a :class:`FeedbackQuery` of one :class:`RequestKind`, which alone
decides its path, body and paging: new feedback is read oldest first from a ``created_at``
lower bound, so a bookmark can advance page by page; the edit scan reads newest change
first; ``POST …/feedbacks/filter/count`` counts a ``created_at`` range with the same
filters. The stream that sends them implements :class:`FeedbackApi`.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import typing as t

from tap_usersnap.http.errors import ProjectNotFoundError, UsersnapError, result_or_failure
from tap_usersnap.http.loggable import describe_request
from tap_usersnap.http.pagination import cursor_params
from tap_usersnap.http.responses import envelope_data
from tap_usersnap.records.timestamps import filter_value

if t.TYPE_CHECKING:
    import requests

    from tap_usersnap.feedback.state import ProjectState
    from tap_usersnap.http.client import Page

Condition = dict[str, str]
#: Runs a function over items, some at once, results in order (``FeedbackApi.map``).
Parallel = t.Callable[[t.Callable[[t.Any], t.Any], t.Sequence[t.Any]], list[t.Any]]
#: The filter endpoint of a project's feedback (``/count`` after it counts).
FILTER_PATH = "/projects/{project_id}/feedbacks/filter"


class RequestKind(enum.Enum):
    """What a feedback request is for."""

    #: Items created at or after the project's start, oldest first, full pages.
    NEW_FEEDBACK = "new feedback"
    #: Items by newest change first, full pages, until the scan passes the edit mark.
    EDIT_SCAN = "edit scan"
    #: The most recently changed item alone: a first scan only takes the mark.
    EDIT_MARK = "edit mark"
    #: How many items a ``created_at`` range holds.
    COUNT = "count"
    #: The oldest item alone, and the newest: between them a long read's slices are cut.
    OLDEST = "oldest"
    NEWEST = "newest"


@dataclasses.dataclass(frozen=True)
class FeedbackQuery:
    """One feedback request of one project."""

    kind: RequestKind
    project_id: str
    #: ``created_at`` at or after this (None: from the beginning) ...
    created_from: str | None = None
    #: ... and before this (None: up to now).
    created_before: str | None = None

    @property
    def path(self) -> str:
        """The endpoint's path under the API root."""
        path = FILTER_PATH.format(project_id=self.project_id)
        return f"{path}/count" if self.kind is RequestKind.COUNT else path

    def body(self) -> dict[str, t.Any]:
        """The JSON body: the ``created_at`` filters and the order.

        Filter values are whole seconds, the only form the spec shows: ``gte`` the second the
        lower bound falls in, so nothing at or after it is lost (the checks drop what was
        delivered already). A read's ``lt`` is the next whole second (the slice drops the
        rest); a count's ``lt`` is the bound's own second, and the state counts likewise
        (:attr:`ProjectState.count <tap_usersnap.feedback.state.ProjectState.count>`).
        """
        if self.kind in (RequestKind.EDIT_SCAN, RequestKind.EDIT_MARK):
            return {"order_by": {"order_by_type": "updated_at", "direction": "desc"}}
        query = []
        if self.created_from is not None:
            query.append(_condition("gte", filter_value(self.created_from)))
        if self.created_before is not None:
            up = self.kind is not RequestKind.COUNT
            query.append(_condition("lt", filter_value(self.created_before, up=up)))
        if self.kind is RequestKind.COUNT:
            return {"query": query}
        direction = "desc" if self.kind is RequestKind.NEWEST else "asc"
        body: dict[str, t.Any] = {
            "order_by": {"order_by_type": "created_at", "direction": direction}
        }
        if query:
            body["query"] = query
        return body

    def params(self, page_size: int, after: str | None) -> dict[str, t.Any]:
        """The cursor parameters: ``limit`` always, ``after`` from the second page on."""
        if self.kind is RequestKind.COUNT:
            return {}
        one = self.kind in (RequestKind.EDIT_MARK, RequestKind.OLDEST, RequestKind.NEWEST)
        return cursor_params(1 if one else page_size, after)


def _condition(operator: str, moment: str) -> Condition:
    return {"filter_type": "created_at", "operator": operator, "value": moment}


class FeedbackApi(t.Protocol):
    """What the feedback engine asks of the API (the feedback stream sends it)."""

    def pages(self, query: FeedbackQuery) -> t.Iterator[Page]:
        """Every page of a read, empty ones too."""

    def count(self, query: FeedbackQuery) -> int:
        """The ``total_count`` a count request answers."""

    def map(self, func: t.Callable[[t.Any], t.Any], items: t.Sequence[t.Any]) -> list[t.Any]:
        """``func`` over ``items``, some at once (bounded by ``concurrency``), in order."""


def total_count(response: requests.Response) -> int:
    """The count an answer of the count endpoint holds.

    Raises:
        UsersnapError: It holds none (not an integer, or no ``data`` object).
    """
    total = envelope_data(response).get("total_count")
    if not isinstance(total, int):
        msg = f"Usersnap answered {describe_request(response)} without a total_count"
        raise UsersnapError(msg)
    return total


class FeedbackCounts:
    """How many items a project holds in a ``created_at`` range: one request each.

    Deletes compare the count before a bookmark with the state's and check that a full
    read delivered what the project holds; progress lines use the same count of what a
    read asks for, taken once.
    """

    def __init__(
        self,
        count: t.Callable[[FeedbackQuery], int],
        *,
        scope_start: str | None,
        logger: logging.Logger,
        parallel: Parallel | None = None,
    ) -> None:
        self._count = count
        #: How a count per project is sent: some at once, or one after another.
        self.parallel: Parallel = parallel or (lambda func, items: [func(i) for i in items])
        self._scope_start = scope_start
        self._logger = logger
        self._to_read: dict[tuple[str, str | None], int | None] = {}

    def before_bookmark(self, project: ProjectState) -> int:
        """Items created before the project's bookmark, from the scope's start on."""
        return self._count(
            FeedbackQuery(
                RequestKind.COUNT, project.project_id, self._scope_start, str(project.bookmark)
            )
        )

    def to_read(self, project: ProjectState) -> int | None:
        """Items the project's read asks for, counted once per run; None if the API won't say."""
        key = (project.project_id, project.start)
        if key not in self._to_read:
            self._to_read[key] = self.recount(project)
        return self._to_read[key]

    def known(self, project: ProjectState) -> int | None:
        """:meth:`to_read`, if it was counted already this run (no request)."""
        return self._to_read.get((project.project_id, project.start))

    def to_read_all(self, projects: t.Iterable[ProjectState]) -> dict[str, int | None]:
        """:meth:`to_read` of every project, the requests sent some at once."""
        listed = list(projects)
        return dict(
            zip([p.project_id for p in listed], self.parallel(self.to_read, listed), strict=True)
        )

    def recount(self, project: ProjectState) -> int | None:
        """Items the project's read asks for, now; None if the API will not say."""
        query = FeedbackQuery(RequestKind.COUNT, project.project_id, project.start)
        total = result_or_failure(lambda: self._count(query))
        if isinstance(total, UsersnapError):
            self._logger.warning(
                "Could not count the feedback of project %s: %s", project.project_id, total
            )
            return None
        return total


def project_exists(
    count: t.Callable[[FeedbackQuery], int], project_id: str, logger: logging.Logger
) -> bool | None:
    """Whether Usersnap still knows the project (its count answers); None: it won't say."""
    answer = result_or_failure(lambda: count(FeedbackQuery(RequestKind.COUNT, project_id)))
    if isinstance(answer, ProjectNotFoundError):
        return False
    if isinstance(answer, UsersnapError):
        logger.warning("Could not ask Usersnap about project %s: %s", project_id, answer)
        return None
    return True
