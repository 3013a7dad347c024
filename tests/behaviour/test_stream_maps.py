"""The stream maps docs/targets.md shows work with the SDK's stream maps, null fields included.

Each ``yaml`` block of the doc's stream-maps section is run as the tap's config against the
fake, whose feedback has items with and without an email: a map that is not guarded against
``None`` fails the whole run (``md5(None)``), so the examples must be.
"""

from __future__ import annotations

import hashlib
import re
import typing as t

import pytest
import yaml

from harness.expect import error_lines
from harness.meltano_project import REPO
from harness.singer_run import run_cli, run_sync

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap

DOC = (REPO / "docs" / "targets.md").read_text()
SECTION = DOC.split("\n## Stream maps", 1)[1].split("\n## ", 1)[0]
EXAMPLES = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", SECTION, re.S)]


def original_emails(fake: FakeUsersnap) -> dict[str, str | None]:
    return {i["feedback_id"]: i["email"] for items in fake.feedback.values() for i in items}


def test_the_doc_has_the_examples() -> None:
    assert len(EXAMPLES) == 2
    assert all("stream_maps" in example for example in EXAMPLES)


def test_hashing_a_nullable_email_keeps_nulls_and_drops_the_visitors_client(
    fake: FakeUsersnap,
) -> None:
    result = run_sync(fake.config(**EXAMPLES[0]))

    emails = original_emails(fake)
    assert None in emails.values()
    assert any(emails.values())
    records = {r["feedback_id"]: r for r in result.records("feedback")}
    assert set(records) == set(emails)
    for feedback_id, record in records.items():
        email = emails[feedback_id]
        assert record["email"] == (hashlib.md5(email.encode()).hexdigest() if email else None)  # noqa: S324
        assert "client" not in record
    countries = {r["country"] for r in records.values()}
    assert countries == {"Austria", "Germany", "Brazil"}
    (schema,) = [m for m in result.messages if m["type"] == "SCHEMA" and m["stream"] == "feedback"]
    assert "client" not in schema["schema"]["properties"]
    assert schema["schema"]["properties"]["email"]["type"] == ["string", "null"]


def test_a_salted_hash_from_stream_map_config(fake: FakeUsersnap) -> None:
    example = EXAMPLES[1]
    salt = example["stream_map_config"]["email_salt"]
    result = run_sync(fake.config(**example))

    emails = original_emails(fake)
    for record in result.records("feedback"):
        email = emails[record["feedback_id"]]
        expected = hashlib.sha256((salt + email).encode()).hexdigest() if email else None
        assert record["email"] == expected


def test_an_unguarded_map_fails_the_run_on_the_first_null(fake: FakeUsersnap) -> None:
    with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'encode'"):
        run_sync(fake.config(stream_maps={"feedback": {"email": "md5(email)"}}))


@pytest.mark.parametrize("example", range(len(EXAMPLES)))
def test_the_examples_change_no_other_stream(fake: FakeUsersnap, example: int) -> None:
    plain = run_sync(fake.config())
    mapped = run_sync(fake.config(**EXAMPLES[example]))
    for stream in ("projects", "project_assignees"):
        assert mapped.records(stream) == plain.records(stream)


@pytest.mark.parametrize(
    ("stream_maps", "named"),
    [
        ({"feedbacks": {"email": "md5(email) if email else None"}}, "'feedbacks'"),
        ({"fb": {"__source__": "feedbak", "email": None}}, "'feedbak'"),
    ],
)
def test_a_map_naming_no_stream_fails_before_any_request(
    fake: FakeUsersnap, stream_maps: dict[str, t.Any], named: str
) -> None:
    """The SDK ignores it: a typo in a map meant to hash personal data loaded it in clear."""
    result = run_cli(config=fake.config(stream_maps=stream_maps))

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert any(f"stream_maps names stream {named}" in line for line in error_lines(result.stderr))
    assert fake.requests == []


def test_a_map_removing_a_property_the_stream_lacks_is_warned_about(fake: FakeUsersnap) -> None:
    result = run_cli(config=fake.config(stream_maps={"feedback": {"emial": None}}))

    assert result.returncode == 0
    assert "stream_maps removes 'emial' from feedback, which has no such property" in (
        result.stderr
    )
