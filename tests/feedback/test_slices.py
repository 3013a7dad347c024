"""SlicedRead: a read in created_at slices hands out exactly a single read's items, in order."""

from __future__ import annotations

import logging
import threading
import typing as t

import pytest

from tap_usersnap.feedback.reader import SlicedRead, within
from tap_usersnap.feedback.requests import FeedbackQuery, RequestKind
from tap_usersnap.feedback.slices import Slicing, slice_bounds, slice_count
from tap_usersnap.feedback.state import ProjectState
from tap_usersnap.http.client import Page
from tap_usersnap.http.errors import UsersnapError

LOG = logging.getLogger("test")


def stamp(minute: int) -> str:
    return f"2025-01-01T{minute // 60:02d}:{minute % 60:02d}:00.000000Z"


class ListApi:
    """A filter endpoint over a list: created_at filters (unless ``ignore_filters``), pages."""

    def __init__(self, items: list[dict[str, t.Any]], *, ignore_filters: bool = False) -> None:
        self.items = items
        self.ignore_filters = ignore_filters
        self.queries: list[FeedbackQuery] = []
        self.fail_from: str | None = None
        self.first_page = threading.Event()
        self.lock = threading.Lock()

    def pages(self, query: FeedbackQuery) -> t.Iterator[Page]:
        with self.lock:
            self.queries.append(query)
        if self.fail_from is not None and query.created_from == self.fail_from:
            raise UsersnapError(f"slice from {query.created_from} failed")
        position = 0
        while True:
            with self.lock:
                kept = sorted(
                    (
                        i
                        for i in self.items
                        if self.ignore_filters
                        or (
                            (query.created_from is None or i["created_at"] >= query.created_from)
                            and (
                                query.created_before is None
                                or i["created_at"] < query.created_before
                            )
                        )
                    ),
                    key=lambda i: (i["created_at"], i["feedback_id"]),
                )
            page = [dict(i) for i in kept[position : position + 3]]
            position += 3
            yield Page(page, t.cast("t.Any", None))
            self.first_page.set()
            if position >= len(kept):
                return

    def map(self, func: t.Callable[[t.Any], t.Any], items: t.Sequence[t.Any]) -> list[t.Any]:
        return [func(i) for i in items]

    def count(self, query: FeedbackQuery) -> int:
        raise NotImplementedError


def items_with_ties(bounds: list[str]) -> list[dict[str, t.Any]]:
    """Two items a minute for 60 minutes, and three more on every bound."""
    items = [
        {"feedback_id": f"m{m:03d}-{n}", "created_at": stamp(m)} for m in range(60) for n in (0, 1)
    ]
    items += [{"feedback_id": f"b{b}-{n}", "created_at": b} for b in bounds for n in range(3)]
    return items


def handed_out(api: ListApi, start: str | None, bounds: list[str]) -> list[str]:
    pages = SlicedRead(t.cast("t.Any", api), concurrency=3)("p", start, bounds)
    return [item["feedback_id"] for page in pages for item in page.items]


def sequential(items: list[dict[str, t.Any]]) -> list[str]:
    return [
        i["feedback_id"] for i in sorted(items, key=lambda i: (i["created_at"], i["feedback_id"]))
    ]


def test_the_bounds_are_increasing_and_inside_the_range() -> None:
    bounds = slice_bounds(stamp(0), stamp(59), 7)
    assert len(bounds) == 6
    assert bounds == sorted(set(bounds))
    assert stamp(0) < bounds[0]
    assert bounds[-1] < stamp(59)
    assert slice_bounds(stamp(5), stamp(5), 4) == []  # one instant: nothing to cut
    assert slice_count(100, 100) == 1  # short: page by page
    assert slice_count(20_000, 100) == 50


def test_ties_at_slice_bounds_are_handed_out_once_in_order() -> None:
    bounds = [stamp(10), stamp(25), stamp(40)]
    items = items_with_ties(bounds)
    api = ListApi(items)
    assert handed_out(api, None, bounds) == sequential(items)
    assert len({(q.created_from, q.created_before) for q in api.queries}) == 4  # four slices


def test_an_api_that_ignores_the_filter_still_hands_out_each_item_once() -> None:
    bounds = [stamp(20), stamp(40)]
    items = items_with_ties(bounds)
    assert handed_out(ListApi(items, ignore_filters=True), None, bounds) == sequential(items)


def test_items_created_during_the_read_come_with_the_last_slice() -> None:
    bounds = [stamp(20), stamp(40)]
    items = items_with_ties(bounds)
    api = ListApi(items)
    read = SlicedRead(t.cast("t.Any", api), concurrency=1)("p", None, bounds)
    seen = [i["feedback_id"] for i in next(read).items]
    with api.lock:  # created after the read began, after every bound
        items.append({"feedback_id": "new", "created_at": stamp(70)})
    seen += [item["feedback_id"] for page in read for item in page.items]
    assert seen == sequential(items)
    assert seen[-1] == "new"


def test_a_failed_slice_fails_the_read_after_the_slices_before_it() -> None:
    bounds = [stamp(20), stamp(40)]
    items = items_with_ties(bounds)
    api = ListApi(items)
    api.fail_from = stamp(20)
    seen: list[str] = []

    def read() -> None:
        for page in SlicedRead(t.cast("t.Any", api), concurrency=3)("p", None, bounds):
            seen.extend(i["feedback_id"] for i in page.items)

    with pytest.raises(UsersnapError, match="slice from"):
        read()
    assert seen == sequential([i for i in items if i["created_at"] < stamp(20)])


def test_within_keeps_what_it_cannot_place_for_the_checks() -> None:
    items = [
        {"created_at": stamp(5)},
        {"created_at": None},
        "not an object",
        {"created_at": stamp(30)},
    ]
    assert within(items, stamp(0), stamp(10)) == items[:3]


class Probes:
    """Answers the one-item requests that find where slices start and end."""

    def __init__(self, oldest: t.Any, newest: t.Any, fail: Exception | None = None) -> None:
        self.answers = {RequestKind.OLDEST: oldest, RequestKind.NEWEST: newest}
        self.fail = fail

    def pages(self, query: FeedbackQuery) -> t.Iterator[Page]:
        if self.fail is not None:
            raise self.fail
        yield Page([self.answers[query.kind]], t.cast("t.Any", None))

    def map(self, func: t.Callable[[t.Any], t.Any], items: t.Sequence[t.Any]) -> list[t.Any]:
        return [func(i) for i in items]


def slicing(api: t.Any) -> Slicing:
    return Slicing(api, lambda project: 2000, page_size=100, concurrency=4, projects=1, logger=LOG)


PROJECT = ProjectState("p", None, None, None, partition=dict)
CEILING = "2026-01-01T00:00:00.000000Z"


def test_slices_span_the_oldest_to_the_newest_item_in_whole_seconds() -> None:
    api = Probes({"created_at": stamp(0)}, {"created_at": stamp(50)})
    bounds = slicing(api).bounds(PROJECT, CEILING)
    assert len(bounds) == 4  # 2,000 items, about 400 a slice
    assert all(b[20:26] == "000000" for b in bounds)


def test_a_newest_item_in_the_future_does_not_spread_the_slices() -> None:
    api = Probes({"created_at": "2025-12-31T00:00:00Z"}, {"created_at": "2099-01-01T00:00:00Z"})
    bounds = slicing(api).bounds(PROJECT, CEILING)
    assert bounds
    assert max(bounds) < CEILING


@pytest.mark.parametrize(
    ("oldest", "fail"),
    [("not an object", None), ({"created_at": 12}, None), (None, UsersnapError("400 refused"))],
)
def test_a_probe_that_fails_or_answers_nonsense_reads_page_by_page(
    oldest: t.Any, fail: Exception | None
) -> None:
    api = Probes(oldest, {"created_at": stamp(50)}, fail)
    assert slicing(api).bounds(PROJECT, CEILING) == []
