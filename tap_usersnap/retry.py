"""When to try a request again, and how long to wait first.

Usersnap does not publish its rate limits, so a 429 is honoured whenever it comes, for as
long as its ``Retry-After`` says (capped). Server errors, timeouts and dropped connections
back off exponentially for a bounded number of tries, so a server that never recovers ends
the run within minutes instead of hanging it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import random
import threading
import time


def sleep(seconds: float) -> None:
    """The one place the tap waits; tests swap it (and :func:`monotonic`) for a fake clock."""
    time.sleep(seconds)


def monotonic() -> float:
    """The clock the waits are measured on."""
    return time.monotonic()


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Bounds for retrying one request."""

    #: Tries in all for a transient failure (5xx, timeout, reset, unreadable body).
    max_tries: int = 6
    #: 429 answers tolerated for one request before giving up.
    max_rate_limited: int = 20
    #: First exponential backoff wait; doubles per try.
    base_seconds: float = 1.0
    #: Longest exponential backoff wait.
    max_backoff_seconds: float = 60.0
    #: Longest wait a ``Retry-After`` header may impose.
    max_retry_after_seconds: float = 300.0

    def backoff_seconds(self, tries: int) -> float:
        """Exponential backoff with jitter: about base, 2x base, 4x base ..., capped."""
        wait = min(self.base_seconds * 2 ** (tries - 1), self.max_backoff_seconds)
        return wait * random.uniform(0.8, 1.0)  # noqa: S311 - jitter, not crypto

    def rate_limit_seconds(self, retry_after: float | None, tries: int) -> float:
        """The server's ``Retry-After`` when it gave one, else exponential backoff."""
        if retry_after is None:
            return self.backoff_seconds(tries)
        return min(max(retry_after, 0.0), self.max_retry_after_seconds)


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    now = now or dt.datetime.now(dt.timezone.utc)
    return max((when - now).total_seconds(), 0.0)


class RateLimitGate:
    """Shared by every request of a run: after a 429, all readers wait out its Retry-After.

    With several projects read at once, one 429 pauses them all, so the tap backs off as a
    whole instead of letting the other threads keep hitting the limit.
    """

    def __init__(self) -> None:
        self._opens_at = 0.0
        self._lock = threading.Lock()

    def close_for(self, seconds: float) -> None:
        """Let no request through for ``seconds`` from now (never shortening a pause)."""
        with self._lock:
            self._opens_at = max(self._opens_at, monotonic() + seconds)

    def wait(self) -> None:
        """Return when requests may be sent again."""
        remaining = self._opens_at - monotonic()
        if remaining > 0:
            sleep(remaining)
