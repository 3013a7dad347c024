"""The SDK's ``http_request_count`` metric, counted where the tap sends requests.

The SDK counts requests in its own request loop, which the tap's
:class:`~tap_usersnap.http.client.ApiClient` replaces, so without this the metric would never
be logged. One counter per stream and context (a project, for the feedback and assignees
streams), shared by the threads that read it; each logs as the SDK's do, every minute while
the run goes on and once when it ends.
"""

from __future__ import annotations

import json
import threading
import typing as t

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context
    from singer_sdk.metrics import Counter


class RequestCounts:
    """``increment(context)`` for every answer; ``close()`` logs the last counts."""

    def __init__(self, counter: t.Callable[[], Counter]) -> None:
        self._new_counter = counter
        self._counters: dict[str, Counter] = {}
        self._lock = threading.Lock()

    def increment(self, context: Context | None) -> None:
        """Count one answer (a failed try too: it is a request the API received)."""
        key = json.dumps(context, sort_keys=True, default=str) if context else ""
        with self._lock:
            counter = self._counters.get(key)
            if counter is None:
                counter = self._counters[key] = self._new_counter().__enter__()
                counter.with_context(context)
            counter.increment()

    def close(self) -> None:
        """Log every counter's last count (the run is over)."""
        with self._lock:
            counters, self._counters = list(self._counters.values()), {}
        for counter in counters:
            counter.exit()
