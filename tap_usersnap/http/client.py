"""Sends requests to the Usersnap API and follows its pages: retried, checked, a session a thread.

The one way a request goes out, for every stream and every kind of request: signed again on
each try (a 401 re-signs the token once), retried as :mod:`~tap_usersnap.http.retry`
decides, and checked (:func:`~tap_usersnap.http.responses.check_answer`); an answer that is
not what the caller can read is a failed try too, never "no items". Each thread has its own
session, so threads reading ahead never share connection state.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
import typing as t

from tap_usersnap.http.responses import check_answer, page_items
from tap_usersnap.http.transport import CONNECT_TIMEOUT_SECONDS, new_session

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.pagination import BaseAPIPaginator

    from tap_usersnap.http.retry import Retrier

R = t.TypeVar("R")
T = t.TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class Page:
    """One answer of a paged read: its entries (``data[records_key]``), and the answer."""

    items: list[t.Any]
    response: requests.Response


class ApiClient:
    """Sends prepared requests; one per run, shared by every stream and thread."""

    def __init__(
        self,
        *,
        api_url: str,
        request_timeout: float,
        authenticator: t.Callable[[requests.PreparedRequest], requests.PreparedRequest],
        retrier: Retrier,
        concurrency: int = 1,
    ) -> None:
        self._api_url = api_url
        #: Requests in flight at once, at most, whichever threads send them.
        self.concurrency = concurrency
        self._in_flight = threading.BoundedSemaphore(concurrency)
        self._authenticator = authenticator
        self.retrier = retrier
        #: Connect and per-read timeouts; the whole answer is bounded too (``transport``).
        self.timeout = (CONNECT_TIMEOUT_SECONDS, request_timeout)
        self._local = threading.local()

    def session(self) -> requests.Session:
        """This thread's session."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = new_session(self._api_url, self.timeout[1])
        return session

    def send(
        self,
        request: requests.PreparedRequest,
        read: t.Callable[[requests.Response], R],
        observe: t.Callable[[requests.Response], None] | None = None,
    ) -> R:
        """``read(answer)`` of the request, tried again as the failure's kind allows.

        ``observe`` sees every answer, failed tries too (the SDK's request metrics).
        """
        for attempt in self.retrier.attempts():
            with attempt:
                with self._in_flight:
                    response = self.session().send(
                        self._authenticator(request), timeout=self.timeout
                    )
                if observe is not None:
                    observe(response)
                check_answer(response)
                return read(response)
        raise AssertionError  # pragma: no cover - attempts() ends by raising

    def map(self, func: t.Callable[[T], R], items: t.Sequence[T]) -> list[R]:
        """``func(item)`` for each item, on up to ``concurrency`` threads; results in order.

        For requests of their own per project (counts, assignees): a run with nothing new
        then waits for about requests x latency / concurrency. The first failure (in the
        items' order) is raised once the calls under way have ended; the others are not made.
        """
        if self.concurrency == 1 or len(items) < 2:  # noqa: PLR2004 - nothing to overlap
            return [func(item) for item in items]
        workers = min(self.concurrency, len(items))
        pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="request")
        futures = [pool.submit(func, item) for item in items]
        try:
            return [future.result() for future in futures]
        finally:  # after a failure, the calls not yet started are not made
            pool.shutdown(cancel_futures=True)

    def pages(
        self,
        request_for: t.Callable[[str | None], requests.PreparedRequest],
        paginator: BaseAPIPaginator[str | None],
        records_key: str,
        observe: t.Callable[[requests.Response], None] | None = None,
    ) -> t.Iterator[Page]:
        """Every page of a read, empty ones too, while the paginator says there is more."""

        def read(response: requests.Response) -> Page:
            return Page(page_items(response, records_key), response)

        while not paginator.finished:
            page = self.send(request_for(paginator.current_value), read, observe)
            yield page
            paginator.advance(page.response)
