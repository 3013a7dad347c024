"""The envelope: strict pages, bodies too deep to decode, paths fit for logs."""

from __future__ import annotations

import json

import msgspec
import pytest
import requests

from tap_usersnap.envelope import (
    MAX_BODY_DEPTH,
    TOO_DEEP,
    cut_deep_values,
    loggable_path,
    page_items,
    read_envelope,
)
from tap_usersnap.errors import MalformedResponseError


def answer(body: bytes) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = body
    response.request = requests.Request("POST", "http://127.0.0.1/v0.1/projects/p/x").prepare()
    return response


def test_a_well_formed_page_gives_its_items() -> None:
    body = {"status": True, "data": {"feedbacks": [{"feedback_id": "a"}], "has_more": False}}
    assert page_items(answer(json.dumps(body).encode()), "feedbacks") == [{"feedback_id": "a"}]


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (None, "no data object"),
        ({"feedbacks": None}, "nothing"),
        ({"feedbacks": "x"}, "a str"),
        ({"feedbacks": {"a": 1}}, "a dict"),
    ],
)
def test_anything_but_a_list_is_a_failed_try(data: object, found: str) -> None:
    body = json.dumps({"status": True, "data": data}).encode()
    with pytest.raises(MalformedResponseError, match=rf"found {found}$"):
        page_items(answer(body), "feedbacks")


def test_a_body_too_deep_to_decode_keeps_its_other_items() -> None:
    deep = '{"a":' * 5000 + '"}{\\"]"' + "}" * 5000
    body = (
        '{"status":true,"data":{"feedbacks":[{"feedback_id":"x","custom_data":'
        + deep
        + '},{"feedback_id":"y","custom_data":{"b":"[{"}}]}}'
    ).encode()
    items = read_envelope(answer(body))["data"]["feedbacks"]
    assert [item["feedback_id"] for item in items] == ["x", "y"]
    assert items[1]["custom_data"] == {"b": "[{"}
    assert TOO_DEEP in msgspec.json.encode(items[0]).decode()


def test_cutting_leaves_a_shallow_body_as_it_is() -> None:
    body = b'{"a":[1,{"b":"}]"}],"c":"{"}'
    assert cut_deep_values(body) == body
    too_deep = b"[" * (MAX_BODY_DEPTH + 2) + b"]" * (MAX_BODY_DEPTH + 2)
    value, depth = msgspec.json.decode(cut_deep_values(too_deep)), 0
    while isinstance(value, list):
        value, depth = value[0], depth + 1
    assert (depth, value) == (MAX_BODY_DEPTH, TOO_DEEP)


def test_a_projects_api_key_never_reaches_a_log_line() -> None:
    assert loggable_path("https://h/v0.1/projects/key-1/assignees?x=1") == (
        "/v0.1/projects/{api_key}/assignees"
    )
    assert loggable_path("https://h/v0.1/projects/p1/feedbacks/filter") == (
        "/v0.1/projects/p1/feedbacks/filter"
    )
