"""The analysis-ready feedback fields: the pure derivation, every sample item, and flattening."""

from __future__ import annotations

import json
import typing as t

import pytest

from fake_usersnap import FakeUsersnap, text_input
from harness.singer_run import run_sync
from tap_usersnap.records import derived_fields, typed_value

RAW_FIELDS = ("ordered_inputs", "labels", "custom_data", "client", "screenshot")


def value_input(order: int, label: str | None, value: str | None) -> dict[str, t.Any]:
    return {
        "order": order,
        "label": label,
        "boolean_value": None,
        "text_value": None,
        "value": value,
    }


def yes_no(order: int, label: str, answer: bool | None) -> dict[str, t.Any]:
    return {
        "order": order,
        "label": label,
        "boolean_value": answer,
        "text_value": None,
        "value": None,
    }


def test_a_full_form_becomes_conversation_labels_and_values() -> None:
    item = {
        "ordered_inputs": [
            yes_no(2, "Would you recommend us?", False),
            text_input(3, "What did you expect?", "Sorting by date"),
            value_input(1, "Rating", "4"),
            text_input(0, "Comment", "結果の並び替えができません"),
            value_input(4, "Plan", "Enterprise"),
        ],
        "labels": [{"name": "Bug", "identifier": "bug"}, {"name": "UX", "identifier": "ux"}],
    }
    assert derived_fields(item) == {
        "conversation": ["結果の並び替えができません", "Sorting by date"],
        "label_names": ["Bug", "UX"],
        "input_values": {"Rating": 4, "Would you recommend us?": False, "Plan": "Enterprise"},
    }


def test_missing_or_null_raw_fields_give_empty_derived_fields() -> None:
    empty: dict[str, t.Any] = {"conversation": [], "label_names": [], "input_values": {}}
    assert derived_fields({}) == empty
    assert derived_fields({"ordered_inputs": None, "labels": None}) == empty
    assert (
        derived_fields({"ordered_inputs": [None, "x"], "labels": [None, {"name": None}]}) == empty
    )


def test_unanswered_and_blank_inputs_are_left_out() -> None:
    item = {
        "ordered_inputs": [
            text_input(0, "Comment", "   \n"),
            text_input(1, "Other", ""),
            value_input(2, "Rating", None),
            value_input(3, "Choice", ""),
            yes_no(4, "Agree?", None),
        ]
    }
    assert derived_fields(item) == {"conversation": [], "label_names": [], "input_values": {}}


def test_text_is_kept_exactly_as_typed() -> None:
    typed = '  "quoted", a backslash \\ and a\nnew line 👏 '
    result = derived_fields({"ordered_inputs": [text_input(0, None, typed)]})
    assert result["conversation"] == [typed]


def test_repeated_and_missing_labels_never_overwrite_an_answer() -> None:
    inputs = [
        value_input(0, "Rating", "5"),
        value_input(1, "Rating", "2"),
        yes_no(2, "Rating", True),
        value_input(7, None, "x"),
        value_input(8, "", "y"),
    ]
    assert derived_fields({"ordered_inputs": inputs})["input_values"] == {
        "Rating": 5,
        "Rating (2)": 2,
        "Rating (3)": True,
        "input_7": "x",
        "input_8": "y",
    }


def test_inputs_without_an_order_keep_their_place_after_the_ordered_ones() -> None:
    inputs = [text_input(None, "b", "second"), text_input(1, "a", "first")]
    inputs.append(text_input(None, "c", "third"))
    assert derived_fields({"ordered_inputs": inputs})["conversation"] == [
        "first",
        "second",
        "third",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4", 4),
        ("0", 0),
        ("-2", -2),
        ("10", 10),
        ("4.5", 4.5),
        ("0.2", 0.2),
        ("12345678901234567890", 12345678901234567890),
        # Not numbers, or numbers that would not print back as the same text: kept as is.
        ("007", "007"),
        ("1.10", "1.10"),
        ("-0", "-0"),
        ("1e5", "1e5"),
        ("1_000", "1_000"),
        ("nan", "nan"),
        ("Infinity", "Infinity"),
        (" 4", " 4"),
        ("+4", "+4"),
        ("٣", "٣"),
        ("4 stars", "4 stars"),
        ("0.1234567890123456789", "0.1234567890123456789"),
        ("", ""),
    ],
)
def test_typed_value_converts_only_lossless_numbers(text: str, expected: object) -> None:
    value = typed_value(text)
    assert value == expected
    assert type(value) is type(expected)


# ------------------------------------------------------------- every sample item, end to end


def expected_derived(item: dict[str, t.Any]) -> dict[str, t.Any]:
    """What the raw fields say, written out independently of tap_usersnap.records.derived.

    The sample forms are: text inputs (text_value set), a 1-5 "Rating" (value set) and a
    yes/no (boolean_value set), with distinct labels.
    """
    inputs = sorted(item["ordered_inputs"], key=lambda i: i["order"])
    conversation = [i["text_value"] for i in inputs if i["text_value"]]
    values: dict[str, t.Any] = {}
    for i in inputs:
        if i["boolean_value"] is not None:
            values[i["label"]] = i["boolean_value"]
        elif i["text_value"] is None:
            values[i["label"]] = int(i["value"])
    return {
        "conversation": conversation,
        "label_names": [label["name"] for label in item["labels"]],
        "input_values": values,
    }


@pytest.fixture(scope="module")
def sample() -> t.Iterator[tuple[FakeUsersnap, list[dict[str, t.Any]]]]:
    with FakeUsersnap() as api:
        api.seed(projects=3, per_project=40)
        yield api, run_sync(api.config()).records("feedback")


def test_derived_fields_equal_the_raw_inputs_for_every_sample_item(
    sample: tuple[FakeUsersnap, list[dict[str, t.Any]]],
) -> None:
    fake, records = sample
    sources = {i["feedback_id"]: i for items in fake.feedback.values() for i in items}
    assert {r["feedback_id"] for r in records} == set(sources)
    for record in records:
        source = sources[record["feedback_id"]]
        expected = expected_derived(source)
        for field, value in expected.items():
            assert record[field] == value, (field, record["feedback_id"])
        for field in RAW_FIELDS:
            assert record[field] == source[field], (field, record["feedback_id"])


def test_the_sample_covers_every_kind_of_input(
    sample: tuple[FakeUsersnap, list[dict[str, t.Any]]],
) -> None:
    """Guards the test above against a sample that would make it vacuous."""
    _, records = sample
    values = [v for r in records for v in r["input_values"].values()]
    assert {True, False} <= {v for v in values if isinstance(v, bool)}
    assert {v for v in values if not isinstance(v, bool)} == {1, 2, 3, 4, 5}
    assert {len(r["conversation"]) for r in records} == {1, 2}
    assert {len(r["label_names"]) for r in records} == {0, 1, 2}
    assert any(r["input_values"] == {} for r in records)
    assert any(r["custom_data"] == {"System": "Staging", "Release Version": "0.2"} for r in records)


def test_the_schema_declares_the_derived_fields(
    sample: tuple[FakeUsersnap, list[dict[str, t.Any]]],
) -> None:
    fake, _ = sample
    properties = run_sync(fake.config()).schema("feedback")["schema"]["properties"]
    for field in ("conversation", "label_names"):  # target-postgres makes them text[]
        assert properties[field]["type"] == ["array", "null"]
        assert properties[field]["items"] == {"type": "string"}
    assert properties["input_values"]["type"] == ["object", "null"]
    assert "properties" not in properties["input_values"]  # labels are data, not columns


def test_flattening_gives_one_column_per_derived_field_and_keeps_custom_data_whole(
    fake: FakeUsersnap,
) -> None:
    fake.add_feedback(
        next(iter(fake.projects)),
        custom_data={"Release Version": "0.2", "plan": "enterprise", "nested": {"a": 1}},
        ordered_inputs=[text_input(0, "Comment", "hi"), value_input(1, "Rating", "5")],
        labels=[{"name": "Bug"}],
    )
    result = run_sync(fake.config(flattening_enabled=True, flattening_max_depth=1))

    properties = result.schema("feedback")["schema"]["properties"]
    for field in ("conversation", "label_names", "input_values", "custom_data", "ordered_inputs"):
        assert properties[field] == {"type": ["string", "null"]}, field
    assert properties["client__url"] == {"type": ["string", "null"]}
    assert not [p for p in properties if p.startswith(("custom_data__", "input_values__"))]

    record = next(r for r in result.records("feedback") if "nested" in json.loads(r["custom_data"]))
    assert json.loads(record["custom_data"]) == {
        "Release Version": "0.2",
        "plan": "enterprise",
        "nested": {"a": 1},
    }
    assert json.loads(record["conversation"]) == ["hi"]
    assert json.loads(record["label_names"]) == ["Bug"]
    assert json.loads(record["input_values"]) == {"Rating": 5}


def test_orders_of_any_type_never_fail_the_item_numbers_first() -> None:
    inputs = [
        text_input(None, "Later", "d"),
        {**text_input(0, "Text order", "b"), "order": "1"},
        {**text_input(0, "Float order", "a"), "order": 0.5},
        {**text_input(0, "List order", "e"), "order": [3]},
        text_input(2, "Two", "c"),
    ]
    derived = derived_fields({"ordered_inputs": inputs})
    assert derived["conversation"] == ["a", "b", "c", "d", "e"]


def test_an_item_whose_inputs_mix_order_types_is_delivered(empty_fake: FakeUsersnap) -> None:
    project = empty_fake.add_project("Mixed orders")["project_id"]
    odd = empty_fake.add_feedback(
        project,
        ordered_inputs=[
            {**text_input(0, "A", "x"), "order": "1"},
            {**text_input(2, "B", "y"), "order": 2.5},
        ],
    )
    empty_fake.add_feedback(project)
    result = run_sync(empty_fake.config(concurrency=1))
    assert odd["feedback_id"] in {r["feedback_id"] for r in result.records("feedback")}
    assert len(result.records("feedback")) == 2


def test_an_answer_of_more_digits_than_python_reads_stays_text() -> None:
    """``int()`` refuses more than 4300 digits: a visitor's answer must not end the run."""
    digits = "9" * 5000
    assert typed_value(digits) == digits
    assert derived_fields({"ordered_inputs": [{"label": "n", "value": digits}]}) == {
        "conversation": [],
        "label_names": [],
        "input_values": {"n": digits},
    }
