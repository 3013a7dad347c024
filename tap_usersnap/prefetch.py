"""Read several projects at once, handing their pages over as they arrive.

Left to the SDK, a stream's partitions are read one after another, one page at a time, so
at any network latency the wall time is all waiting. :class:`PageFeed` fetches up to
``concurrency`` projects in worker threads and yields each page as soon as it is in: pages
of different projects interleave, while each project's pages keep their order (one worker
reads a project from start to end). A bounded queue between the workers and the reader
keeps memory flat however large the backfill: a worker waits while the reader is behind.
"""

from __future__ import annotations

import collections
import queue
import threading
import typing as t

K = t.TypeVar("K", bound=t.Hashable)
P = t.TypeVar("P")

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

    A key whose fetching raised yields ``(key, Failed(error))`` last instead, and the
    other keys go on: the reader decides whether that ends the run. With a concurrency of
    1 there are no threads: keys are read in order, each page as it is fetched.
    """

    def __init__(
        self,
        keys: t.Sequence[K],
        fetch: t.Callable[[K], t.Iterator[P]],
        *,
        concurrency: int,
        depth: int = 2,
    ) -> None:
        self._keys = list(keys)
        self._fetch = fetch
        self._concurrency = max(1, min(concurrency, len(self._keys)))
        self._arrived: queue.Queue[tuple[K, P | Finished | Failed]] = queue.Queue(
            maxsize=depth * self._concurrency
        )
        self._pending = collections.deque(self._keys)
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def __iter__(self) -> t.Iterator[tuple[K, P | Finished | Failed]]:
        """Every key's pages, each key's in order; workers stop when the reader does."""
        if self._concurrency == 1:
            yield from self._in_order()
            return
        for n in range(self._concurrency):
            threading.Thread(target=self._work, name=f"page-feed-{n}", daemon=True).start()
        try:
            remaining = len(self._keys)
            while remaining:
                key, item = self._arrived.get()
                if isinstance(item, Finished | Failed):
                    remaining -= 1
                yield key, item
        finally:
            self._stop.set()

    def _in_order(self) -> t.Iterator[tuple[K, P | Finished | Failed]]:
        for key in self._keys:
            try:
                for page in self._fetch(key):
                    yield key, page
            except Exception as error:
                yield key, Failed(error)
            else:
                yield key, FINISHED

    def _work(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if not self._pending:
                    return
                key = self._pending.popleft()
            try:
                for page in self._fetch(key):
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
