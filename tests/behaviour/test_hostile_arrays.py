"""Hostile array elements: each RECORD still meets the SCHEMA the tap emitted.

An element that cannot be converted without loss is left out of its array, the good ones
kept in order; a declared field inside an element is conformed at any depth. Each change is
one warning naming the item and the field, never quoting the content.
"""

from __future__ import annotations

import logging
import typing as t

import pytest

from fake_usersnap import text_input
from harness.expect import assert_every_record_validates
from harness.singer_run import SyncResult, run_sync

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap

#: In every hostile value below; it must never reach a log line.
MARKER = "canary-7c1f"
TYPED = text_input(0, "Comment", f"typed by a visitor {MARKER}")
ASKED = {"order": 1, "label": "Happy?", "boolean_value": True, "text_value": None, "value": None}
BUG = {"company_label_id": "l-1", "identifier": "bug", "name": "Bug", "color": "#f00"}
NOTE = {"label": "1", "comment": f"the button {MARKER}"}


def shot(comments: list[t.Any]) -> dict[str, t.Any]:
    return {"annotated_image_url": "https://example.com/a.png", "comments": comments}


#: id, the item's fields as the API sends them, the same fields as emitted, the change lines.
CASES = [
    pytest.param(
        {"ordered_inputs": [TYPED, None, ASKED]},
        {"ordered_inputs": [TYPED, ASKED]},
        ["its ordered_inputs[1] was a null, not object: left out"],
        id="ordered_inputs null element",
    ),
    pytest.param(
        {"ordered_inputs": [f"some text {MARKER}", TYPED]},
        {"ordered_inputs": [TYPED]},
        ["its ordered_inputs[0] was a str, not object: left out"],
        id="ordered_inputs text element",
    ),
    pytest.param(
        {"ordered_inputs": [TYPED, 5]},
        {"ordered_inputs": [TYPED]},
        ["its ordered_inputs[1] was a int, not object: left out"],
        id="ordered_inputs number element",
    ),
    pytest.param(
        {"ordered_inputs": [None, [MARKER], ASKED, f"{MARKER}"]},
        {"ordered_inputs": [ASKED]},
        [
            "its ordered_inputs[0] was a null, not object: left out",
            "its ordered_inputs[1] was a list, not object: left out",
            "its ordered_inputs[3] was a str, not object: left out",
        ],
        id="ordered_inputs several bad elements",
    ),
    pytest.param(
        {"ordered_inputs": [{"order": "x", "label": 5, "value": {"a": MARKER}}]},
        {"ordered_inputs": [{"order": None, "label": "5", "value": f'{{"a": "{MARKER}"}}'}]},
        [
            "its ordered_inputs[0].order was a str, not integer or null: emitted as null",
            "its ordered_inputs[0].label was a int: emitted as str",
            "its ordered_inputs[0].value was a dict: emitted as str",
        ],
        id="ordered_inputs fields of the wrong type",
    ),
    pytest.param(
        {"ordered_inputs": [TYPED, {**ASKED, "boolean_value": "true"}]},
        {"ordered_inputs": [TYPED, ASKED]},
        ["its ordered_inputs[1].boolean_value was a str: emitted as bool"],
        id="ordered_inputs boolean_value as text",
    ),
    pytest.param(
        {"labels": [None, BUG]},
        {"labels": [BUG]},
        ["its labels[0] was a null, not object: left out"],
        id="labels null element",
    ),
    pytest.param(
        {"labels": [BUG, f"text {MARKER}"]},
        {"labels": [BUG]},
        ["its labels[1] was a str, not object: left out"],
        id="labels text element",
    ),
    pytest.param(
        {"labels": [{"name": 5}, BUG]},
        {"labels": [{"name": "5"}, BUG]},
        ["its labels[0].name was a int: emitted as str"],
        id="labels name a number",
    ),
    pytest.param(
        {"screenshot": shot([f"str {MARKER}", NOTE])},
        {"screenshot": shot([NOTE])},
        ["its screenshot.comments[0] was a str, not object: left out"],
        id="screenshot comments text element",
    ),
    pytest.param(
        {"screenshot": shot([NOTE, None])},
        {"screenshot": shot([NOTE])},
        ["its screenshot.comments[1] was a null, not object: left out"],
        id="screenshot comments null element",
    ),
    pytest.param(
        {"screenshot": shot([{"label": 2, "comment": {"text": MARKER}}])},
        {"screenshot": shot([{"label": "2", "comment": f'{{"text": "{MARKER}"}}'}])},
        [
            "its screenshot.comments[0].label was a int: emitted as str",
            "its screenshot.comments[0].comment was a dict: emitted as str",
        ],
        id="screenshot comments fields of the wrong type",
    ),
]


def run_with(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture, fields: dict[str, t.Any]
) -> tuple[SyncResult, str, list[dict[str, t.Any]]]:
    """A run over one project whose middle item carries ``fields``; its project and items."""
    project_id = fake.add_project("Web shop")["project_id"]
    items = [fake.add_feedback(project_id, **f) for f in ({}, fields, {})]
    with caplog.at_level(logging.WARNING):
        result = run_sync(fake.config())
    return result, project_id, items


@pytest.mark.parametrize(("sent", "emitted", "changes"), CASES)
def test_a_bad_array_element_is_left_out_or_mended_by_name(
    empty_fake: FakeUsersnap,
    caplog: pytest.LogCaptureFixture,
    sent: dict[str, t.Any],
    emitted: dict[str, t.Any],
    changes: list[str],
) -> None:
    result, project_id, items = run_with(empty_fake, caplog, sent)

    assert_every_record_validates(result)
    assert result.ids() == [item["feedback_id"] for item in items]
    bad = items[1]
    record = result.records("feedback")[1]
    assert {field: record[field] for field in emitted} == emitted
    named = f"Changed feedback #{bad['feedback_number']} (id {bad['feedback_id']}) of project "
    changed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Changed")]
    assert changed == [f"{named}{project_id}: {change}" for change in changes]
    assert MARKER not in caplog.text


def test_the_derived_fields_come_from_the_conformed_elements(
    empty_fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    sent = {
        "ordered_inputs": [
            None,
            {**TYPED, "order": "0"},
            {**ASKED, "boolean_value": "false"},
            {"order": 2, "label": 7, "value": 4},
            f"{MARKER}",
        ],
        "labels": [f"{MARKER}", {"name": 5}, BUG, None],
    }
    result, _, _ = run_with(empty_fake, caplog, sent)

    assert_every_record_validates(result)
    record = result.records("feedback")[1]
    assert record["conversation"] == [TYPED["text_value"]]
    assert record["input_values"] == {"Happy?": False, "7": 4}
    assert record["label_names"] == ["5", "Bug"]
    assert MARKER not in caplog.text


def test_well_formed_arrays_pass_unchanged_and_unlogged(
    empty_fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    sent = {
        "ordered_inputs": [TYPED, ASKED],
        "labels": [BUG, {**BUG, "name": None, "extra": [1, {"x": None}]}],
        "screenshot": shot([NOTE, {"label": None, "comment": None, "pin": {"x": 1}}]),
    }
    result, _, _ = run_with(empty_fake, caplog, sent)

    assert_every_record_validates(result)
    record = result.records("feedback")[1]
    assert {field: record[field] for field in sent} == sent
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
