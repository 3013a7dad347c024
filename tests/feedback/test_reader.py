"""ReadAhead: every page once, each key's in order, threads only when fetching is slow."""

from __future__ import annotations

import threading
import time
import typing as t

import pytest

from tap_usersnap.feedback import reader
from tap_usersnap.feedback.handover import FINISHED, Failed
from tap_usersnap.feedback.reader import ReadAhead

PAGES = {"a": 5, "b": 3, "c": 4, "d": 1}


def fetcher(
    delay: float = 0.0, failing: str | None = None, threads: set[str] | None = None
) -> t.Callable[[str], t.Iterator[str]]:
    def fetch(key: str) -> t.Iterator[str]:
        for n in range(PAGES[key]):
            if threads is not None:
                threads.add(threading.current_thread().name)
            time.sleep(delay)
            if key == failing and n == 1:
                raise ValueError(f"page {n} of {key} broke")
            yield f"{key}{n}"

    return fetch


def read(feed: ReadAhead[str, str]) -> dict[str, list[t.Any]]:
    seen: dict[str, list[t.Any]] = {key: [] for key in PAGES}
    for key, item in feed:
        seen[key].append(item)
    return seen


def expected_pages(key: str) -> list[t.Any]:
    return [f"{key}{n}" for n in range(PAGES[key])]


@pytest.mark.parametrize("concurrency", [1, 3])
def test_every_page_once_in_order_then_finished(concurrency: int) -> None:
    seen = read(ReadAhead(list(PAGES), fetcher(), concurrency=concurrency))
    assert seen == {key: [*expected_pages(key), FINISHED] for key in PAGES}


def test_a_fast_api_is_read_without_threads() -> None:
    threads: set[str] = set()
    read(ReadAhead(list(PAGES), fetcher(threads=threads), concurrency=4))
    assert threads == {threading.current_thread().name}


def test_a_slow_api_is_read_ahead_by_threads_keeping_each_keys_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reader, "SLOW_FETCH_SECONDS", 0.001)
    threads: set[str] = set()
    order: list[str] = []
    feed = ReadAhead(list(PAGES), fetcher(delay=0.005, threads=threads), concurrency=3)
    seen: dict[str, list[t.Any]] = {key: [] for key in PAGES}
    for key, item in feed:
        seen[key].append(item)
        order.append(key)
    assert seen == {key: [*expected_pages(key), FINISHED] for key in PAGES}
    assert any(name.startswith("page-feed-") for name in threads)
    first_b = order.index("b")
    assert "a" in order[first_b:], "pages of different keys interleave once read ahead"


@pytest.mark.parametrize("slow", [False, True])
def test_a_failing_key_ends_with_its_error_and_the_others_go_on(
    monkeypatch: pytest.MonkeyPatch, slow: bool
) -> None:
    if slow:
        monkeypatch.setattr(reader, "SLOW_FETCH_SECONDS", 0.001)
    seen = read(ReadAhead(list(PAGES), fetcher(delay=0.005 * slow, failing="c"), concurrency=2))
    *pages, last = seen["c"]
    assert pages == ["c0"]
    assert isinstance(last, Failed)
    assert "page 1 of c broke" in str(last.error)
    assert seen["d"] == [*expected_pages("d"), FINISHED]


def test_stopping_the_reader_stops_the_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reader, "SLOW_FETCH_SECONDS", 0.001)
    feed = ReadAhead(list(PAGES), fetcher(delay=0.005), concurrency=3, depth=1)
    pages = feed.__iter__()
    for _ in range(4):
        next(pages)
    pages.close()  # e.g. the target went away
    deadline = time.monotonic() + 5
    while any(t.name.startswith("page-feed-") for t in threading.enumerate()):
        assert time.monotonic() < deadline, "workers still running"
        time.sleep(0.05)
