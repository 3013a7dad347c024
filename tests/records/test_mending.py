"""Values the API sends in a form the schema does not allow: emitted mended, named, counted."""

from __future__ import annotations

import json
import logging
import typing as t

import pytest
import requests
from jsonschema import Draft7Validator

from fake_usersnap.malformed import item_field, project_without_id
from harness.singer_run import run_sync
from tap_usersnap.client import needs_text_check
from tap_usersnap.records import Shape, conform

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap

FILTER = r"POST .*/filter$"


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def summary(skipped: int, altered: int) -> str:
    return (
        f"Run summary: {skipped} item(s) skipped, {altered} emitted with a value replaced, "
        "0 endpoint(s) refused; each is named in a warning above"
    )


def test_an_epoch_updated_at_is_emitted_as_null_by_name(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    project_id = next(iter(fake.projects))
    first = min(fake.feedback[project_id], key=lambda i: (i["created_at"], i["feedback_id"]))
    fake.inject(
        "mangle",
        match=f"POST /projects/{project_id}/feedbacks/filter$",
        transform=item_field("updated_at", 1700000000),
    )

    result = run_sync(fake.config(capture_edits=False))

    records = {r["feedback_id"]: r for r in result.records("feedback")}
    assert sorted(records) == sorted(fake.all_feedback_ids())
    assert records[first["feedback_id"]]["updated_at"] is None
    assert warnings(caplog) == [
        f"Changed feedback #{first['feedback_number']} (id {first['feedback_id']}) of project "
        f"{project_id}: its updated_at is not a timestamp; emitted as null",
        summary(skipped=0, altered=1),
    ]


def test_a_listed_project_without_project_id_is_skipped_by_position(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    listed = list(fake.projects.values())
    fake.inject("mangle", match=r"GET /projects$", transform=project_without_id(1))

    result = run_sync(fake.config())

    kept = [listed[0]["project_id"], listed[2]["project_id"]]
    assert sorted(result.ids("projects", key="project_id")) == sorted(kept)
    assert {r["project_id"] for r in result.records("feedback")} == set(kept)
    assert warnings(caplog) == [
        f"Skipped project 2 ({listed[1]['name']!r}) of the projects listing: it has no project_id",
        summary(skipped=1, altered=0),
    ]


WRONG_TYPES = [
    # field, sent, emitted
    ("labels", "bug, billing", None),
    ("feedback_number", "12", 12),
    ("ordered_inputs", {"order": 0}, None),
    ("status_type", 3, "3"),
    ("custom_data", ["a", "b"], None),
    ("custom_data", "plan=pro", None),
    ("client", "Firefox", None),
    ("is_demo", "false", False),
    ("email", {"address": "a@example.com"}, '{"address": "a@example.com"}'),
]


@pytest.mark.parametrize(("field", "sent", "emitted"), WRONG_TYPES)
def test_a_value_of_the_wrong_type_is_converted_or_nulled_by_name(
    fake: FakeUsersnap,
    caplog: pytest.LogCaptureFixture,
    field: str,
    sent: t.Any,
    emitted: t.Any,
) -> None:
    project_id = next(iter(fake.projects))
    first = min(fake.feedback[project_id], key=lambda i: (i["created_at"], i["feedback_id"]))
    on_pages(fake, project_id, item_field(field, sent))
    with caplog.at_level(logging.WARNING):
        result = run_sync(fake.config(concurrency=1))
    assert sorted(result.ids()) == sorted(fake.all_feedback_ids())
    record = next(r for r in result.records("feedback") if r["feedback_id"] == first["feedback_id"])
    assert record[field] == emitted
    assert_every_record_validates(result)
    (changed,) = [w for w in warnings(caplog) if w.startswith("Changed")]
    assert changed.startswith(
        f"Changed feedback #{record['feedback_number']} (id {first['feedback_id']}) of project "
        f"{project_id}: its {field} was a {type(sent).__name__}"
    )
    assert summary(skipped=0, altered=1) in warnings(caplog)


def test_a_nested_value_of_the_wrong_type_is_mended_by_its_path(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    project_id = next(iter(fake.projects))
    client = {"screen_width": "1024", "browser_name": 7}
    on_pages(fake, project_id, item_field("client", client))
    with caplog.at_level(logging.WARNING):
        result = run_sync(fake.config(concurrency=1))
    assert_every_record_validates(result)
    mended = [
        r["client"]
        for r in result.records("feedback")
        if r["client"] == {"screen_width": 1024, "browser_name": "7"}
    ]
    assert len(mended) == 1
    assert {
        w.split(": ", 1)[1].split(" was")[0] for w in warnings(caplog) if w.startswith("Changed")
    } == {
        "its client.screen_width",
        "its client.browser_name",
    }


def test_nul_and_lone_surrogates_are_removed_everywhere_by_name(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    project_id = next(iter(fake.projects))
    secret_text = "call me\x00 at home \ud83d"
    custom = {"note\x00": secret_text, "nested": [{"deep": "a\ud800b"}]}

    def poison(envelope: dict, request: t.Any) -> dict:
        items = envelope["data"]["feedbacks"]
        if items:
            items[0]["email"] = "visitor\x00@example.com"
            items[0]["custom_data"] = custom
        return envelope

    on_pages(fake, project_id, poison)
    with caplog.at_level(logging.WARNING):
        result = run_sync(fake.config(concurrency=1))
    assert_every_record_validates(result)
    record = next(r for r in result.records("feedback") if r["email"] == "visitor@example.com")
    assert record["custom_data"] == {
        "note": "call me at home \ufffd",
        "nested": [{"deep": "a\ufffdb"}],
    }
    changed = [w for w in warnings(caplog) if w.startswith("Changed")]
    assert [w.split(": ", 1)[1] for w in changed] == [
        "its custom_data held a NUL character or a lone surrogate: removed or replaced by U+FFFD",
        "its email held a NUL character or a lone surrogate: removed or replaced by U+FFFD",
    ]
    assert "call me" not in caplog.text  # no feedback text in the log


def test_a_page_only_the_lenient_reader_takes_is_mended_too(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    """UTF-16 is JSON to the standard library (msgspec refuses it): its NUL is not an escape."""
    project_id = next(iter(fake.projects))

    def utf16(envelope: dict, request: t.Any) -> bytes:
        items = envelope["data"]["feedbacks"]
        if items:
            items[0]["email"] = "visitor\x00@example.com"
            items[0]["custom_data"] = {"note": "half an emoji \ud83d"}
        return json.dumps(envelope, ensure_ascii=False).encode("utf-16", "surrogatepass")

    on_pages(fake, project_id, utf16)
    with caplog.at_level(logging.WARNING):
        result = run_sync(fake.config(concurrency=1))
    assert_every_record_validates(result)
    record = next(r for r in result.records("feedback") if r["email"] == "visitor@example.com")
    assert record["custom_data"] == {"note": "half an emoji \ufffd"}


def test_emoji_pass_unchanged_and_unreported(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    project_id = next(iter(fake.projects))
    text = "love it \U0001f600 \U0001f389 \\ud83d (typed, not a surrogate)"

    def emoji(envelope: dict, request: t.Any) -> dict:
        for item in envelope["data"]["feedbacks"]:
            item["custom_data"] = {"note": text}
        return envelope

    on_pages(fake, project_id, emoji)
    with caplog.at_level(logging.WARNING):
        result = run_sync(fake.config(concurrency=1))
    notes = [r["custom_data"] for r in result.records("feedback") if r["project_id"] == project_id]
    assert notes
    assert {n["note"] for n in notes} == {text}
    assert not [w for w in warnings(caplog) if w.startswith("Changed")]


@pytest.mark.parametrize(
    ("text", "walk"),
    [
        ("emoji \U0001f600 and \U0001f389", False),
        ("plain", False),
        ("typed \\ud83d\\ude00 and \\u0000", False),
        ("nul \x00", True),
        ("lone high \ud83d x", True),
        ("lone high at the end \ud83d", True),
        ("lone low \ude00", True),
        ("two highs \ud83d\ud83d\ude00", True),
        ("a backslash, then a lone high \\\ud83d", True),
        ("a high, then typed text \ud83d\\ude00", True),
    ],
)
def test_only_a_nul_or_a_lone_surrogate_makes_a_page_walk_its_text(text: str, walk: bool) -> None:
    response = requests.Response()
    response._content = json.dumps({"data": {"feedbacks": [{"note": text}]}}).encode()
    assert needs_text_check(response) is walk


def on_pages(fake: FakeUsersnap, project_id: str, transform: t.Callable[..., t.Any]) -> None:
    """Apply ``transform`` to the project's first page of new feedback (not the edit scan's)."""

    def first_page_only(envelope: dict, request: t.Any) -> t.Any:
        if request.params.get("limit") == "1" or request.params.get("after"):
            return envelope
        return transform(envelope, request)

    fake.inject(
        "mangle", match=rf"/{project_id}/feedbacks/filter$", transform=first_page_only, times=10**6
    )


def assert_every_record_validates(result: t.Any) -> None:
    """Each RECORD against its stream's SCHEMA message, as a target checks it."""
    schemas = {m["stream"]: m["schema"] for m in result.messages if m["type"] == "SCHEMA"}
    for message in result.messages:
        if message["type"] == "RECORD":
            validator = Draft7Validator(schemas[message["stream"]])
            errors = [e.message for e in validator.iter_errors(message["record"])]
            assert errors == [], (message["record"].get("feedback_id"), errors)
            assert "\x00" not in json.dumps(message["record"], ensure_ascii=False)
            json.dumps(message["record"], ensure_ascii=False).encode("utf-8")  # no lone surrogate


@pytest.mark.parametrize("value", ["2024-01-01T10:00:00.000000Z", "2024-01-01T10:00:00Z"])
def test_a_timestamp_in_a_date_time_field_that_takes_no_text_is_nulled_by_name(
    value: str,
) -> None:
    """A hand-written catalog may say date-time of an integer field: a string fits no row."""
    shape = Shape.of(
        {"properties": {"closed_at": {"type": ["integer", "null"], "format": "date-time"}}}
    )
    record = {"closed_at": value}

    changes = conform(record, shape)

    assert record == {"closed_at": None}
    assert changes == ["its closed_at was a str, not integer or null: emitted as null"]


def test_a_key_cleaned_into_a_siblings_name_keeps_both_values() -> None:
    record = {"custom_data": {"plan\x00": "free", "plan": "enterprise"}}

    changes = conform(record, Shape.of({"properties": {"custom_data": {"type": "object"}}}))

    assert record == {"custom_data": {"plan": "enterprise", "plan\ufffd": "free"}}
    assert changes == [
        "its custom_data held a NUL character or a lone surrogate: removed or replaced by U+FFFD"
    ]
