"""The cursor paginator: follows next.after, stops on has_more false, refuses loops."""

from __future__ import annotations

import json

import pytest
import requests

from tap_usersnap.http.errors import PaginationError
from tap_usersnap.http.pagination import UsersnapCursorPaginator


def page(*, has_more: bool, after: str | None, items: int = 1) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    data = {
        "has_more": has_more,
        "count": 9,
        "feedbacks": [{"feedback_id": "x"}] * items,
        "next": {"after": after, "limit": 1, "query_string": ""} if after else None,
    }
    response._content = json.dumps({"status": True, "data": data}).encode()
    response.request = requests.Request("POST", "http://127.0.0.1/v0.1/p").prepare()
    return response


def test_follows_cursor_then_stops_when_has_more_is_false() -> None:
    paginator = UsersnapCursorPaginator("feedbacks", "feedback_id")
    assert paginator.current_value is None
    paginator.advance(page(has_more=True, after="a"))
    assert paginator.current_value == "a"
    assert not paginator.finished
    paginator.advance(page(has_more=True, after="b"))
    assert paginator.current_value == "b"
    paginator.advance(page(has_more=False, after="c"))
    assert paginator.finished
    assert paginator.count == 3


def test_repeated_cursor_is_an_error_not_a_loop() -> None:
    paginator = UsersnapCursorPaginator("feedbacks", "feedback_id")
    paginator.advance(page(has_more=True, after="a"))
    paginator.advance(page(has_more=True, after="b"))
    with pytest.raises(PaginationError, match="'a' a second time"):
        paginator.advance(page(has_more=True, after="a"))


def test_has_more_without_cursor_continues_after_the_last_item() -> None:
    paginator = UsersnapCursorPaginator("feedbacks", "feedback_id")
    paginator.advance(page(has_more=True, after=None))
    assert paginator.current_value == "x"
    assert paginator.used_fallback


def test_has_more_without_cursor_or_items_is_an_error_not_a_silent_stop() -> None:
    paginator = UsersnapCursorPaginator("feedbacks", "feedback_id")
    with pytest.raises(PaginationError, match=r"no next\.after cursor, and the page's last"):
        paginator.advance(page(has_more=True, after=None, items=0))


def test_empty_page_that_says_has_more_is_followed() -> None:
    paginator = UsersnapCursorPaginator("feedbacks", "feedback_id")
    assert paginator.continue_if_empty(page(has_more=True, after="a", items=0))
    assert not paginator.continue_if_empty(page(has_more=False, after=None, items=0))
