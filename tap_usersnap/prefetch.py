"""Read ahead: several projects at once, and each project's next page while this one is written.

The SDK syncs a stream's partitions one after another, one page at a time, so at any
network latency its wall time is all waiting. :class:`PageFeed` runs the page fetching of
the next few partitions in worker threads and hands their pages over in partition order,
so the output (and the state) is exactly what a sequential run would produce.
"""

from __future__ import annotations

import collections
import queue
import threading
import typing as t

K = t.TypeVar("K", bound=t.Hashable)
P = t.TypeVar("P")

_POLL_SECONDS = 0.2


class _End:
    """Marks the end of one key's pages."""


class _Failed:
    """Carries a worker's exception to the consumer, at the point its key is read."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class PageFeed(t.Generic[K, P]):
    """Fetches ``fetch(key)`` for up to ``concurrency`` keys at once, in key order.

    Keys must be read with :meth:`pages` in the order given. Workers take keys in that
    order, so the key being read always has a worker (no deadlock), and each key buffers at
    most ``depth`` pages, so memory stays flat however long the backfill. A worker's error
    is raised where its key is read, after every earlier key's pages. With a concurrency of
    1 there are no threads: pages are fetched as they are read.
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
        self._threaded = concurrency > 1
        self._channels: dict[K, queue.Queue[P | _End | _Failed]] = {
            key: queue.Queue(maxsize=depth) for key in keys
        }
        self._pending = collections.deque(keys)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers = [
            threading.Thread(target=self._work, name=f"page-feed-{n}", daemon=True)
            for n in range(min(concurrency, len(keys)) if self._threaded else 0)
        ]
        for worker in self._workers:
            worker.start()

    def pages(self, key: K) -> t.Iterator[P]:
        """The pages of ``key``, in order; raises what fetching them raised."""
        if not self._threaded or key not in self._channels:
            yield from self._fetch(key)
            return
        channel = self._channels[key]
        while True:
            item = channel.get()
            if isinstance(item, _End):
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item

    def close(self) -> None:
        """Stop the workers (they finish the request in flight, then exit)."""
        self._stop.set()

    def _work(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if not self._pending:
                    return
                key = self._pending.popleft()
            channel = self._channels[key]
            try:
                for page in self._fetch(key):
                    if not self._put(channel, page):
                        return
                self._put(channel, _End())
            except BaseException as error:
                self._put(channel, _Failed(error))

    def _put(self, channel: queue.Queue[P | _End | _Failed], item: P | _End | _Failed) -> bool:
        """Wait for room in the channel, unless the feed is closed meanwhile."""
        while not self._stop.is_set():
            try:
                channel.put(item, timeout=_POLL_SECONDS)
            except queue.Full:
                continue
            return True
        return False
