"""The envelope: strict pages, bodies too deep to decode, paths fit for logs."""

from __future__ import annotations

import json
import logging
import typing as t

import msgspec
import pytest
import requests

from fake_usersnap.protocol import encode_json
from harness.reliability import BAD_INPUT, FaultScenario
from tap_usersnap.http.errors import MalformedResponseError
from tap_usersnap.http.loggable import loggable_path
from tap_usersnap.http.responses import (
    MAX_BODY_DEPTH,
    TOO_DEEP,
    cut_deep_values,
    page_items,
    read_envelope,
)

if t.TYPE_CHECKING:
    from fake_usersnap import RecordedRequest

FILTER = r"POST .*/filter$"


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
    # Deep enough for a RecursionError on every supported Python: 3.13 decodes 5,000 levels
    # (its C recursion limit is higher than 3.11's and 3.12's) and 3.14 measures the stack.
    levels = 200_000
    deep = '{"a":' * levels + '"}{\\"]"' + "}" * levels
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


def test_a_byte_that_is_not_utf8_costs_nothing_but_that_character(
    scenario: FaultScenario,
) -> None:
    fake = scenario.fake
    project_id = next(iter(fake.projects))
    marker = b'"text_value": "'

    def break_one_byte(envelope: dict, request: RecordedRequest) -> bytes:
        body = encode_json(envelope)
        at = body.index(marker) + len(marker)
        return body[:at] + b"\xff" + body[at:]

    fake.inject("mangle", match=FILTER, skip=1, transform=break_one_byte)
    played = scenario.play("a byte that is not UTF-8 in a page", group=BAD_INPUT)

    replaced = [
        (r["feedback_id"], answer["text_value"])
        for r in played.first.records("feedback")
        for answer in r["ordered_inputs"] or []
        if "\ufffd" in (answer.get("text_value") or "")
    ]
    assert len(replaced) == 1
    feedback_id, text = replaced[0]
    original = next(i for i in fake.feedback[project_id] if i["feedback_id"] == feedback_id)
    assert text == "\ufffd" + next(
        a["text_value"] for a in original["ordered_inputs"] if a.get("text_value")
    )
    cursor = fake.requests_to(FILTER)[1].params["after"]
    warnings = [r.getMessage() for r in scenario.caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"Usersnap answered POST /v0.1/projects/{project_id}/feedbacks/filter (page after "
        f"{cursor}) with bytes that are not UTF-8; each was read as U+FFFD (the replacement "
        "character) and the page kept"
    ]
    assert "Traceback" not in played.logs
