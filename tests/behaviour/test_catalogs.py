"""Hand-written catalogs: keys deselected or left unnamed are still emitted, and
FULL_TABLE in the catalog reads everything again.
"""

from __future__ import annotations

import json
import logging
import typing as t
from pathlib import Path

import pytest

from harness.expect import assert_every_record_validates, error_lines, messages_at
from harness.singer_run import bookmarks, run_cli, run_sync
from tap_usersnap.tap import TapUsersnap

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap


FILTER = r"POST .*/filter$"

# -------------------------------------------------------------------- hand-written catalogs


def hand_written_catalog(
    fake: FakeUsersnap, stream: str, fields: dict[str, dict[str, t.Any]], *, keys: bool
) -> dict[str, t.Any]:
    """The discovered catalog with ``fields``' metadata replaced (no ``inclusion``).

    Without ``keys``, the entry names no key properties or replication key either.
    """
    catalog = TapUsersnap(config=fake.config()).catalog_dict
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == stream)
    replaced = {("properties", name) for name in fields}
    entry["metadata"] = [m for m in entry["metadata"] if tuple(m["breadcrumb"]) not in replaced]
    entry["metadata"] += [
        {"breadcrumb": ["properties", name], "metadata": metadata}
        for name, metadata in fields.items()
    ]
    if not keys:
        for name in ("key_properties", "replication_key", "replication_method"):
            entry.pop(name, None)
        stream_metadata = next(m for m in entry["metadata"] if m["breadcrumb"] == [])
        for name in ("table-key-properties", "valid-replication-keys", "replication-key"):
            stream_metadata["metadata"].pop(name, None)
    return catalog


@pytest.mark.parametrize("keys", [True, False], ids=["entry keeps its keys", "no keys at all"])
def test_catalog_deselecting_feedback_keys_still_emits_them(fake: FakeUsersnap, keys: bool) -> None:
    deselected = {"selected": False}
    catalog = hand_written_catalog(
        fake,
        "feedback",
        {"created_at": deselected, "feedback_id": deselected, "email": deselected},
        keys=keys,
    )
    result = run_sync(fake.config(page_size=5), catalog=catalog)

    records = result.records("feedback")
    assert sorted(r["feedback_id"] for r in records) == sorted(fake.all_feedback_ids())
    created = {i["feedback_id"]: i["created_at"] for items in fake.feedback.values() for i in items}
    assert all(r["created_at"] == created[r["feedback_id"]] for r in records)
    assert not [r for r in records if "email" in r]
    assert all("status_type" in r for r in records)  # the rest stays selected
    schema = result.schema("feedback")
    assert schema["key_properties"] == ["feedback_id"]
    assert schema["bookmark_properties"] == ["created_at"]
    properties = set(schema["schema"]["properties"])
    assert {"feedback_id", "created_at"} <= properties
    assert "email" not in properties
    assert all(set(r) <= properties for r in records)  # a target can load every field
    assert bookmarks(result.final_state) == {
        pid: max(i["created_at"] for i in items) for pid, items in fake.feedback.items()
    }


@pytest.mark.parametrize("keys", [True, False], ids=["entry keeps its keys", "no keys at all"])
def test_catalog_deselecting_the_project_id_still_emits_it(fake: FakeUsersnap, keys: bool) -> None:
    deselected = {"selected": False}
    catalog = hand_written_catalog(
        fake, "projects", {"project_id": deselected, "name": deselected}, keys=keys
    )
    result = run_sync(fake.config(), catalog=catalog)

    records = result.records("projects")
    assert sorted(r["project_id"] for r in records) == sorted(fake.projects)
    assert not [r for r in records if "name" in r]
    assert {r["api_key"] for r in records} == {p["api_key"] for p in fake.projects.values()}
    schema = result.schema("projects")
    assert schema["key_properties"] == ["project_id"]
    assert "project_id" in schema["schema"]["properties"]
    assert "name" not in schema["schema"]["properties"]
    assert all(set(r) <= set(schema["schema"]["properties"]) for r in records)


# ------------------------------------------------------------------------------- FULL_TABLE


def full_table_catalog(fake: FakeUsersnap, where: str) -> dict[str, t.Any]:
    """The discovered catalog asking for FULL_TABLE on feedback, in the entry or in its
    stream metadata (then, as in a hand-written catalog, the entry names no method: the
    SDK lets an entry's ``replication_method`` win over the metadata)."""
    catalog = TapUsersnap(config=fake.config()).catalog_dict
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == "feedback")
    if where == "entry":
        entry["replication_method"] = "FULL_TABLE"
    else:
        del entry["replication_method"]
        stream_metadata = next(m for m in entry["metadata"] if m["breadcrumb"] == [])
        stream_metadata["metadata"]["forced-replication-method"] = "FULL_TABLE"
    return catalog


@pytest.mark.parametrize("where", ["entry", "stream metadata"])
def test_full_table_in_the_catalog_reads_everything_again(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    first = run_sync(fake.config(page_size=5))
    newest = {pid: max(i["created_at"] for i in items) for pid, items in fake.feedback.items()}
    assert bookmarks(first.final_state) == newest
    fake.requests.clear()

    with caplog.at_level(logging.INFO):
        again = run_sync(
            fake.config(page_size=5), first.final_state, full_table_catalog(fake, where)
        )

    assert sorted(again.ids()) == sorted(fake.all_feedback_ids())
    assert all("query" not in r.body for r in fake.requests_to(FILTER))
    assert fake.filter_requests("updated_at") == []
    assert "Beginning sync of 'feedback' in full_table mode" in messages_at(caplog, logging.INFO)


def discovered(fake: FakeUsersnap) -> dict[str, t.Any]:
    return TapUsersnap(config=fake.config()).catalog_dict


def entry_of(catalog: dict[str, t.Any], stream: str) -> dict[str, t.Any]:
    return next(e for e in catalog["streams"] if e["tap_stream_id"] == stream)


@pytest.mark.parametrize(
    "change",
    ["no stream-level metadata", "empty metadata", "no metadata key"],
)
def test_an_entry_without_stream_metadata_is_read_whole(fake: FakeUsersnap, change: str) -> None:
    """As an entry without any metadata is (the SDK's rule): no record loses its key."""
    catalog = discovered(fake)
    for entry in catalog["streams"]:
        if change == "no stream-level metadata":
            entry["metadata"] = [m for m in entry["metadata"] if m["breadcrumb"] != []]
        elif change == "empty metadata":
            entry["metadata"] = []
        else:
            del entry["metadata"]
    plain = run_sync(fake.config())

    result = run_sync(fake.config(), catalog=catalog)

    def by_key(records: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
        """Projects read at once may interleave in another order in each run."""
        return sorted(records, key=lambda r: json.dumps(r, sort_keys=True))

    for stream in ("projects", "feedback", "project_assignees"):
        assert by_key(result.records(stream)) == by_key(plain.records(stream)), stream
    assert_every_record_validates(result)


def test_a_catalog_that_retypes_fields_gets_records_of_its_types_but_keeps_the_keys(
    fake: FakeUsersnap,
) -> None:
    catalog = discovered(fake)
    properties = entry_of(catalog, "feedback")["schema"]["properties"]
    own = dict(properties)
    properties["feedback_number"] = {"type": ["string", "null"]}
    properties["created_at"] = {"type": "integer"}
    del properties["feedback_id"]

    result = run_sync(fake.config(), catalog=catalog)

    assert_every_record_validates(result)
    schema = result.schema("feedback")["schema"]["properties"]
    assert schema["created_at"] == own["created_at"]
    assert schema["feedback_id"] == own["feedback_id"]
    records = result.records("feedback")
    assert len(records) == len(fake.all_feedback_ids())
    assert {type(r["feedback_number"]) for r in records} == {str}
    assert set(bookmarks(result.final_state)) == set(fake.projects)


def test_an_entry_naming_another_stream_alias_still_reads_its_stream(fake: FakeUsersnap) -> None:
    catalog = discovered(fake)
    entry_of(catalog, "feedback")["stream"] = "fb_alias"

    result = run_sync(fake.config(), catalog=catalog)

    assert sorted(result.ids()) == sorted(fake.all_feedback_ids())


@pytest.mark.parametrize(
    ("catalog", "problem"),
    [
        ({}, "the document has no streams"),
        ({"streams": 5}, "streams is an integer, not a list"),
        ({"streams": [5]}, "streams[0] is an integer, not an object"),
        ({"streams": [{"schema": {}}]}, "streams[0] has no tap_stream_id"),
        ({"streams": [{"tap_stream_id": "feedback"}]}, "streams[0] has no schema"),
        (
            {"streams": [{"tap_stream_id": "feedback", "schema": {}, "metadata": [1]}]},
            "streams[0].metadata[0] is an integer, not an object",
        ),
        (
            {"streams": [{"tap_stream_id": "feedback", "schema": [], "metadata": []}]},
            "streams[0].schema is a list, not an object",
        ),
    ],
)
def test_a_catalog_file_of_the_wrong_shape_fails_in_one_line(
    fake: FakeUsersnap, tmp_path: Path, catalog: dict[str, t.Any], problem: str
) -> None:
    error = catalog_error(fake, tmp_path, catalog)

    path = tmp_path / "catalog.json"
    assert error.endswith(f"The catalog file {path} is not a Singer catalog: {problem}")


def catalog_error(fake: FakeUsersnap, tmp_path: Path, catalog: t.Any) -> str:
    """The one ERROR line of a run given ``catalog`` in a file: no traceback, no request."""
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog))

    result = run_cli("--catalog", str(path), config=fake.config())

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert fake.requests == []
    return errors[0]


@pytest.mark.parametrize(
    ("column", "problem"),
    [
        ({"allOf": [{"type": None}]}, "properties.labels.allOf[0].type: None is not valid"),
        ({"type": 5}, "properties.labels.type: 5 is not valid"),
        ({"type": "object", "properties": []}, "properties.labels.properties: [] is not of type"),
        (False, "properties.labels: false is no object (the SDK reads only an object there)"),
        (
            {"type": "array", "items": True},
            "properties.labels.items: true is no object (the SDK reads only an object there)",
        ),
    ],
)
def test_a_catalog_schema_that_is_no_json_schema_fails_in_one_line_before_any_request(
    fake: FakeUsersnap, tmp_path: Path, column: t.Any, problem: str
) -> None:
    """A hand-edited column (a ``type`` of null, say) is named, not a traceback mid-run."""
    catalog = discovered(fake)
    entry_of(catalog, "feedback")["schema"]["properties"]["labels"] = column

    error = catalog_error(fake, tmp_path, catalog)

    number = [e["tap_stream_id"] for e in catalog["streams"]].index("feedback")
    assert f"holds no JSON schema for stream 'feedback': {problem}" in error
    assert error.endswith(f"(streams[{number}].schema)")


def test_a_catalog_that_retypes_the_fields_the_tap_builds_gets_the_tap_s_types(
    fake: FakeUsersnap,
) -> None:
    """project_id, project_name and the derived fields are the tap's values, made after
    conforming: the SCHEMA sent names the types they have, and none is nulled."""
    catalog = discovered(fake)
    properties = entry_of(catalog, "feedback")["schema"]["properties"]
    own = dict(properties)
    for field in ("project_id", "project_name", "conversation", "label_names", "input_values"):
        properties[field] = {"type": ["integer", "null"]}

    result = run_sync(fake.config(), catalog=catalog)

    assert_every_record_validates(result)
    sent = result.schema("feedback")["schema"]["properties"]
    assert sent["input_values"] == own["input_values"]
    assert sent["project_id"] == own["project_id"]
    records = result.records("feedback")
    assert {r["project_id"] for r in records} == set(fake.projects)
    assert all(type(r["conversation"]) is list for r in records)


def test_a_closed_catalog_schema_gets_records_without_fields_it_does_not_declare(
    fake: FakeUsersnap,
) -> None:
    """``additionalProperties: false`` (a strict hand-written catalog): a field the API added
    is left out, at the top and inside an object, or a target validating would fail."""
    catalog = discovered(fake)
    for entry in catalog["streams"]:
        entry["schema"]["additionalProperties"] = False
    client = entry_of(catalog, "feedback")["schema"]["properties"]["client"]
    client["additionalProperties"] = False

    def add_fields(envelope: dict[str, t.Any], request: t.Any) -> dict[str, t.Any]:
        for item in envelope["data"]["feedbacks"]:
            item["new_api_field"] = 1
            if isinstance(item.get("client"), dict):
                item["client"]["device_pixel_ratio"] = 2
        return envelope

    fake.inject("mangle", match="POST .*/feedbacks/filter$", transform=add_fields, times=10**6)
    result = run_sync(fake.config(), catalog=catalog)

    assert_every_record_validates(result)
    records = result.records("feedback")
    assert sorted(result.ids()) == sorted(fake.all_feedback_ids())
    assert not any("new_api_field" in r for r in records)
    assert not any("device_pixel_ratio" in (r.get("client") or {}) for r in records)
