"""Read several projects at once when the network is slow, handing pages over as they arrive.

Left to the SDK, a stream's partitions are read one after another, one page at a time, so
at any network latency the wall time is all waiting. :class:`PageFeed` reads pages in the
sync's own thread while the API answers quickly (threads would only add switching cost to
a sync that is busy writing records), and once fetching a page takes longer than
``SLOW_FETCH_SECONDS`` it hands the rest to up to ``concurrency`` worker threads, one
project each. Pages of different projects then interleave, while each project's pages keep
their order (one thread reads a project at a time, from where it stands to its end). A
bounded queue between the workers and the reader keeps memory flat however large the
backfill: a worker waits while the reader is behind.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
import typing as t

K = t.TypeVar("K", bound=t.Hashable)
P = t.TypeVar("P")

#: A page fetch slower than this (twice in a row) means waiting dominates: read ahead.
SLOW_FETCH_SECONDS = 0.008
_POLL_SECONDS = 0.2


class Finished:
    """Follows a key's last page: nothing more will come for it."""


class Failed:
    """Fetching a key's pages raised ``error``; it is the key's last item."""

    def __init__(self, error: Exception) -> None:
        self.error = error


FINISHED = Finished()


class PageFeed(t.Generic[K, P]):
    """Yields ``(key, page)`` for every page of every key, then ``(key, FINISHED)``.

    A key whose fetching raised yields ``(key, Failed(error))`` last instead, and the other
    keys go on: the reader decides whether that ends the run. With a concurrency of 1 no
    thread is ever started.
    """

    def __init__(
        self,
        keys: t.Sequence[K],
        fetch: t.Callable[[K], t.Iterator[P]],
        *,
        concurrency: int,
        depth: int = 2,
    ) -> None:
        self._fetch = fetch
        self._concurrency = max(1, min(concurrency, len(keys)))
        #: Keys still to read, with their pages iterator once reading has begun.
        self._jobs: collections.deque[tuple[K, t.Iterator[P] | None]] = collections.deque(
            (key, None) for key in keys
        )
        self._arrived: queue.Queue[tuple[K, P | Finished | Failed]] = queue.Queue(
            maxsize=depth * self._concurrency
        )
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._recent_fetches: collections.deque[float] = collections.deque(maxlen=2)

    def __iter__(self) -> t.Generator[tuple[K, P | Finished | Failed], None, None]:
        """Every key's pages, each key's in order."""
        while self._jobs:
            key, pages = self._jobs.popleft()
            pages = iter(self._fetch(key)) if pages is None else pages
            try:
                while True:
                    started = time.perf_counter()
                    page = next(pages)
                    self._recent_fetches.append(time.perf_counter() - started)
                    yield key, page
                    if self._waiting_dominates():
                        self._jobs.appendleft((key, pages))
                        yield from self._read_ahead()
                        return
            except StopIteration:
                yield key, FINISHED
            except Exception as error:
                yield key, Failed(error)

    def _waiting_dominates(self) -> bool:
        return (
            self._concurrency > 1
            and len(self._recent_fetches) == self._recent_fetches.maxlen
            and min(self._recent_fetches) > SLOW_FETCH_SECONDS
        )

    def _read_ahead(self) -> t.Iterator[tuple[K, P | Finished | Failed]]:
        """The remaining keys, read by worker threads; stops them when the reader stops."""
        remaining = len(self._jobs)
        for n in range(min(self._concurrency, remaining)):
            threading.Thread(target=self._work, name=f"page-feed-{n}", daemon=True).start()
        try:
            while remaining:
                key, item = self._arrived.get()
                if isinstance(item, Finished | Failed):
                    remaining -= 1
                yield key, item
        finally:
            self._stop.set()

    def _work(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if not self._jobs:
                    return
                key, pages = self._jobs.popleft()
            try:
                for page in self._fetch(key) if pages is None else pages:
                    if not self._put(key, page):
                        return
            except Exception as error:
                self._put(key, Failed(error))
            else:
                self._put(key, FINISHED)

    def _put(self, key: K, item: P | Finished | Failed) -> bool:
        """Wait for room in the queue, unless the reader has stopped meanwhile."""
        while not self._stop.is_set():
            try:
                self._arrived.put((key, item), timeout=_POLL_SECONDS)
            except queue.Full:
                continue
            return True
        return False
