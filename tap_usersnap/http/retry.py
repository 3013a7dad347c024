"""When to try a request again, how long to wait first, and how a failed try is described.

Usersnap does not publish its rate limits, so a 429 is honoured whenever it comes, for as
long as its ``Retry-After`` says (capped), and pauses every thread of the run. Server
errors, timeouts and dropped connections back off exponentially for a bounded number of
tries, so a server that never recovers ends the run within minutes instead of hanging it.
A 401 re-signs the token once. The clock is injected, so tests wait in fake time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import logging
import random
import threading
import time
import typing as t

import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_usersnap.http.errors import (
    CredentialsRejectedError,
    RateLimitedError,
    TokenRejectedError,
    UsersnapError,
)
from tap_usersnap.http.transport import describe_connection_failure, describe_redirect_loop

#: Failures worth another try; anything else ends the run.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    RetriableAPIError,
    ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)

R = t.TypeVar("R")


class Clock(t.Protocol):
    """What the retry loop needs of time: a monotonic reading and a way to wait."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        """``time.monotonic``."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """``time.sleep``."""
        time.sleep(seconds)


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
        return min(retry_after, self.max_retry_after_seconds)


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    ``None`` (back off instead) unless it names a wait: zero, a negative number, ``nan``, a
    date already past or text that is neither would have every try sent at once.
    """
    if not value:
        return None
    value = value.strip()
    seconds: float | None
    try:
        seconds = float(value)
    except ValueError:
        seconds = _seconds_until(value, now)
    return seconds if seconds is not None and seconds > 0 else None  # nan > 0 is False


def _seconds_until(http_date: str, now: dt.datetime | None) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return (when - (now or dt.datetime.now(dt.timezone.utc))).total_seconds()


class RateLimitGate:
    """Shared by every request of a run: after a 429, all readers wait out its Retry-After.

    With several projects read at once, one 429 pauses them all, so the tap backs off as a
    whole instead of letting the other threads keep hitting the limit.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._opens_at = 0.0
        self._lock = threading.Lock()

    def close_for(self, seconds: float) -> None:
        """Let no request through for ``seconds`` from now (never shortening a pause)."""
        with self._lock:
            self._opens_at = max(self._opens_at, self._clock.monotonic() + seconds)

    def wait(self) -> None:
        """Return when requests may be sent again."""
        remaining = self._opens_at - self._clock.monotonic()
        if remaining > 0:
            self._clock.sleep(remaining)


def describe_failure(exc: Exception) -> str:
    """One line about a failed try, without URLs' query strings, tokens or bodies."""
    if isinstance(exc, RetriableAPIError):
        return str(exc)
    if isinstance(exc, requests.exceptions.Timeout) and not isinstance(
        exc, requests.exceptions.ConnectTimeout
    ):
        said = exc.args[0] if exc.args and isinstance(exc.args[0], str) else None
        return (
            f"Usersnap did not answer in time: {said}"
            if said
            else ("Usersnap did not answer in time (request_timeout)")
        )
    if isinstance(exc, requests.exceptions.RequestException | ConnectionError):
        return describe_connection_failure(exc)
    return type(exc).__name__


class Attempt:
    """One try of a request (see :meth:`Retrier.attempts`)."""

    def __init__(self, retrier: Retrier, tries: dict[str, int]) -> None:
        self._retrier = retrier
        self._tries = tries

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _: t.Any
    ) -> bool:
        """True (try again) after a failure worth it; raises what ends the request."""
        if exc is None or not isinstance(exc, Exception):
            return False
        return self._retrier.handle_failure(exc, self._tries)


class Retrier:
    """Runs one request until it succeeds or a bound is reached (see :class:`RetryPolicy`).

    One per run, shared by every stream and thread, so the rate-limit pause is shared.
    """

    def __init__(
        self,
        *,
        policy: RetryPolicy,
        clock: Clock,
        logger: logging.Logger,
        on_token_rejected: t.Callable[[], None],
        credentials_error: t.Callable[[], CredentialsRejectedError],
    ) -> None:
        self.policy = policy
        self.clock = clock
        self.gate = RateLimitGate(clock)
        self._logger = logger
        self._on_token_rejected = on_token_rejected
        self._credentials_error = credentials_error

    def attempts(self) -> t.Iterator[Attempt]:
        """The tries of one request, each a context: ``with attempt: return send()``.

        A failure worth another try is absorbed by its ``with`` block after the wait it
        calls for; any other, or one past its bound, is raised from it. The answer itself
        never passes through here: the caller returns it from inside its ``with`` block.
        """
        tries = {"transient": 0, "rate_limited": 0, "token": 0}
        while True:
            self.gate.wait()
            yield Attempt(self, tries)

    def call(self, func: t.Callable[[], R]) -> R:
        """``func()``, tried again as the failure's kind allows."""
        for attempt in self.attempts():
            with attempt:
                return func()
        raise AssertionError  # pragma: no cover - attempts() never ends by itself

    def handle_failure(self, exc: BaseException, tries: dict[str, int]) -> bool:
        """Wait as ``exc`` calls for and return True, or raise what ends the request."""
        if isinstance(exc, TokenRejectedError):
            tries["token"] += 1
            if tries["token"] > 1:
                raise self._rejected(exc) from exc
            self._on_token_rejected()
            self.clock.sleep(0.0)
            return True
        if isinstance(exc, RateLimitedError):
            tries["rate_limited"] += 1
            self.gate.close_for(self._rate_limit_wait(exc, tries["rate_limited"]))
            return True
        if isinstance(exc, requests.exceptions.TooManyRedirects):
            raise UsersnapError(describe_redirect_loop(exc)) from None
        if isinstance(exc, TRANSIENT_ERRORS):
            tries["transient"] += 1
            self.clock.sleep(self._transient_wait(exc, tries["transient"]))
            return True
        return False

    def _rejected(self, exc: TokenRejectedError) -> CredentialsRejectedError:
        """The credentials failure, with a likelier cause when the answer suggests one."""
        error = self._credentials_error()
        return CredentialsRejectedError(f"{error}; {exc.hint}") if exc.hint else error

    def _rate_limit_wait(self, exc: RateLimitedError, tries: int) -> float:
        if tries > self.policy.max_rate_limited:
            msg = f"{exc}: gave up after {tries} rate-limited tries"
            raise UsersnapError(msg) from exc
        wait = self.policy.rate_limit_seconds(exc.retry_after, tries)
        if exc.retry_after is not None and exc.retry_after > wait:
            self._logger.warning(
                "%s with Retry-After of %.0fs; capped at %.0fs", exc, exc.retry_after, wait
            )
        elif exc.retry_after is not None:
            self._logger.info("%s; waiting %.1fs as asked", exc, wait)
        else:
            said = exc.response.headers.get("Retry-After") if exc.response is not None else None
            self._logger.info(
                "%s; waiting %.1fs, the backoff (%s)",
                exc,
                wait,
                f"Retry-After {said[:40]!r} names no wait" if said else "no Retry-After",
            )
        return wait

    def _transient_wait(self, exc: Exception, tries: int) -> float:
        if tries >= self.policy.max_tries:
            msg = f"{describe_failure(exc)}; gave up after {tries} tries"
            raise UsersnapError(msg) from exc
        wait = self.policy.backoff_seconds(tries)
        self._logger.warning(
            "%s; retrying in %.1fs (try %d of %d)",
            describe_failure(exc),
            wait,
            tries + 1,
            self.policy.max_tries,
        )
        return wait
