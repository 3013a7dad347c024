"""The streams' JSON schemas: valid, honest, and read the same way by every target.

Column types are decided here, in the tap's own schema, so the tables are the same whichever
way the tap is installed (this repository's meltano.yml, the Hub definition, or piped by
hand): nothing depends on a Meltano ``schema:`` override.
"""

from __future__ import annotations

import copy
import json
import typing as t
from importlib import resources

import jsonschema
import pytest

from harness.singer_run import run_sync
from tap_usersnap import schemas
from tap_usersnap.feedback import FeedbackStream
from tap_usersnap.streams import ProjectAssigneesStream, ProjectsStream
from tap_usersnap.tap import TapUsersnap

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap

STREAMS = {cls.name: cls for cls in (ProjectsStream, FeedbackStream, ProjectAssigneesStream)}
#: Arrays of objects: one JSON array value each (``jsonb`` in PostgreSQL, queried with
#: ``jsonb_array_elements`` and ``@>``), never a PostgreSQL array of ``jsonb``.
JSON_ARRAYS = ("labels", "ordered_inputs")
#: Arrays of strings: native arrays (``text[]`` in PostgreSQL, queried with ``ANY``).
STRING_ARRAYS = ("conversation", "label_names")


def schema_file(stream: str) -> dict[str, t.Any]:
    text = resources.files(schemas).joinpath(f"{stream}.json").read_text(encoding="utf-8")
    return t.cast("dict[str, t.Any]", json.loads(text))


def postgres_array_column(prop: dict[str, t.Any]) -> str:
    """The column meltanolabs-target-postgres 0.8.1 makes of an array property.

    Its ``_handle_array_type``: ``items`` naming a type gives an array of that type, items
    without a type or a list of them ``jsonb[]``, and no ``items`` at all one ``jsonb``.
    The end-to-end test checks this against the real target.
    """
    assert "array" in prop["type"]
    items = prop.get("items")
    if isinstance(items, dict) and isinstance(items.get("type"), str):
        element: str = items["type"]
        return {"string": "text", "object": "jsonb"}.get(element, element) + "[]"
    if isinstance(items, dict | list):
        return "jsonb[]"
    return "jsonb"


def item_schema(prop: dict[str, t.Any]) -> dict[str, t.Any]:
    """The schema every element of an array property must meet, wherever it is declared."""
    declared = [p["items"] for p in [prop, *prop.get("allOf", [])] if "items" in p]
    assert len(declared) == 1, prop
    return t.cast("dict[str, t.Any]", declared[0])


def feedback_schemas(fake: FakeUsersnap) -> dict[str, dict[str, t.Any]]:
    """The feedback schema as each install path hands it to a target."""
    discovered = TapUsersnap(config=fake.config()).catalog_dict
    # What Meltano and other orchestrators do: discover, then run with the catalog.
    with_catalog = run_sync(fake.config(), catalog=copy.deepcopy(discovered))
    return {
        "file": schema_file("feedback"),
        "discovered": next(s for s in discovered["streams"] if s["tap_stream_id"] == "feedback")[
            "schema"
        ],
        "SCHEMA message": run_sync(fake.config()).schema("feedback")["schema"],
        "SCHEMA message, catalog given": with_catalog.schema("feedback")["schema"],
    }


@pytest.mark.parametrize("stream", sorted(STREAMS))
def test_every_schema_is_valid_json_schema_2020_12(stream: str) -> None:
    schema = schema_file(stream)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_arrays_of_objects_are_one_json_value_and_string_arrays_native_in_every_path(
    fake: FakeUsersnap,
) -> None:
    for path, schema in feedback_schemas(fake).items():
        properties = schema["properties"]
        columns = {name: postgres_array_column(properties[name]) for name in JSON_ARRAYS}
        assert columns == dict.fromkeys(JSON_ARRAYS, "jsonb"), path
        columns = {name: postgres_array_column(properties[name]) for name in STRING_ARRAYS}
        assert columns == dict.fromkeys(STRING_ARRAYS, "text[]"), path
        for name in (*JSON_ARRAYS, *STRING_ARRAYS):
            assert properties[name]["type"] == ["array", "null"], (path, name)


def test_the_json_arrays_still_declare_and_enforce_their_elements(fake: FakeUsersnap) -> None:
    fake.add_feedback(
        next(iter(fake.projects)),
        labels=[{"name": "Bug", "extra": 1}],  # an undeclared key is allowed
        ordered_inputs=[],
    )
    result = run_sync(fake.config())
    schema = result.schema("feedback")["schema"]
    validator = jsonschema.Draft202012Validator(schema)
    records = result.records("feedback")
    assert {len(r["labels"]) for r in records} >= {0, 1, 2}
    for record in records:
        validator.validate(record)

    labels = item_schema(schema["properties"]["labels"])
    assert set(labels["properties"]) == {"company_label_id", "identifier", "name", "color"}
    inputs = item_schema(schema["properties"]["ordered_inputs"])
    assert set(inputs["properties"]) == {"order", "label", "boolean_value", "text_value", "value"}

    record = records[0]
    wrong: list[dict[str, t.Any]] = [
        {"labels": ["Bug"]},  # an element that is not an object
        {"labels": [{"name": 5}]},  # a declared field of the wrong type
        {"ordered_inputs": [{"order": "first"}]},
        {"ordered_inputs": {"order": 0}},  # not an array at all
    ]
    for change in wrong:
        assert not validator.is_valid({**record, **change}), change


def test_records_of_every_stream_meet_their_schema(fake: FakeUsersnap) -> None:
    result = run_sync(fake.config())
    for stream in STREAMS:
        validator = jsonschema.Draft202012Validator(
            result.schema(stream)["schema"], format_checker=jsonschema.FormatChecker()
        )
        records = result.records(stream)
        assert records, stream
        for record in records:
            validator.validate(record)


def descriptions() -> dict[tuple[str, str], str]:
    """``{(stream, property): description}`` of every top-level property that has one."""
    return {
        (stream, name): prop["description"]
        for stream in STREAMS
        for name, prop in schema_file(stream)["properties"].items()
        if "description" in prop
    }


def test_no_description_is_copied_from_another_property() -> None:
    by_text: dict[str, list[tuple[str, str]]] = {}
    for where, text in descriptions().items():
        by_text.setdefault(text, []).append(where)
    assert {text: where for text, where in by_text.items() if len(where) > 1} == {}


def test_descriptions_name_only_the_streams_own_keys() -> None:
    """A property described as a replication or primary key is one, in its own stream."""
    for (stream, name), text in descriptions().items():
        cls = STREAMS[stream]
        assert ("replication key" in text) == (name == cls.replication_key), (stream, name)
        assert ("primary key" in text) == (name in cls.primary_keys), (stream, name)


def test_project_descriptions_speak_of_projects(fake: FakeUsersnap) -> None:
    properties = run_sync(fake.config()).schema("projects")["schema"]["properties"]
    texts = [p["description"] for p in properties.values() if "description" in p]
    assert "created" in properties["created_at"]["description"]
    assert "project" in properties["created_at"]["description"]
    assert "project" in properties["updated_at"]["description"]
    assert not [text for text in texts if "feedback was" in text or "the item" in text]
