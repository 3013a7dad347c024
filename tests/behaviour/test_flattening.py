"""The SDK's record flattening (``flattening_enabled``): records keep to the flattened schema.

Targets that write one column per schema property need every key of a RECORD to be one of
its SCHEMA's properties: meltanolabs-target-csv stops on any other key, target-postgres
drops it without a word.
"""

from __future__ import annotations

import json
import typing as t

import pytest

from harness.singer_run import SyncResult, run_sync
from tap_usersnap.tap import TapUsersnap

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap

RECORDING = {
    "file_resource_url": "https://resources.usersnap.com/rec.webm",
    "mime_type": "video/webm",
}
SHOT = {"annotated_image_url": "https://resources.usersnap.com/shot.png", "comments": []}
CLIENT = {"url": "https://app.example.com", "browser_name": "Firefox"}


def keys_outside_schema(result: SyncResult) -> dict[str, set[str]]:
    """``{stream: keys}`` of RECORD keys missing from the stream's last SCHEMA before them."""
    properties: dict[str, set[str]] = {}
    outside: dict[str, set[str]] = {}
    for message in result.messages:
        stream = message.get("stream", "")
        if message["type"] == "SCHEMA":
            properties[stream] = set(message["schema"]["properties"])
        elif message["type"] == "RECORD":
            extra = set(message["record"]) - properties[stream]
            if extra:
                outside.setdefault(stream, set()).update(extra)
    return outside


def by_id(result: SyncResult, stream: str = "feedback") -> dict[str, dict[str, t.Any]]:
    return {r["feedback_id"]: r for r in result.records(stream)}


@pytest.fixture
def mixed(fake: FakeUsersnap) -> tuple[FakeUsersnap, dict[str, str]]:
    """The sample plus items with each nested object null, present, partial or extended."""
    project = next(iter(fake.projects))
    items = {
        "all null": fake.add_feedback(project, custom_data=None),
        "all set": fake.add_feedback(
            project,
            client=CLIENT,
            screenshot=SHOT,
            screen_recording=RECORDING,
            custom_data={"plan": "pro", "nested": {"a": 1}},
        ),
        "empty objects": fake.add_feedback(
            project, client={}, screenshot={}, screen_recording={}, custom_data={}
        ),
        # Keys the schema does not declare: inside a flattened object, and at the top.
        "undeclared": fake.add_feedback(
            project,
            client={**CLIENT, "device_pixel_ratio": 2},
            screen_recording={**RECORDING, "duration_ms": 5000},
            new_api_field="x",
        ),
    }
    return fake, {name: item["feedback_id"] for name, item in items.items()}


@pytest.mark.parametrize("depth", [1, 3])
def test_every_flattened_record_key_is_a_flattened_schema_property(
    mixed: tuple[FakeUsersnap, dict[str, str]], depth: int
) -> None:
    fake, ids = mixed
    result = run_sync(fake.config(flattening_enabled=True, flattening_max_depth=depth))

    assert keys_outside_schema(result) == {}
    properties = result.schema("feedback")["schema"]["properties"]
    assert {"screenshot", "screen_recording", "client"}.isdisjoint(properties)
    records = by_id(result)
    assert len(records) == 3 * 12 + 4

    # A null object: each of its columns is null.
    none = records[ids["all null"]]
    columns = [p for p in properties if p.startswith(("client__", "screen"))]
    assert len(columns) == 14
    assert {column: none[column] for column in columns} == dict.fromkeys(columns)
    assert none["custom_data"] is None

    # A present object: its values, in their columns.
    full = records[ids["all set"]]
    assert full["screen_recording__mime_type"] == "video/webm"
    assert full["screen_recording__file_resource_url"] == RECORDING["file_resource_url"]
    assert full["screenshot__annotated_image_url"] == SHOT["annotated_image_url"]
    assert json.loads(full["screenshot__comments"]) == []
    assert full["client__browser_name"] == "Firefox"
    assert json.loads(full["custom_data"]) == {"plan": "pro", "nested": {"a": 1}}

    # Empty objects give no values; undeclared keys have no column and are left out.
    empty = records[ids["empty objects"]]
    assert not [column for column in columns if empty.get(column) is not None]
    undeclared = records[ids["undeclared"]]
    assert undeclared["client__url"] == CLIENT["url"]
    assert undeclared["screen_recording__mime_type"] == "video/webm"
    assert "new_api_field" not in undeclared


def test_flattening_with_stream_maps_and_deselected_properties(
    mixed: tuple[FakeUsersnap, dict[str, str]],
) -> None:
    """The other record paths: a stream map with an alias, and a deselected property."""
    fake, ids = mixed
    config = fake.config(
        flattening_enabled=True,
        flattening_max_depth=1,
        stream_maps={"feedback": {"__alias__": "feedback_flat", "email": "__NULL__"}},
    )
    catalog = TapUsersnap(config=config).catalog_dict
    feedback = next(s for s in catalog["streams"] if s["tap_stream_id"] == "feedback")
    for entry in feedback["metadata"]:
        if entry["breadcrumb"] == ["properties", "priority"]:
            entry["metadata"]["selected"] = False
    result = run_sync(config, catalog=catalog)

    assert keys_outside_schema(result) == {}
    records = by_id(result, "feedback_flat")
    assert len(records) == 3 * 12 + 4
    none = records[ids["all null"]]
    assert none["screen_recording__mime_type"] is None
    assert records[ids["all set"]]["screen_recording__mime_type"] == "video/webm"
    assert not [r for r in records.values() if "priority" in r or "email" in r]


def test_without_flattening_records_are_left_as_they_are(
    mixed: tuple[FakeUsersnap, dict[str, str]],
) -> None:
    fake, ids = mixed
    records = by_id(run_sync(fake.config()))
    none = records[ids["all null"]]
    assert (none["client"], none["screenshot"], none["screen_recording"]) == (None, None, None)
    undeclared = records[ids["undeclared"]]
    assert undeclared["client"]["device_pixel_ratio"] == 2
    assert undeclared["new_api_field"] == "x"
