"""The benchmark's feedback: items pre-rendered to JSON, so the fake is never the bottleneck.

:meth:`FakeUsersnap.seed_benchmark <fake_usersnap.server.FakeUsersnap.seed_benchmark>` adds
the projects; ``python -m fake_usersnap --prerendered eager --control`` serves them from a
process of its own (``benchmarks/server.py``).
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import json
import random
import re
import typing as t
import uuid

from fake_usersnap.data import SampleData
from fake_usersnap.protocol import (
    API_PREFIX,
    MAX_LIMIT,
    ApiError,
    invalid_cursor,
    invalid_request,
    page_bytes,
    parse_limit,
    utc_iso,
)
from fake_usersnap.query import (
    NEWEST_FIRST,
    NEWEST_UPDATES,
    OLDEST_FIRST,
    Condition,
    conditions,
    order,
)

if t.TYPE_CHECKING:
    from fake_usersnap.store import Store

_ROUTE = re.compile(r"^/projects/([^/]+)/feedbacks/filter(/count)?$")


@dataclasses.dataclass
class _BenchProject:
    """One benchmark project: its item ids in created_at order, and where each one is."""

    ordinal: int
    ids: list[str]
    positions: dict[str, int]


class PrerenderedFeedback:
    """Benchmark-sized feedback, rendered to JSON once so the server is never the bottleneck.

    A page of any listing (a full read, a ``created_at`` slice, the newest first) is the
    items' JSON joined, so serving one costs a copy, never a ``json.dumps``.

    Item ``i`` of a project is a deterministic function of ``(project, i)``: a realistic
    :class:`SampleData` item (one of a pool of templates) padded to about ``item_bytes``
    of JSON, with its own id, number and timestamps. ``created_at`` grows with ``i``, so
    the created_at-ascending listing is the item order and a ``created_at`` filter
    (gte/gt/lt/lte) is a binary search: resumed runs are served too. Only the filter and
    filter count endpoints are served from here; other feedback endpoints see these
    projects as empty.
    """

    TEMPLATES = 256
    BASE_TIME = dt.datetime(2023, 1, 1, tzinfo=dt.timezone.utc)
    STEP = dt.timedelta(seconds=61)
    FILLER = (
        "Steps to reproduce: open the monthly report, choose last quarter, add the region "
        "filter, press Export and wait. Expected a CSV download; got a spinner instead. "
    )

    def __init__(self, fake: Store, *, item_bytes: int = 1900, seed: int = 11) -> None:
        self.fake = fake
        self.item_bytes = item_bytes
        #: Keep each item's JSON once rendered (off for the 200k-item memory run).
        self.cache_items = True
        self.page_size = MAX_LIMIT
        self.rng = random.Random(seed)
        self.projects: dict[str, _BenchProject] = {}
        self._templates = [self._template() for _ in range(self.TEMPLATES)]
        self._rendered: dict[str, list[bytes | None]] = {}
        self._update_orders: dict[str, list[int]] = {}

    @property
    def total_items(self) -> int:
        """Items across the benchmark projects."""
        return sum(len(p.ids) for p in self.projects.values())

    def serves(self, project_id: str) -> bool:
        """Whether a project's feedback comes from here (not from the fake's lists)."""
        return project_id in self.projects

    def add_projects(self, count: int, per_project: int) -> list[str]:
        """Add ``count`` projects to the fake, ``per_project`` items each; their ids."""
        added = []
        for _ in range(count):
            ordinal = len(self.projects)
            name = SampleData.PROJECTS[ordinal % len(SampleData.PROJECTS)]
            project = self.fake.add_project(f"{name} (benchmark {ordinal + 1})")
            project["feedback_count"] = project["open_feedback_count"] = per_project
            ids = [
                str(uuid.UUID(int=self.rng.getrandbits(128), version=4)) for _ in range(per_project)
            ]
            positions = {feedback_id: n for n, feedback_id in enumerate(ids)}
            self.projects[project["project_id"]] = _BenchProject(ordinal, ids, positions)
            added.append(project["project_id"])
        return added

    def ids(self, project_id: str) -> list[str]:
        """A project's feedback ids, oldest first."""
        return list(self.projects[project_id].ids)

    def created_at(self, project_id: str, index: int) -> str:
        """``created_at`` of item ``index``, without rendering the item."""
        return utc_iso(self._created(self.projects[project_id].ordinal, index))

    def item(self, project_id: str, index: int) -> dict[str, t.Any]:
        """Item ``index`` (0-based, oldest first) of a benchmark project."""
        project = self.projects[project_id]
        template = self._templates[(index * 31 + project.ordinal * 7) % self.TEMPLATES]
        created = self._created(project.ordinal, index)
        feedback_id = project.ids[index]
        updated = self._updated(project.ordinal, index)
        return {
            **template,
            "feedback_id": feedback_id,
            "feedback_number": index + 1,
            "public_link": f"https://app.usersnap.com/l/feedback/{feedback_id}",
            "project_id": project_id,
            "created_at": utc_iso(created),
            "updated_at": utc_iso(updated),
        }

    def render_all(self) -> None:
        """Render every item (and the updated_at order) now: serving then only joins bytes."""
        for project_id, project in self.projects.items():
            for index in range(len(project.ids)):
                self._item_json(project_id, index)
            self._update_order(project_id)

    def answer(
        self, method: str, full_path: str, params: dict[str, str], body: t.Any
    ) -> bytes | None:
        """The response body for a filter or filter count on a benchmark project, else None."""
        found = _ROUTE.match(full_path.removeprefix(API_PREFIX)) if method == "POST" else None
        if found is None or not self.serves(found.group(1)):
            return None
        if found.group(2):
            return self.count(found.group(1), body)
        return self.page(found.group(1), body, params)

    def count(self, project_id: str, body: t.Any) -> bytes:
        """The envelope of ``filter/count``: the items the same created_at filters list."""
        first, stop = self._window(self.projects[project_id], conditions(body))
        return json.dumps({"status": True, "data": {"total_count": stop - first}}).encode()

    def page(self, project_id: str, body: t.Any, params: dict[str, str]) -> bytes:
        """One filter request's envelope, as :func:`~fake_usersnap.endpoints.filter_feedback`."""
        project = self.projects[project_id]
        query, sort = conditions(body), order(body)
        if not query and sort == NEWEST_UPDATES:
            return self._newest_updates(project_id, params)
        if sort == NEWEST_FIRST and not params.get("after"):
            return self._newest_first(project_id, query, parse_limit(params))
        if sort != OLDEST_FIRST:
            raise _prerendered_unsupported("an order other than created_at ascending")
        first, stop = self._window(project, query)
        start = first
        after = params.get("after")
        if after:
            position = project.positions.get(after)
            if position is None or not first <= position < stop:
                raise invalid_cursor(after)
            start = position + 1
        end = min(start + parse_limit(params), stop)
        return self._page(
            project_id,
            range(start, end),
            has_more=end < stop,
            count=stop - first,
            limit=parse_limit(params),
        )

    def _page(
        self, project_id: str, indexes: t.Sequence[int], *, has_more: bool, count: int, limit: int
    ) -> bytes:
        """The envelope of a page of these items (by index), from their JSON."""
        return page_bytes(
            [self._item_json(project_id, n) for n in indexes],
            last_id=self.projects[project_id].ids[indexes[-1]] if indexes else None,
            has_more=has_more,
            count=count,
            limit=limit,
        )

    def _item_json(self, project_id: str, index: int) -> bytes:
        """Item ``index`` as JSON: rendered once if items are kept, else on each request."""
        if not self.cache_items:
            return json.dumps(self.item(project_id, index)).encode()
        rendered = self._rendered.get(project_id)
        if rendered is None:
            with self.fake.lock:
                size = len(self.projects[project_id].ids)
                rendered = self._rendered.setdefault(project_id, [None] * size)
        found = rendered[index]
        if found is None:  # rendering twice in two threads is harmless: the same bytes
            found = rendered[index] = json.dumps(self.item(project_id, index)).encode()
        return found

    def _newest_first(self, project_id: str, query: list[Condition], limit: int) -> bytes:
        """The first page of ``order_by created_at desc``: the newest items of the window."""
        first, stop = self._window(self.projects[project_id], query)
        newest = range(stop - 1, max(first, stop - limit) - 1, -1)
        return self._page(
            project_id, newest, has_more=stop - first > limit, count=stop - first, limit=limit
        )

    def _newest_updates(self, project_id: str, params: dict[str, str]) -> bytes:
        """``order_by updated_at desc``, as the tap's edit scan asks."""
        project = self.projects[project_id]
        order = self._update_order(project_id)
        start = 0
        if after := params.get("after"):
            position = project.positions.get(after)
            if position is None:
                raise invalid_cursor(after)
            start = order.index(position) + 1
        limit = parse_limit(params)
        has_more = start + limit < len(order)
        return self._page(
            project_id,
            order[start : start + limit],
            has_more=has_more,
            count=len(order),
            limit=limit,
        )

    def _update_order(self, project_id: str) -> list[int]:
        """The items (by index) newest update first, ties by id descending; sorted once."""
        order = self._update_orders.get(project_id)
        if order is None:
            project = self.projects[project_id]

            def updated(n: int) -> tuple[str, str]:  # as the items' JSON says
                return utc_iso(self._updated(project.ordinal, n)), project.ids[n]

            order = sorted(range(len(project.ids)), key=updated, reverse=True)
            if self.cache_items:
                self._update_orders[project_id] = order
        return order

    def _window(self, project: _BenchProject, query: list[Condition]) -> tuple[int, int]:
        """The items (first, stop) the created_at conditions keep, found by binary search.

        Items are in created_at order, so a lower bound (gt, gte) holds from some item on
        and an upper bound (lt, lte) up to some item: :meth:`Condition.holds` itself finds
        where, so this decides nothing about what a condition means.
        """
        first, stop = 0, len(project.ids)
        for condition in query:
            if condition.filter_type != "created_at" or condition.operator not in _BOUNDS:
                raise _prerendered_unsupported(f"the filter {condition.raw!r}")
            lower = _BOUNDS[condition.operator]
            # The first item kept (lower bound), or the first one dropped (upper bound).
            found = self._first_where(project, condition, holds=lower)
            if lower:
                first = max(first, found)
            else:
                stop = min(stop, found)
        return first, max(first, stop)

    def _first_where(self, project: _BenchProject, condition: Condition, *, holds: bool) -> int:
        """The first item for which ``condition.holds`` is ``holds`` (or the end).

        The condition must be monotone along created_at: not ``holds``, then ``holds``.
        """
        return bisect.bisect_left(
            range(len(project.ids)),
            True,
            key=lambda n: condition.holds(self._created(project.ordinal, n)) == holds,
        )

    def _created(self, ordinal: int, index: int) -> dt.datetime:
        """Strictly increasing per project; projects interleave a millisecond apart."""
        return (
            self.BASE_TIME
            + self.STEP * index
            + dt.timedelta(milliseconds=ordinal, microseconds=index * 7 % 1000)
        )

    def _updated(self, ordinal: int, index: int) -> dt.datetime:
        """Some minutes after the item's creation (so the updated_at order differs)."""
        return self._created(ordinal, index) + dt.timedelta(minutes=index % 90)

    def _template(self) -> dict[str, t.Any]:
        """A realistic item padded (a longer comment, session notes) to ``item_bytes``."""
        fields = SampleData(self.fake, self.rng).feedback_fields()
        fields.pop("comment")
        fields["custom_data"] = {**fields["custom_data"], "session_notes": ""}
        template: dict[str, t.Any] = {
            "feedback_id": str(uuid.UUID(int=0)),
            "feedback_number": 10_000,
            "public_link": f"https://app.usersnap.com/l/feedback/{uuid.UUID(int=0)}",
            "project_id": str(uuid.UUID(int=0)),
            "created_at": utc_iso(self.BASE_TIME),
            "updated_at": utc_iso(self.BASE_TIME),
            "assignee_id": None,
            "is_demo": False,
            "screen_recording": None,
            **fields,
        }
        missing = max(0, self.item_bytes - len(json.dumps(template)))
        comment_extra = missing // 4  # the comment appears twice: text_value and value
        first_input = template["ordered_inputs"][0]
        longer = f"{first_input['text_value']} {_filler(self.FILLER, comment_extra)}"
        template["ordered_inputs"][0] = {**first_input, "text_value": longer, "value": longer}
        notes_length = max(0, self.item_bytes - len(json.dumps(template)))
        template["custom_data"]["session_notes"] = _filler(self.FILLER, notes_length)
        return template


def _filler(text: str, length: int) -> str:
    """ASCII text of exactly ``length`` characters (one JSON byte each)."""
    return (text * (length // len(text) + 1))[:length]


#: The created_at operators a binary search can answer: True for a lower bound (it holds
#: from some item on), False for an upper bound (it holds up to some item).
_BOUNDS = {"gt": True, "gte": True, "lt": False, "lte": False}


def _prerendered_unsupported(what: str) -> ApiError:
    return invalid_request(f"The pre-rendered benchmark data does not serve {what}")
