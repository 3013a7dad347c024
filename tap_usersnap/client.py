"""The base stream for the Usersnap REST API: URL, auth, envelopes, errors and retries."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import sys
import threading
import typing as t
from http import HTTPStatus
from urllib.parse import urlsplit

import requests
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.helpers._catalog import pop_deselected_record_properties
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.singerlib import RecordMessage
from singer_sdk.streams import RESTStream
from typing_extensions import override

from tap_usersnap import retry
from tap_usersnap.envelope import (
    api_error_text,
    describe_request,
    envelope_data,
    read_envelope,
)
from tap_usersnap.errors import (
    CredentialsRejectedError,
    ProjectNotFoundError,
    RateLimitedError,
    TokenRejectedError,
    UsersnapError,
)
from tap_usersnap.flattening import map_record
from tap_usersnap.pagination import UsersnapCursorPaginator
from tap_usersnap.retry import RetryPolicy

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_usersnap.auth import UsersnapJWTAuthenticator
    from tap_usersnap.tap import TapUsersnap

#: Seconds to wait for a connection; the read timeout is the ``request_timeout`` setting.
CONNECT_TIMEOUT_SECONDS = 10.0

#: Failures worth another try; anything else ends the run.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    RetriableAPIError,
    ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


class _ExplainedFailureFilter(logging.Filter):
    """Drops the SDK's generic "unhandled error" line for failures the tap explains itself.

    The SDK logs it while the exception is being handled, so ``sys.exc_info`` tells which.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        explained = isinstance(sys.exc_info()[1], UsersnapError)
        return not (explained and str(record.msg).startswith("An unhandled error"))


class UsersnapStream(RESTStream[str | None]):
    """Shared plumbing of every Usersnap stream.

    Subclasses set ``records_key``, the list inside the envelope's ``data`` object.
    """

    records_key: t.ClassVar[str]
    retry_policy: t.ClassVar[RetryPolicy] = RetryPolicy()
    payload_as_json = True
    #: Records come straight from JSON, so their types are JSON's already; the SDK's
    #: per-property conformance walk would only cost time (a third of it, profiled).
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    _tap: TapUsersnap

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        self._thread_local = threading.local()
        super().__init__(*args, **kwargs)
        if not any(isinstance(f, _ExplainedFailureFilter) for f in self.logger.filters):
            self.logger.addFilter(_ExplainedFailureFilter())

    @property
    def url_base(self) -> str:
        """The API root from the ``api_url`` setting."""
        return str(self.config["api_url"]).rstrip("/")

    @property
    def requests_session(self) -> requests.Session:
        """One session per thread, so threads reading ahead never share session state."""
        session: requests.Session | None = getattr(self._thread_local, "session", None)
        if session is None:
            session = self._thread_local.session = requests.Session()
            # Proxy settings (HTTPS_PROXY, NO_PROXY ...) are read once, for the API's URL,
            # instead of from the whole environment on every request.
            session.proxies = requests.utils.get_environ_proxies(self.url_base)
            session.trust_env = False
        return session

    @property
    def authenticator(self) -> UsersnapJWTAuthenticator:
        """One authenticator for the whole tap, so every stream shares the cached token."""
        return self._tap.jwt_authenticator

    @property
    def timeout(self) -> tuple[float, float]:  # type: ignore[override]
        """Connect and read timeouts: a stalled server fails a try, never hangs the run."""
        return (CONNECT_TIMEOUT_SECONDS, float(self.config["request_timeout"]))

    @property
    def page_size(self) -> int:
        """Items per page (``limit``), from the ``page_size`` setting."""
        return int(self.config["page_size"])

    @override
    def _generate_record_messages(
        self, record: dict[str, t.Any]
    ) -> t.Generator[RecordMessage, None, None]:
        """The SDK's record path, minus its per-property walk when nothing is deselected.

        Overrides a private SDK hook (singer-sdk is pinned to 0.54.x) because it runs once
        per record: the walk that removes deselected properties cost a fifth of the tap's
        time when every property is selected, the usual case. (The SDK's type conformance
        step is left out too: at ``TypeConformanceLevel.NONE`` it returns the record as
        is.) Flattened records keep to their flattened schema (:mod:`~tap_usersnap.flattening`).
        """
        if not self._selects_every_property:
            pop_deselected_record_properties(record, self.schema, self.mask)
        extracted_at = dt.datetime.now(dt.timezone.utc)
        for stream_map in self.stream_maps:
            mapped = map_record(stream_map, record)
            if mapped is not None:
                yield RecordMessage(
                    stream=stream_map.stream_alias,
                    record=mapped,
                    version=self._stream_version,
                    time_extracted=extracted_at,
                )

    def generate_child_contexts(
        self,
        record: dict[str, t.Any],
        context: Context | None,
    ) -> t.Iterable[Context | None]:
        """None: no Usersnap stream has child streams (the SDK would copy every record)."""
        return ()

    @functools.cached_property
    def _selects_every_property(self) -> bool:
        """True when the catalog deselects nothing (a missing entry inherits its parent's)."""
        return all(self.mask.values())

    def get_new_paginator(self) -> UsersnapCursorPaginator:
        """Follow ``data.next.after`` while ``data.has_more`` says so."""
        return UsersnapCursorPaginator()

    def get_url_params(
        self,
        context: Context | None,
        next_page_token: str | None,
    ) -> dict[str, t.Any]:
        """The cursor parameters: ``limit`` always, ``after`` from the second page on."""
        params: dict[str, t.Any] = {"limit": self.page_size}
        if next_page_token:
            params["after"] = next_page_token
        return params

    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        """The items of ``data[records_key]``."""
        yield from envelope_data(response).get(self.records_key) or []

    def validate_response(self, response: requests.Response) -> None:
        """Turn Usersnap's answers into retries or one-line failures.

        Messages name the request and Usersnap's error type, never a token or a body.
        """
        status = response.status_code
        where = describe_request(response)
        if status == HTTPStatus.UNAUTHORIZED:
            raise TokenRejectedError(f"Usersnap answered 401 to {where}", response)
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            raise RateLimitedError(f"Usersnap rate-limited {where} (429)", response)
        if status >= HTTPStatus.INTERNAL_SERVER_ERROR or status == HTTPStatus.REQUEST_TIMEOUT:
            msg = f"Usersnap answered {status} to {where}: {api_error_text(response)}"
            raise RetriableAPIError(msg, response)
        if status == HTTPStatus.FORBIDDEN:
            msg = (
                f"Usersnap refused {where} (403 {api_error_text(response)}): the REST API "
                "is not enabled for this workspace's plan (it needs an Enterprise plan)"
            )
            raise UsersnapError(msg)
        if status >= HTTPStatus.BAD_REQUEST:
            raise self._client_error(response)
        envelope = read_envelope(response)
        if envelope.get("status") is False:
            msg = f"Usersnap answered {where} with status false: {api_error_text(response)}"
            raise UsersnapError(msg)

    def _client_error(self, response: requests.Response) -> UsersnapError:
        text = api_error_text(response)
        where = describe_request(response)
        if "SITE_NOT_FOUND" in text:
            errordata = read_envelope(response).get("errordata") or {}
            project = errordata.get("site_id") or urlsplit(response.url).path.split("/")[-3]
            return ProjectNotFoundError(
                f"Usersnap project {project!r} does not exist or this JWT key cannot see it "
                f"(400 SITE_NOT_FOUND on {where}); check the project_ids setting"
            )
        return UsersnapError(f"Usersnap rejected {where} ({response.status_code} {text})")

    def request_decorator(self, func: t.Callable) -> t.Callable:
        """Retry with :class:`~tap_usersnap.retry.RetryPolicy` instead of the SDK's backoff.

        The SDK's single try budget cannot tell a 429 (wait as told, however often it
        comes) from a 5xx (back off, give up after a few) or a 401 (re-sign once).
        """
        gate = self._tap.rate_limit_gate

        @functools.wraps(func)
        def call_with_retries(*args: t.Any, **kwargs: t.Any) -> t.Any:
            failures = {"transient": 0, "rate_limited": 0, "token": 0}
            while True:
                gate.wait()
                try:
                    return func(*args, **kwargs)
                except TokenRejectedError as exc:
                    failures["token"] += 1
                    if failures["token"] > 1:
                        raise self._credentials_rejected() from exc
                    self.authenticator.invalidate()
                    wait = 0.0
                except RateLimitedError as exc:
                    failures["rate_limited"] += 1
                    tries = failures["rate_limited"]
                    if tries > self.retry_policy.max_rate_limited:
                        msg = f"{exc}: gave up after {tries} rate-limited tries"
                        raise UsersnapError(msg) from exc
                    gate.close_for(self._rate_limit_wait(exc, tries))
                    continue
                except TRANSIENT_ERRORS as exc:
                    failures["transient"] += 1
                    tries = failures["transient"]
                    if tries >= self.retry_policy.max_tries:
                        msg = f"{describe_failure(exc)}; gave up after {tries} tries"
                        raise UsersnapError(msg) from exc
                    wait = self.retry_policy.backoff_seconds(tries)
                    self.logger.warning(
                        "%s; retrying in %.1fs (try %d of %d)",
                        describe_failure(exc),
                        wait,
                        tries + 1,
                        self.retry_policy.max_tries,
                    )
                retry.sleep(wait)

        return call_with_retries

    def _rate_limit_wait(self, exc: RateLimitedError, tries: int) -> float:
        wait = self.retry_policy.rate_limit_seconds(exc.retry_after, tries)
        if exc.retry_after is not None and exc.retry_after > wait:
            self.logger.warning(
                "%s with Retry-After of %.0fs; capped at %.0fs",
                exc,
                exc.retry_after,
                wait,
            )
        else:
            self.logger.info("%s; waiting %.1fs as asked", exc, wait)
        return wait

    def _credentials_rejected(self) -> CredentialsRejectedError:
        return CredentialsRejectedError(
            f"Usersnap rejected the credentials (401) of JWT ID {self.config['jwt_id']!r}: "
            "check the jwt_id and jwt_secret settings; the API key may have been deleted "
            "or rotated in Usersnap (Settings > API)"
        )


def describe_failure(exc: Exception) -> str:
    """One line about a failed try, without URLs' query strings or bodies."""
    if isinstance(exc, RetriableAPIError):
        return str(exc)
    if isinstance(exc, requests.exceptions.Timeout):
        return "Usersnap did not answer in time"
    if isinstance(exc, requests.exceptions.RequestException | ConnectionError):
        return f"Connection to Usersnap failed ({type(exc).__name__})"
    return type(exc).__name__
