"""Usersnap's cursor pagination: ``data.next.after`` while ``data.has_more`` is true."""

from __future__ import annotations

import typing as t

from singer_sdk.pagination import BaseAPIPaginator, SinglePagePaginator
from typing_extensions import override

from tap_usersnap.http.errors import PaginationError
from tap_usersnap.http.responses import envelope_data

if t.TYPE_CHECKING:
    import requests


def cursor_params(limit: int, after: str | None) -> dict[str, t.Any]:
    """The cursor parameters: ``limit`` always, ``after`` from the second page on."""
    return {"limit": limit, "after": after} if after else {"limit": limit}


class UsersnapCursorPaginator(BaseAPIPaginator[str | None]):
    """Reads the envelope's ``has_more`` and ``next.after``.

    The API's cursor is the id of the page's last item; where an answer says ``has_more``
    but gives no ``next`` (``GET /projects`` documents none), that id is the cursor. A cursor
    already seen would loop forever and ends the read with one line.
    """

    def __init__(self, records_key: str, id_key: str) -> None:
        super().__init__(None)
        self._records_key = records_key
        self._id_key = id_key
        self._seen: set[str] = set()
        #: True once a cursor was taken from the last item rather than from ``next``.
        self.used_fallback = False

    @override
    def has_more(self, response: requests.Response) -> bool:
        """Trust ``data.has_more``: a full page alone does not mean there is more."""
        return bool(envelope_data(response).get("has_more"))

    @override
    def continue_if_empty(self, response: requests.Response) -> bool:
        """An empty page that says ``has_more`` must be followed, not taken as the end."""
        return self.has_more(response)

    @override
    def get_next(self, response: requests.Response) -> str | None:
        """The next ``after`` cursor; fails on a repeated one or when there is none to take."""
        data = envelope_data(response)
        following = data.get("next")
        cursor = following.get("after") if isinstance(following, dict) else None
        if not cursor:
            cursor = self._last_id(data)
            self.used_fallback = True
        if cursor in self._seen:
            msg = (
                f"Usersnap returned cursor {cursor!r} a second time after {self.count} "
                "page(s); stopping rather than looping forever"
            )
            raise PaginationError(msg)
        self._seen.add(cursor)
        return cursor

    def _last_id(self, data: dict[str, t.Any]) -> str:
        """The id of the page's last item: the API's own cursor convention."""
        items = data.get(self._records_key) or []
        last = items[-1] if items else None
        cursor = last.get(self._id_key) if isinstance(last, dict) else None
        if not isinstance(cursor, str) or not cursor:
            msg = (
                "Usersnap said has_more but gave no next.after cursor, and the page's last "
                f"item has no {self._id_key} to continue after ({self.count} page(s) read); "
                "stopping rather than dropping the remaining items"
            )
            raise PaginationError(msg)
        return cursor


class ListingPaginator(SinglePagePaginator):
    """``GET /projects``: one answer, as the spec has it (no cursor, no parameters).

    Keeps the answer's ``data``, so the caller can tell a listing that says ``has_more``.
    """

    def __init__(self) -> None:
        super().__init__()
        #: The ``data`` object of the answer, once read.
        self.data: dict[str, t.Any] = {}

    @override
    def has_more(self, response: requests.Response) -> bool:
        """False: the listing has no way on; its ``data`` is kept."""
        self.data = envelope_data(response)
        return False
