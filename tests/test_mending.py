"""Values the API sends in a form the schema does not allow: emitted mended, named, counted."""

from __future__ import annotations

import logging
import typing as t

from fake_usersnap.malformed import item_field, project_without_id
from fake_usersnap.singer_run import run_sync

if t.TYPE_CHECKING:
    import pytest

    from fake_usersnap import FakeUsersnap

FILTER = r"POST .*/filter$"


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def summary(skipped: int, altered: int) -> str:
    return (
        f"Run summary: {skipped} feedback item(s) skipped (no feedback_id or no usable "
        f"created_at), {altered} emitted with a value replaced, 0 endpoint(s) refused; each "
        "is named in a warning above"
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
