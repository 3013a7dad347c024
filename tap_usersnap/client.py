"""The base stream for the Usersnap REST API: URL, auth, envelopes, errors and retries."""

from __future__ import annotations

import functools
import threading
import typing as t
from urllib.parse import urlsplit

from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import RemoveRecordTransform
from singer_sdk.singerlib import ActivateVersionMessage
from singer_sdk.streams import RESTStream
from typing_extensions import override

from tap_usersnap.answers import check_answer
from tap_usersnap.catalog import keep_keys
from tap_usersnap.deletes import ACTIVE, new_version, state_version
from tap_usersnap.envelope import describe_request, page_items, read_envelope
from tap_usersnap.errors import (
    UsersnapError,
)
from tap_usersnap.network import CONNECT_TIMEOUT_SECONDS, new_session
from tap_usersnap.pagination import UsersnapCursorPaginator
from tap_usersnap.sdk_private import FastRecordPath

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context
    from singer_sdk.singerlib import Catalog

    from tap_usersnap.auth import UsersnapJWTAuthenticator
    from tap_usersnap.tap import TapUsersnap


class UsersnapStream(FastRecordPath, RESTStream[str | None]):
    """Shared plumbing of every Usersnap stream.

    Subclasses set ``records_key``, the list inside the envelope's ``data`` object, and
    ``id_key``, the field the API's ``after`` cursor names.
    """

    records_key: t.ClassVar[str]
    id_key: t.ClassVar[str]
    payload_as_json = True
    #: Records come straight from JSON, so their types are JSON's already; the SDK's
    #: per-property conformance walk would only cost time (a third of it, profiled).
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: TapUsersnap, **kwargs: t.Any) -> None:
        #: The tap, for what streams share: the authenticator, the retrier, the report.
        self.usersnap = tap
        self._thread_local = threading.local()
        super().__init__(tap, **kwargs)

    @property
    @override
    def url_base(self) -> str:
        """The API root from the ``api_url`` setting."""
        return str(self.config["api_url"]).rstrip("/")

    @property
    @override
    def requests_session(self) -> requests.Session:
        """One session per thread, so threads reading ahead never share session state."""
        session: requests.Session | None = getattr(self._thread_local, "session", None)
        if session is None:
            session = new_session(self.url_base, float(self.config["request_timeout"]))
            self._thread_local.session = session
        return session

    @property
    @override
    def authenticator(self) -> UsersnapJWTAuthenticator:
        """One authenticator for the whole tap, so every stream shares the cached token."""
        return self.usersnap.jwt_authenticator

    @property
    @override
    def timeout(self) -> tuple[float, float]:  # type: ignore[override]
        """Connect and per-read timeouts; the whole answer is bounded too (``network``)."""
        return (CONNECT_TIMEOUT_SECONDS, float(self.config["request_timeout"]))

    def version_full_table(self) -> None:
        """With ``capture_deletes``, RECORDs carry a new table version, later than the last."""
        if self.captures_deletes and self.record_version is None:
            active = state_version(self.stream_state.get(ACTIVE))
            self.use_table_version(new_version(self.usersnap.table_version, active))

    def activate_version(self) -> None:
        """ACTIVATE_VERSION for the records of this run, after them all (see ``deletes``).

        The version becomes the stream's active one in state.
        """
        version = self.record_version
        if version is None or not self.selected:
            return
        for stream_map in self.stream_maps:
            if isinstance(stream_map, RemoveRecordTransform):
                continue  # a stream map drops this stream
            self.usersnap.write_message(
                ActivateVersionMessage(stream=stream_map.stream_alias, version=version)
            )
        self.stream_state[ACTIVE] = version

    @property
    @override
    def emit_activate_version_messages(self) -> bool:
        """False, whatever the setting: the SDK's would go out before the records.

        The tap sends ACTIVATE_VERSION itself, after a complete read (``deletes``).
        """
        return False

    @property
    def captures_deletes(self) -> bool:
        """The ``capture_deletes`` setting."""
        return bool(self.config.get("capture_deletes"))

    @property
    def page_size(self) -> int:
        """Items per page (``limit``), from the ``page_size`` setting."""
        return int(self.config["page_size"])

    @classmethod
    def keep_keys(cls, catalog: Catalog) -> None:
        """Make the stream's catalog entry name its keys and always select them.

        The tap applies it to the catalog it is given (``TapUsersnap.input_catalog``).
        """
        keys = list(t.cast("t.Sequence[str]", cls.primary_keys))
        name = cls.name  # type: ignore[misc]  # a class attribute in every Usersnap stream
        keep_keys(catalog, name, keys, t.cast("str | None", cls.replication_key))

    @override
    def generate_child_contexts(
        self,
        record: dict[str, t.Any],
        context: Context | None,
    ) -> t.Iterable[Context | None]:
        """None: no Usersnap stream has child streams (the SDK would copy every record)."""
        return ()

    @override
    def get_new_paginator(self) -> UsersnapCursorPaginator:
        """Follow ``data.next.after`` (or the last item's id) while ``data.has_more``."""
        return UsersnapCursorPaginator(self.records_key, self.id_key)

    @override
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

    @override
    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        """The items of ``data[records_key]`` (checked to be a list by validation).

        An entry that is not an object cannot be a record: skipped and reported.
        """
        for item in page_items(response, self.records_key):
            if isinstance(item, dict):
                yield item
            else:
                where = f"an entry of {describe_request(response)}"
                self.usersnap.report.skipped_item(where, f"it is not an object ({item!r:.20})")

    @override
    def validate_response(self, response: requests.Response) -> None:
        """Turn Usersnap's answers into retries or one-line failures; a 200 must be a page.

        Anything but a well-formed page is a failed try, never "no items".
        """
        check_answer(response)
        page_items(response, self.records_key)

    @override
    def request_decorator(self, func: t.Callable) -> t.Callable:
        """Retry with the run's :class:`~tap_usersnap.retry.Retrier`, not the SDK's backoff.

        The SDK's single try budget cannot tell a 429 (wait as told, however often it
        comes) from a 5xx (back off, give up after a few) or a 401 (re-sign once).
        """
        retrier = self.usersnap.retrier

        @functools.wraps(func)
        def call_with_retries(*args: t.Any, **kwargs: t.Any) -> t.Any:
            return retrier.call(lambda: func(*args, **kwargs))

        return call_with_retries

    def post_json(self, url: str, body: dict[str, t.Any]) -> dict[str, t.Any]:
        """``data`` of a POST outside the paged reads (a count), retried like any request."""

        def send() -> requests.Response:
            request = self.build_prepared_request(
                method="POST", url=url, json=body, headers=self.http_headers
            )
            response = self.requests_session.send(request, timeout=self.timeout)
            check_answer(response)
            return response

        data = read_envelope(self.usersnap.retrier.call(send)).get("data")
        if not isinstance(data, dict):
            msg = f"Usersnap answered POST {urlsplit(url).path} without a data object"
            raise UsersnapError(msg)
        return data
