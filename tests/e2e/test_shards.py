"""Two extractors on disjoint ``project_ids``, run in parallel, each into its own schema.

How a team shards the tap when one process is not enough: Meltano's ``inherit_from`` gives
each shard its own name, so its own state ID; with deletes on, each loads into its own
schema, since ACTIVATE_VERSION acts on a whole table.
"""

from __future__ import annotations

import subprocess
import typing as t

import pytest
import yaml

from harness.meltano_project import MELTANO, state_id

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap
    from harness.meltano_project import MeltanoProject
    from harness.pg_cluster import PostgresCluster

pytestmark = pytest.mark.e2e

SHARDS = ("a", "b")


def add_shards(
    meltano: MeltanoProject, fake: FakeUsersnap, pg: PostgresCluster, shards: dict[str, list[str]]
) -> None:
    """An extractor and a loader per shard, inheriting the repository's two plugins."""
    path = meltano.root / "meltano.yml"
    project = yaml.safe_load(path.read_text())
    for shard, project_ids in shards.items():
        project["plugins"]["extractors"].append(
            {
                "name": f"tap-usersnap--{shard}",
                "inherit_from": "tap-usersnap",
                "config": fake.config(project_ids=project_ids, concurrency=2),
            }
        )
        project["plugins"]["loaders"].append(
            {
                "name": f"target-postgres--{shard}",
                "inherit_from": "target-postgres",
                "config": pg.target_config(schema=f"shard_{shard}"),
            }
        )
    path.write_text(yaml.safe_dump(project, sort_keys=False))


def run_shards_in_parallel(meltano: MeltanoProject) -> None:
    """``meltano run`` once per shard, at the same time, as an orchestrator would."""
    runs = [
        subprocess.Popen(
            [str(MELTANO), "run", f"tap-usersnap--{shard}", f"target-postgres--{shard}"],
            cwd=meltano.root,
            env=meltano.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for shard in SHARDS
    ]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-3000:]


def live(pg: PostgresCluster, shard: str) -> set[str]:
    rows = pg.query(f"SELECT feedback_id FROM shard_{shard}.feedback WHERE _sdc_deleted_at IS NULL")  # noqa: S608
    return {row[0] for row in rows}


def test_two_shards_run_in_parallel_each_with_its_state_and_schema(
    fake: FakeUsersnap, meltano: MeltanoProject, postgres: PostgresCluster
) -> None:
    for shard in SHARDS:
        postgres.query(f"DROP SCHEMA IF EXISTS shard_{shard} CASCADE")
    first, *rest = list(fake.projects)
    shards = {"a": [first], "b": rest}
    add_shards(meltano, fake, postgres, shards)
    meltano.run("state", "list")  # one process creates the system database, before two run

    def ids_of(project_ids: list[str]) -> set[str]:
        return {i["feedback_id"] for pid in project_ids for i in fake.feedback[pid]}

    run_shards_in_parallel(meltano)
    assert live(postgres, "a") == ids_of(shards["a"])
    assert live(postgres, "b") == ids_of(shards["b"])
    for shard, project_ids in shards.items():
        state = meltano.state(state_id(f"tap-usersnap--{shard}", f"target-postgres--{shard}"))
        partitions = state["bookmarks"]["feedback"]["partitions"]
        assert {p["context"]["project_id"] for p in partitions} == set(project_ids)

    # A deletion in shard b's projects is applied there; shard a keeps every row.
    fake.delete_feedback(fake.feedback[rest[0]][0]["feedback_id"])
    new = fake.add_feedback(first)["feedback_id"]
    run_shards_in_parallel(meltano)
    assert live(postgres, "a") == ids_of(shards["a"])
    assert new in live(postgres, "a")
    assert live(postgres, "b") == ids_of(shards["b"])
