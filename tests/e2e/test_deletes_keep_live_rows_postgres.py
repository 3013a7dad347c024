"""Through real target-postgres: a short re-read or a raised start_date retires no live row.

The tap runs in-process (so the fake can misbehave for one run); its output is piped into
the target-postgres that ``meltano install`` put in its plugin venv (meltano.yml's pin).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import typing as t

import pytest

from harness.singer_run import run_sync

if t.TYPE_CHECKING:
    from pathlib import Path

    from fake_usersnap import FakeUsersnap
    from harness.pg_cluster import PostgresCluster

pytestmark = pytest.mark.e2e


class Pipeline:
    """tap (in-process) | target-postgres, run after run, the state carried along."""

    def __init__(
        self, tmp_path: Path, fake: FakeUsersnap, sys_dir: Path, pg: PostgresCluster
    ) -> None:
        (self.target,) = sys_dir.glob("**/loaders/target-postgres/venv/bin/target-postgres")
        self.fake, self.pg = fake, pg
        self.target_config = tmp_path / "target.json"
        self.target_config.write_text(json.dumps(pg.target_config()))
        self.state: dict[str, t.Any] | None = None

    def run(self, *, check: bool = True, **config: t.Any) -> list[str]:
        """One run; the streams that got ACTIVATE_VERSION."""
        result = run_sync(
            self.fake.config(concurrency=1, page_size=50, **config), self.state, check=check
        )
        self.state = result.final_state
        text = "".join(json.dumps(m) + "\n" for m in result.messages)
        loaded = subprocess.run(
            [str(self.target), "--config", str(self.target_config)],
            input=text.encode(),
            capture_output=True,
            check=False,
            timeout=300,
        )
        assert loaded.returncode == 0, loaded.stderr.decode()[-3000:]
        return [m["stream"] for m in result.messages if m["type"] == "ACTIVATE_VERSION"]

    def live_feedback(self) -> set[str]:
        rows = self.pg.query(
            "SELECT feedback_id FROM usersnap.feedback WHERE _sdc_deleted_at IS NULL"
        )
        return {row[0] for row in rows}


def oldest_first(fake: FakeUsersnap, project_id: str) -> list[dict[str, t.Any]]:
    return sorted(fake.feedback[project_id], key=lambda i: i["created_at"])


def test_an_empty_re_read_page_retires_nothing_in_postgres(
    tmp_path: Path, empty_fake: FakeUsersnap, meltano_sys_dir: Path, warehouse: PostgresCluster
) -> None:
    fake = empty_fake
    fake.seed(projects=3, per_project=200)
    pipeline = Pipeline(tmp_path, fake, meltano_sys_dir, warehouse)
    pipeline.run()
    assert pipeline.live_feedback() == fake.all_feedback_ids()
    project_a, project_b, _ = list(fake.projects)
    fake.delete_feedback(oldest_first(fake, project_a)[10]["feedback_id"])

    def empty_page(envelope: dict, request: t.Any) -> dict:
        if request.params.get("limit") != "1":  # the edit scan's one item is left alone
            envelope["data"]["feedbacks"], envelope["data"]["has_more"] = [], False
        return envelope

    fake.inject("mangle", transform=empty_page, match=rf"/{project_b}/feedbacks/filter$", times=9)
    assert "feedback" not in pipeline.run()
    assert pipeline.live_feedback() >= fake.all_feedback_ids()  # 600 of 600 kept
    fake.clear_faults()
    assert "feedback" in pipeline.run()
    assert pipeline.live_feedback() == fake.all_feedback_ids()  # 599: the deleted one went
    pipeline.run()
    assert pipeline.live_feedback() == fake.all_feedback_ids()


def test_raising_start_date_then_putting_it_back_retires_nothing_in_postgres(
    tmp_path: Path, empty_fake: FakeUsersnap, meltano_sys_dir: Path, warehouse: PostgresCluster
) -> None:
    fake = empty_fake
    fake.seed(projects=3, per_project=200)
    pipeline = Pipeline(tmp_path, fake, meltano_sys_dir, warehouse)
    pipeline.run()
    project_a = next(iter(fake.projects))
    raised = oldest_first(fake, project_a)[90]["created_at"]
    fake.delete_feedback(oldest_first(fake, project_a)[150]["feedback_id"])
    pipeline.run(start_date=raised)
    assert pipeline.live_feedback() == fake.all_feedback_ids()  # only the deleted one left
    pipeline.run()
    pipeline.run()
    assert pipeline.live_feedback() == fake.all_feedback_ids()


def test_items_with_wrong_types_nul_and_lone_surrogates_all_land_in_postgres(
    tmp_path: Path, fake: FakeUsersnap, meltano_sys_dir: Path, warehouse: PostgresCluster
) -> None:
    """One item of each kind that used to block target-postgres on every run."""
    project_id = next(iter(fake.projects))
    poisons: list[tuple[str, t.Any]] = [
        ("labels", "bug, billing"),
        ("feedback_number", "12"),
        ("ordered_inputs", {"order": 0}),
        ("status_type", 3),
        ("custom_data", ["a", "b"]),
        ("client", "Firefox"),
        ("is_demo", "false"),
        ("email", "visitor\x00@example.com"),
        ("custom_data", {"note\x00": "half an emoji \ud83d", "deep": [{"x": "a\x00b"}]}),
    ]

    def poison(envelope: dict, request: t.Any) -> dict:
        if request.params.get("limit") == "1":  # the edit scan's one item
            return envelope
        for item, (field, value) in zip(envelope["data"]["feedbacks"], poisons, strict=False):
            item[field] = value
        return envelope

    fake.inject("mangle", transform=poison, match=rf"/{project_id}/feedbacks/filter$", times=9)
    pipeline = Pipeline(tmp_path, fake, meltano_sys_dir, warehouse)
    pipeline.run()
    assert pipeline.live_feedback() == fake.all_feedback_ids()  # every item is a row
    (email,) = warehouse.query("SELECT email FROM usersnap.feedback WHERE email LIKE 'visitor%%'")
    assert email == ("visitor@example.com",)


def test_newest_deletions_late_items_and_a_resumed_sweep_reach_postgres(
    tmp_path: Path,
    empty_fake: FakeUsersnap,
    meltano_sys_dir: Path,
    warehouse: PostgresCluster,
    sleeps: list[float],
) -> None:
    """After every run the live rows are Usersnap's, whatever changed since the last one."""
    fake = empty_fake
    fake.seed(projects=3, per_project=120)
    project_a, project_b, project_c = list(fake.projects)
    pipeline = Pipeline(tmp_path, fake, meltano_sys_dir, warehouse)

    def newest(project_id: str) -> dict[str, t.Any]:
        return oldest_first(fake, project_id)[-1]

    def late(project_id: str) -> None:
        created = dt.datetime.fromisoformat(newest(project_id)["created_at"].replace("Z", ""))
        earlier = created - dt.timedelta(seconds=3)
        fake.add_feedback(project_id, created_at=earlier.isoformat(timespec="seconds") + ".5Z")

    spam: list[str] = []

    def delete_spam_and_an_old_item_then_cut_short() -> None:  # C's reads fail after 3 pages
        fake.delete_feedback(spam[0])
        fake.delete_feedback(oldest_first(fake, project_a)[5]["feedback_id"])
        fake.inject(
            "status", status=503, match=rf"/{project_c}/feedbacks/filter$", skip=3, times=10**6
        )

    changes = [
        lambda: None,
        lambda: fake.delete_feedback(newest(project_a)["feedback_id"]),  # the newest
        lambda: late(project_b),  # visible after the run that passed its created_at
        lambda: spam.append(fake.add_feedback(project_c)["feedback_id"]),
        delete_spam_and_an_old_item_then_cut_short,
        lambda: [fake.add_feedback(pid) for pid in fake.projects],  # the sweep goes on
    ]
    for step, change in enumerate(changes):
        change()
        pipeline.run(check=False)
        fake.clear_faults()
        if step < 4:
            assert pipeline.live_feedback() == fake.all_feedback_ids(), step
        else:  # a sweep cut short keeps every live row and loads the new ones
            assert pipeline.live_feedback() >= fake.all_feedback_ids(), step
    pipeline.run()
    assert pipeline.live_feedback() == fake.all_feedback_ids()
