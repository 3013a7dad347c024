"""The base of every stream: what one run shares, and the SDK's hooks answered for Usersnap.

:class:`UsersnapStream` is a ``RESTStream`` whose public hooks say what Usersnap needs: the
run's JWT and session, error answers told apart (:meth:`UsersnapStream.validate_response`),
waits that honour ``Retry-After`` whenever a 429 comes
(:meth:`UsersnapStream.backoff_wait_generator`), and one conform step for every record
(:meth:`UsersnapStream.post_process`).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import itertools
import logging
import sys
import threading
import time
import typing as t
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import requests
from singer_sdk.contrib.msgspec import MsgSpecWriter, encoder
from singer_sdk.exceptions import AbortedSyncExceptionBase, RetriableAPIError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import RemoveRecordTransform
from singer_sdk.singerlib import ActivateVersionMessage, RecordMessage
from singer_sdk.streams import RESTStream
from typing_extensions import override

from tap_usersnap.client import (
    CONNECT_TIMEOUT_SECONDS,
    MAX_RATE_LIMITED,
    MAX_RETRY_AFTER_SECONDS,
    MAX_TRIES,
    MIN_RETRY_AFTER_SECONDS,
    Clock,
    CredentialsRejectedError,
    CursorPaginator,
    CursorRejectedError,
    InterruptedRunError,
    JWTAuthenticator,
    ProjectRefusedError,
    RateLimitedError,
    TokenRejectedError,
    UsersnapError,
    api_error_text,
    backoff_seconds,
    describe,
    describe_failure,
    envelope_data,
    loggable_path,
    new_session,
    project_in_url,
    read_envelope,
    says_project_gone,
)
from tap_usersnap.records import (
    MAX_QUOTED,
    RunReport,
    Shape,
    conform,
    fit_flattened,
    project_label,
    schema_of,
)
from tap_usersnap.sdk_private import OwnRecordMessages

if t.TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context
    from singer_sdk.singerlib.encoding.simple import Message

    from tap_usersnap.settings import Settings


_T = t.TypeVar("_T")
_R = t.TypeVar("_R")


@dataclasses.dataclass
class Listing:
    """The projects in scope, listed once per run (``GET /projects``) for every stream."""

    #: Every listed project that has an id, in scope (``project_ids``, if set).
    projects: list[dict[str, t.Any]]
    #: False when the listing said ``has_more`` but offered no way on.
    complete: bool

    def ids(self) -> set[str]:
        """The ids of the listed projects in scope."""
        return {p["project_id"] for p in self.projects}

    def names(self) -> dict[str, str]:
        """Each listed project's name (empty when it has none)."""
        return {p["project_id"]: p.get("name") or "" for p in self.projects}


@dataclasses.dataclass
class Run:
    """What every stream of one run shares: settings, auth, session, pauses and the report."""

    settings: Settings
    clock: Clock
    report: RunReport
    authenticator: JWTAuthenticator
    session: requests.Session
    #: The table version of this run's new reads (milliseconds since 1970; grows per run).
    table_version: int = dataclasses.field(default_factory=lambda: int(time.time() * 1000))
    #: Set when SIGTERM or SIGINT arrives: the run stops at the next record.
    stop_signal: int | None = None
    #: Lists the projects, once (the tap sets it; see :attr:`listing`).
    list_projects: t.Callable[[], Listing] | None = None
    #: What the tap does once every stream has synced (the tap sets it).
    after_sync: t.Callable[[], None] | None = None
    #: When requests may be sent again after a 429 (on the run's clock; see :meth:`close_for`).
    opens_at: float = 0.0
    _listing: Listing | None = None
    _gate: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def close_for(self, seconds: float) -> None:
        """Let no request of the run through for ``seconds`` from now (never a shorter pause)."""
        with self._gate:
            self.opens_at = max(self.opens_at, self.clock.monotonic() + seconds)

    def project_of(self, failure: BaseException) -> str:
        """`` (project 'name' (id))`` of a failed request's project, if the listing has it."""
        request = getattr(failure, "request", None) or getattr(
            getattr(failure, "response", None), "request", None
        )
        key = project_in_url(getattr(request, "url", None) or "")
        for project in self._listing.projects if key and self._listing else []:
            if key in (project["project_id"], project.get("api_key")):
                return f" (project {project_label(project.get('name'), project['project_id'])})"
        return ""

    @property
    def listing(self) -> Listing:
        """The run's one project listing, made when a stream first needs it."""
        if self._listing is None:
            assert self.list_projects is not None  # noqa: S101 - the tap sets it first
            self._listing = self.list_projects()
        return self._listing

    @classmethod
    def of(cls, settings: Settings, clock: Clock, logger: logging.Logger) -> Run:
        """The shared objects of a run with ``settings``."""
        return cls(
            settings,
            clock,
            RunReport(logger),
            JWTAuthenticator(settings.jwt_id, settings.jwt_secret),
            new_session(settings.api_url, settings.request_timeout),
        )


#: RECORD lines go to stdout in blocks of about this many bytes.
BLOCK_BYTES = 64 * 1024


class RecordsInBlocksWriter(MsgSpecWriter):
    """The SDK's msgspec writer, writing RECORD lines to stdout in blocks, not one by one.

    stdout may be unbuffered (``PYTHONUNBUFFERED``), a system call per write. A block goes
    out once it passes :data:`BLOCK_BYTES`, before any other message (then flushed: no STATE
    is seen before the records it covers), whenever the tap writes its state (the SDK skips
    a STATE equal to the last), before a failure ends the run, and at the run's end.
    """

    def __init__(self) -> None:
        super().__init__()
        self.block = bytearray()

    @override
    def write_message(self, message: Message) -> None:
        encoder.encode_into(message.to_dict(), self.block, -1)
        self.block += b"\n"
        if len(self.block) >= BLOCK_BYTES or not isinstance(message, RecordMessage):
            self.write_block()

    def write_block(self) -> None:
        """Write out the block, every byte (a raw stdout may take a part), and flush."""
        if not self.block:
            return
        out, written = sys.stdout.buffer, 0
        with memoryview(self.block) as view:
            while written < len(view):
                written += out.write(view[written:])
        self.block.clear()
        sys.stdout.flush()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


class ExplainedFailures(logging.Filter):
    """Drops a stream's ERROR line while a failure is handled that the tap tells in one line.

    The SDK logs "an unhandled error occurred" for any failed stream; the CLI then prints the
    failure's own line, so the user reads one line, not two.
    """

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        explained = isinstance(sys.exc_info()[1], UsersnapError | AbortedSyncExceptionBase)
        return not (explained and record.levelno >= logging.ERROR)


class UsersnapStream(OwnRecordMessages, RESTStream[str | None]):
    """What every Usersnap stream shares: the run's auth, session, answers, retries, pages.

    A stream names ``records_key`` (the list inside ``data``) and conforms each record to
    its schema file before it goes out (:meth:`post_process`).
    """

    records_key: t.ClassVar[str]
    #: The tap's own conform step (:meth:`post_process`) already fits each record to its
    #: schema; the SDK's per-property walk would only cost time (a third of it, profiled).
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE
    #: The field of an item the ``after`` cursor names.
    cursor_key: t.ClassVar[str]
    payload_as_json = True
    #: False, whatever the setting: the SDK's ACTIVATE_VERSION would go out before the
    #: records; the tap sends it after a complete read (:mod:`~tap_usersnap.deletes`).
    emit_activate_version_messages = False

    def __init__(self, tap: Tap, run: Run) -> None:
        self.run = run
        #: The tap, whose public writers send STATE and ACTIVATE_VERSION.
        self.singer_tap = tap
        super().__init__(tap, schema=schema_of(self.name))
        if not any(isinstance(f, ExplainedFailures) for f in self.logger.filters):
            self.logger.addFilter(ExplainedFailures())

    @functools.cached_property
    def shape(self) -> Shape:
        """What records are conformed to: the catalog's schema if one was given, or the tap's."""
        return Shape.of(self.effective_schema)

    @override
    def log_sync_costs(self) -> None:
        """The SDK's, then, for the tap's last stream, the run's end (:attr:`Run.after_sync`).

        The SDK calls it for every stream, selected or not, once every stream has synced.
        """
        super().log_sync_costs()
        if list(self.singer_tap.streams.values())[-1] is self and self.run.after_sync:
            self.run.after_sync()

    def use_table_version(self, version: int | None) -> None:
        """Make every RECORD from now on carry ``version`` (see :mod:`~tap_usersnap.deletes`)."""
        self.record_version = version

    def activate_version(self, version: int | None) -> None:
        """ACTIVATE_VERSION after this run's records, for every stream map that keeps them."""
        if version is None or not self.selected:
            return
        for stream_map in self.stream_maps:
            if not isinstance(stream_map, RemoveRecordTransform):
                message = ActivateVersionMessage(stream=stream_map.stream_alias, version=version)
                self.singer_tap.write_message(message)

    def at_once(self, func: t.Callable[[_T], _R], items: list[_T]) -> t.Iterator[_R]:
        """``func`` of each item, in order, up to ``concurrency`` at once (a request each)."""
        workers = max(1, min(self.run.settings.concurrency, len(items)))
        with concurrent.futures.ThreadPoolExecutor(workers, self.name) as pool:
            yield from pool.map(func, items)

    def write_records_out(self) -> None:
        """The RECORDs held in the writer's block out now (a failure may end the run next)."""
        t.cast("RecordsInBlocksWriter", self.singer_tap.message_writer).write_block()

    def write_state(self) -> None:
        """A STATE message with the tap's whole state, and every record before it out.

        The SDK writes no STATE equal to the last one, so the records are written out here.
        """
        self.singer_tap.state_writer.write_state(self.singer_tap.state)
        self.write_records_out()

    def stop_if_signalled(self) -> None:
        """After SIGTERM or SIGINT: the state reached as the last message, then stop.

        Called between records, so the STATE never cuts a line and covers every record out.
        """
        if self.run.stop_signal is not None:
            self.write_state()
            raise InterruptedRunError(self.run.stop_signal)

    @property
    @override
    def partitions(self) -> None:
        """None: each stream reads in one pass, whatever partitions a state names.

        The feedback stream keeps a partition a project itself; the SDK would read each
        context a state names as one more pass (a hand-edited state: a read per entry).
        """
        return None

    @property
    @override
    def url_base(self) -> str:
        return self.run.settings.api_url

    @property
    @override
    def authenticator(self) -> JWTAuthenticator:
        return self.run.authenticator

    @property
    @override
    def requests_session(self) -> requests.Session:
        return self.run.session

    @property
    @override
    def http_headers(self) -> dict[str, str]:
        return {**super().http_headers, "Accept": "application/json"}

    @property
    @override
    def timeout(self) -> tuple[float, float]:  # type: ignore[override]
        return (CONNECT_TIMEOUT_SECONDS, self.run.settings.request_timeout)

    @override
    def get_new_paginator(self) -> CursorPaginator:
        return CursorPaginator(self.records_key, self.cursor_key)

    @override
    def request_decorator(self, func: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
        """The SDK's retries around each try, every try after the run's 429 pause."""

        def gated(*args: t.Any) -> t.Any:
            self.pause(0.0)
            try:
                return func(*args)
            except requests.exceptions.TooManyRedirects as exc:
                last = exc.response.url if exc.response is not None else ""
                where = urlsplit(last).netloc.rpartition("@")[2] + loggable_path(last)
                msg = (
                    "Usersnap's answers redirect in a loop (more than 30 redirects, the last "
                    f"to {where}); check api_url"
                )
                raise UsersnapError(msg) from None

        return super().request_decorator(gated)

    @override
    def backoff_wait_generator(self) -> t.Generator[float, t.Any, None]:
        """The waits of one request, told by the failure each follows.

        A 429 waits its ``Retry-After`` (every request pauses with it, however often it
        comes); a 401 re-signs the token once; anything else backs off exponentially, for
        :data:`MAX_TRIES` tries in all. Waits pass on the run's clock (tests use a fake one).
        """
        tries = {"transient": 0, "rate_limited": 0, "token": 0}
        while True:
            failure = yield 0.0
            self.pause(self._wait_after(failure, tries))

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` on the run's clock, then out the run's 429 pause; a signal ends it.

        Nothing is written here (it may run in a reader's thread): the signal is raised to
        the stream, which writes the state reached.
        """
        clock, until = self.run.clock, self.run.clock.monotonic() + seconds
        while True:
            if self.run.stop_signal is not None:
                raise InterruptedRunError(self.run.stop_signal)
            remaining = max(until, self.run.opens_at) - clock.monotonic()
            if remaining <= 0:
                return
            clock.sleep(min(remaining, 1.0) if clock is time else remaining)

    def _wait_after(self, failure: BaseException, tries: dict[str, int]) -> float:
        """The seconds to wait before the next try (the 429 pause aside); raise to give up."""
        if isinstance(failure, TokenRejectedError):
            tries["token"] += 1
            if tries["token"] > 1:
                settings = self.run.settings
                msg = (
                    f"Usersnap rejected the credentials (401) of JWT ID {settings.jwt_id!r}: "
                    "check the jwt_id and jwt_secret settings; the API key may have been "
                    "deleted or rotated in Usersnap (Settings > API)"
                )
                raise CredentialsRejectedError(f"{msg}; {failure.hint}" if failure.hint else msg)
            self.run.authenticator.invalidate()
            return 0.0
        if isinstance(failure, RateLimitedError) and failure.retry_after is not None:
            if failure.retry_after > MAX_RETRY_AFTER_SECONDS:
                msg = (
                    f"{failure} with Retry-After of {failure.retry_after:.0f}s, more than the "
                    f"{MAX_RETRY_AFTER_SECONDS:.0f}s the tap waits in a run; stopped, the next "
                    "run resumes from the last STATE"
                )
                raise UsersnapError(msg) from failure
            wait = max(failure.retry_after, MIN_RETRY_AFTER_SECONDS)
            self.logger.info("%s; waiting %.1fs as asked", failure, wait)
            self.run.close_for(wait)
            return 0.0
        if isinstance(failure, RateLimitedError):
            tries["rate_limited"] += 1
            if tries["rate_limited"] > MAX_RATE_LIMITED:
                msg = f"{failure}: gave up after {tries['rate_limited']} rate-limited tries"
                raise UsersnapError(msg) from failure
            wait, said = backoff_seconds(tries["rate_limited"]), failure.said
            named = f"Retry-After {said[:40]!r} names no wait" if said else "no Retry-After"
            self.logger.info("%s; waiting %.1fs, the backoff (%s)", failure, wait, named)
            return wait
        tries["transient"] += 1
        if tries["transient"] >= MAX_TRIES:
            msg = f"{describe_failure(failure)}; gave up after {tries['transient']} tries"
            raise UsersnapError(msg) from failure
        wait = backoff_seconds(tries["transient"])
        self.logger.warning(
            "%s%s; retrying in %.1fs (try %d of %d)",
            describe_failure(failure),
            self.run.project_of(failure),
            wait,
            tries["transient"] + 1,
            MAX_TRIES,
        )
        return wait

    @override
    def backoff_max_tries(self) -> int:
        """No count of the SDK's: :meth:`backoff_wait_generator` decides when to give up."""
        return sys.maxsize

    @override
    def backoff_jitter(self, value: float) -> float:
        return value  # the waits are taken on the run's clock, already

    @override
    def backoff_handler(self, details: t.Any) -> None:
        """Nothing: each wait is logged once, naming its cause (never the request's body)."""

    @override
    def validate_response(self, response: requests.Response) -> None:
        """Raise what an answer stands for: a retry, a one-line failure, or nothing (a page)."""
        status, where = response.status_code, describe(response)
        if status == HTTPStatus.UNAUTHORIZED:
            hops = [r.url for r in response.history] + [response.url]
            strips = requests.sessions.SessionRedirectMixin().should_strip_auth
            if any(strips(a, b) for a, b in itertools.pairwise(hops)):
                first = response.history[0]
                msg = (
                    f"Usersnap's answer to {describe(first)} came from another host: "
                    f"{_origin(first.url)} redirected it to {_origin(response.url)}, which "
                    "answered 401; the credentials are never sent to another host, so set "
                    "api_url to the URL the redirect names if that is the API"
                )
                raise UsersnapError(msg)
            raise TokenRejectedError(f"Usersnap answered 401 to {where}", response)
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            raise RateLimitedError(f"Usersnap rate-limited {where} (429)", response)
        if status >= HTTPStatus.INTERNAL_SERVER_ERROR or status == HTTPStatus.REQUEST_TIMEOUT:
            msg = f"Usersnap answered {status} to {where}: {api_error_text(response)}"
            raise RetriableAPIError(msg, response)
        if status < HTTPStatus.BAD_REQUEST:
            if read_envelope(response).get("status") is False:
                msg = f"Usersnap answered {where} with status false: {api_error_text(response)}"
                raise UsersnapError(msg)
            self.check_page(response)
            return
        answer, gone = f"{status} {api_error_text(response)}", says_project_gone(response)
        refusals = (HTTPStatus.FORBIDDEN, HTTPStatus.NOT_FOUND, HTTPStatus.REQUEST_URI_TOO_LONG)
        if status in refusals or gone:  # 414: an id too long to ask
            project = project_in_url(response.url, "feedbacks")
            msg = (
                f"Usersnap project {project!r} does not exist or this JWT key cannot see it "
                f"({answer} on {where})"
                if project
                else f"Usersnap refused {where} ({answer})"
            )
            raise ProjectRefusedError(msg, answer, gone=gone)
        if "after" in parse_qs(urlsplit(response.request.url or "").query):
            msg = (
                f"Usersnap rejected the page cursor of {where} ({answer}); the item it names "
                "was probably deleted meanwhile"
            )
            raise CursorRejectedError(msg)
        raise UsersnapError(f"Usersnap rejected {where} ({answer})")

    def check_page(self, response: requests.Response) -> None:
        """A 200 without ``data.<records_key>`` as a list is a failed try, never "no items"."""
        data = read_envelope(response).get("data")
        items = data.get(self.records_key) if isinstance(data, dict) else None
        if not isinstance(items, list):
            found = "nothing" if items is None else f"a {type(items).__name__}"
            msg = (
                f"Usersnap answered {describe(response)} with a malformed page: expected "
                f"data.{self.records_key} to be a list, found "
                f"{found if isinstance(data, dict) else 'no data object'}"
            )
            raise RetriableAPIError(msg, response)

    @override
    def parse_response(self, response: requests.Response) -> t.Iterator[dict[str, t.Any]]:
        """The page's items; an entry that is not an object is skipped by name."""
        for position, item in enumerate(envelope_data(response)[self.records_key], start=1):
            if isinstance(item, dict):
                yield item
            else:
                self.run.report.skipped_item(
                    f"entry {position} of {describe(response)}",
                    f"it is not an object ({'null' if item is None else type(item).__name__})",
                )

    @override
    def post_process(
        self, row: dict[str, t.Any], context: Context | None = None
    ) -> dict[str, t.Any] | None:
        """The record, conformed to the stream's schema; the run stops here on a signal."""
        self.stop_if_signalled()
        for change in conform(row, self.shape):
            self.run.report.altered_item(self.describe_record(row), change)
        return self.fit_flattened(row)

    @functools.cached_property
    def flattened_levels(self) -> int:
        """The levels the SDK's flattening makes columns of (0: ``flattening_enabled`` off)."""
        stream_map = self.stream_maps[0]
        options = stream_map.flattening_options
        return options.max_level if stream_map.flattening_enabled and options else 0

    def fit_flattened(self, row: dict[str, t.Any]) -> dict[str, t.Any]:
        """With ``flattening_enabled``, the record fitted to the flattened columns."""
        if self.flattened_levels:
            fit_flattened(row, self.shape, self.flattened_levels)
        return row

    def describe_record(self, record: dict[str, t.Any]) -> str:
        """How a record is named in a warning: by its key (never by its content)."""
        key = " ".join(repr(str(record.get(k))[:MAX_QUOTED]) for k in self.primary_keys or ())
        return f"{self.name} record {key}" if key else f"a {self.name} record"
