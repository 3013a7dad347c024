"""Analysis-ready fields derived from a feedback item's raw form inputs and labels.

Usersnap returns a submitted form as ``ordered_inputs`` (one entry per input, with
``text_value``, ``boolean_value`` and ``value``) and tags as ``labels`` objects. Analysts want
plain columns, so the tap adds, beside the untouched raw fields:

- ``conversation``: what the user typed, in form order: one string per text input that
  holds more than whitespace, unchanged (plain strings, which target-postgres stores as ``text[]``;
  which question each text answers stays in the raw ``ordered_inputs``);
- ``label_names``: the labels' names, in the API's order;
- ``input_values``: every other answered input (yes/no, rating, number, single choice)
  keyed by its label: booleans stay booleans, a value becomes a number only when the number
  prints back as exactly the same text (``"4"``, ``"-2"``, ``"4.5"``; never ``"007"``,
  ``"1.10"`` or ``"1e5"``), anything else stays the string.

Everything here is a pure function of the raw item, so it is tested on its own.
"""

from __future__ import annotations

import re
import typing as t

#: What one non-text input contributes to ``input_values``.
InputValue = bool | int | float | str

#: A plain decimal literal in ASCII digits; ``float()`` alone would also take "nan",
#: "1_000", "1e5" and non-ASCII digits.
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def derived_fields(item: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The analysis-ready fields of one raw feedback item (never ``None``; empty if no data)."""
    texts, values = _answers(form_order(item.get("ordered_inputs")))
    return {
        "conversation": texts,
        "label_names": label_names(item.get("labels")),
        "input_values": values,
    }


def form_order(inputs: t.Any) -> list[dict[str, t.Any]]:
    """The inputs sorted by their ``order`` (stable; inputs without one keep their place last)."""
    if not isinstance(inputs, list):
        return []
    entries = [entry for entry in inputs if isinstance(entry, dict)]
    if _in_form_order(entries):  # as Usersnap sends them: no sort needed
        return entries
    return sorted(entries, key=lambda entry: _order_key(entry.get("order")))


def _in_form_order(entries: list[dict[str, t.Any]]) -> bool:
    previous = -1
    for entry in entries:
        order = entry.get("order")
        if not isinstance(order, int) or order < previous:
            return False
        previous = order
    return True


def conversation(inputs: list[dict[str, t.Any]]) -> list[str]:
    """The text of every text input that holds more than whitespace, in the order given."""
    return _answers(inputs)[0]


def label_names(labels: t.Any) -> list[str]:
    """The names of the labels (tags), skipping any label without one."""
    if not isinstance(labels, list):
        return []
    return [
        label["name"]
        for label in labels
        if isinstance(label, dict) and isinstance(label.get("name"), str) and label["name"]
    ]


def input_values(inputs: list[dict[str, t.Any]]) -> dict[str, InputValue]:
    """Answered non-text inputs keyed by label, in the order given.

    A repeated label gets `` (2)``, `` (3)`` ... so no answer overwrites another; an input
    without a label is keyed ``input_<order>``.
    """
    return _answers(inputs)[1]


def _answers(inputs: list[dict[str, t.Any]]) -> tuple[list[str], dict[str, InputValue]]:
    """The typed texts and the other answers, in one pass (it runs once per record)."""
    texts: list[str] = []
    values: dict[str, InputValue] = {}
    for position, entry in enumerate(inputs):
        kind = _kind(entry)
        if kind == "text":
            if entry["text_value"].strip():
                texts.append(entry["text_value"])
            continue
        if kind == "boolean":
            value: InputValue = bool(entry["boolean_value"])
        elif kind == "value":
            value = typed_value(entry["value"])
        else:
            continue
        values[_unique_key(_input_label(entry, position), values)] = value
    return texts, values


def typed_value(text: str) -> int | float | str:
    """A number when the text is exactly that number's JSON form, else the text unchanged.

    The round trip keeps the conversion lossless: ``"1.10"`` (a version?) and ``"007"`` (an
    id?) stay strings, so the raw answer can always be read back from the derived one.
    """
    if not _DECIMAL.fullmatch(text):
        return text
    number: int | float = float(text) if "." in text else int(text)
    return number if repr(number) == text else text


def _kind(entry: dict[str, t.Any]) -> t.Literal["boolean", "text", "value", "empty"]:
    """Which kind of input: a yes/no, a text box, another answered input, or unanswered."""
    if isinstance(entry.get("boolean_value"), bool):
        return "boolean"
    if isinstance(entry.get("text_value"), str):
        return "text"
    value = entry.get("value")
    if isinstance(value, str) and value != "":
        return "value"
    return "empty"


def _input_label(entry: dict[str, t.Any], position: int) -> str:
    label = entry.get("label")
    if isinstance(label, str) and label:
        return label
    order = entry.get("order")
    return f"input_{order if isinstance(order, int) else position}"


def _unique_key(label: str, taken: t.Mapping[str, t.Any]) -> str:
    key, number = label, 1
    while key in taken:
        number += 1
        key = f"{label} ({number})"
    return key


def _order_key(order: t.Any) -> tuple[bool, int]:
    return (not isinstance(order, int), order if isinstance(order, int) else 0)
