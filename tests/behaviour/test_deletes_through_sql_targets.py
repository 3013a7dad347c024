"""Deletes through a real target on the SDK's own SQL sink (target-snowflake's base), SQLite.

Full run, incremental run with new items, run after deletions: the deleted rows are gone
with ``hard_delete`` and marked ``_sdc_deleted_at`` without it; every existing row is live.
"""

from __future__ import annotations

import typing as t

import pytest

from harness.singer_run import run_sync
from harness.sql_target import live_ids, load, stored_ids

if t.TYPE_CHECKING:
    from pathlib import Path

    from fake_usersnap import FakeUsersnap


@pytest.mark.parametrize("hard_delete", [True, False], ids=["hard delete", "soft delete"])
def test_full_incremental_and_deletions_through_an_sdk_sql_target(
    fake: FakeUsersnap, tmp_path: Path, hard_delete: bool
) -> None:
    database = tmp_path / "warehouse.db"
    config = fake.config(concurrency=1, page_size=5)

    def run(state: dict | None) -> dict:
        result = run_sync(config, state)
        load(result.messages, database, hard_delete=hard_delete)
        return result.final_state

    state = run(None)
    assert live_ids(database, "feedback", "feedback_id") == fake.all_feedback_ids()

    new = [fake.add_feedback(pid)["feedback_id"] for pid in fake.projects for _ in range(4)]
    state = run(state)
    assert set(new) <= live_ids(database, "feedback", "feedback_id")
    assert live_ids(database, "feedback", "feedback_id") == fake.all_feedback_ids()

    deleted = [items[0]["feedback_id"] for items in fake.feedback.values()] + new[:3]
    for feedback_id in deleted:
        fake.delete_feedback(feedback_id)
    doomed_project = list(fake.projects)[2]
    fake.remove_project(doomed_project)
    run(state)
    assert live_ids(database, "feedback", "feedback_id") == fake.all_feedback_ids()
    assert live_ids(database, "projects", "project_id") == set(fake.projects)
    assert not set(deleted) & live_ids(database, "feedback", "feedback_id")
    stored = stored_ids(database, "feedback", "feedback_id")
    if hard_delete:  # nothing of the deleted items is kept
        assert stored == fake.all_feedback_ids()
    else:  # kept, marked _sdc_deleted_at (personal data stays: see docs on erasure)
        assert set(deleted) <= stored
