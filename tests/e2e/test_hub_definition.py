"""A new Meltano project, the tap added from hub/tap-usersnap.yml, into PostgreSQL.

What a new user does: ``meltano init``, ``meltano add`` with the Hub definition as it is in
the repository, ``meltano install``, ``meltano run tap-usersnap target-postgres``. The one
step a user would not take is the one a user testing a fork takes: the git URL of the Hub
definition cannot be reached from here, so the plugin's ``pip_url`` in the new project's
meltano.yml is pointed at this checkout (Meltano has no command that sets ``pip_url``; its
docs edit meltano.yml). target-postgres is added from plugins/target-postgres.yml, the
repository's pinned definition, as the README's Quick start does.
"""

from __future__ import annotations

import json
import shlex
import typing as t

import pytest
import yaml

import tap_usersnap
from harness.meltano_project import REPO, MeltanoProject, meltano_env, state_id
from harness.postgres_pipeline import (
    JSONB_COLUMNS,
    fake_items,
    loaded_rows,
    naive_utc,
    run_pipeline,
)
from harness.singer_run import bookmarks

if t.TYPE_CHECKING:
    from pathlib import Path

    from fake_usersnap import FakeUsersnap
    from harness.pg_cluster import PostgresCluster

HUB_FILE = REPO / "hub" / "tap-usersnap.yml"
HUB = yaml.safe_load(HUB_FILE.read_text())


def add_target_postgres_as_in_the_repo(project: MeltanoProject) -> None:
    """``meltano add`` target-postgres from plugins/target-postgres.yml, as the Quick start."""
    definition = REPO / "plugins" / "target-postgres.yml"
    project.run("add", "--plugin-type", "loader", "target-postgres", "--from-ref", str(definition))
    # The connection comes from TARGET_POSTGRES_* when it runs; the schema is the project's.
    repo_yml = yaml.safe_load((REPO / "meltano.yml").read_text())
    (loader,) = [p for p in repo_yml["plugins"]["loaders"] if p["name"] == "target-postgres"]
    schema = loader["config"]["default_target_schema"]
    project.run("config", "set", "target-postgres", "default_target_schema", schema)


@pytest.fixture
def hub_project(tmp_path: Path) -> MeltanoProject:
    """``meltano init``, then the tap from the Hub file and target-postgres, installed."""
    env = meltano_env()  # the project keeps its own .meltano/ and system database
    MeltanoProject(tmp_path, env).run("init", "project", "--no-usage-stats")
    project = MeltanoProject(tmp_path / "project", env)

    # The Hub definition as it is: nothing to fill in (`--no-install`: its git URL is not
    # reachable from here). The plugin type is an option in Meltano 4: a leading `extractor`
    # would be read as a second plugin's name.
    project.run(
        "add",
        "--plugin-type",
        "extractor",
        "tap-usersnap",
        "--from-ref",
        str(HUB_FILE),
        "--no-install",
    )
    added = yaml.safe_load((project.root / "meltano.yml").read_text())["plugins"]
    assert set(added) == {"extractors"}
    (extractor,) = added["extractors"]
    assert extractor["variant"] == "tap-usersnap"
    assert extractor["pip_url"] == HUB["pip_url"]
    assert extractor["capabilities"] == HUB["capabilities"]
    assert [s["name"] for s in extractor["settings"]] == [s["name"] for s in HUB["settings"]]

    # As a user testing a fork: the same plugin, installed from a local checkout.
    meltano_yml = project.root / "meltano.yml"
    text = meltano_yml.read_text()
    line = f"    pip_url: {HUB['pip_url']}\n"
    assert text.count(line) == 1
    meltano_yml.write_text(text.replace(line, f"    pip_url: -e {shlex.quote(str(REPO))}\n"))

    add_target_postgres_as_in_the_repo(project)
    project.run("install")
    return project


@pytest.mark.e2e
def test_hub_definition_runs_into_postgres(
    fake: FakeUsersnap, hub_project: MeltanoProject, warehouse: PostgresCluster
) -> None:
    about = json.loads(hub_project.run("invoke", "tap-usersnap", "--about", "--format=json").stdout)
    assert about["version"] == tap_usersnap.__version__  # this checkout is what runs
    assert sorted(about["capabilities"]) == sorted(HUB["capabilities"])

    run_pipeline(hub_project, fake, warehouse)

    assert dict(warehouse.query("SELECT project_id, name FROM usersnap.projects")) == {
        pid: project["name"] for pid, project in fake.projects.items()
    }
    rows = loaded_rows(warehouse)
    items = fake_items(fake)
    assert set(rows) == set(items)
    assert len(items) == 3 * 12
    for feedback_id, item in items.items():
        row = rows[feedback_id]
        assert row["project_id"] == item["project_id"]
        assert row["project_name"] == fake.projects[item["project_id"]]["name"]
        assert row["created_at"] == naive_utc(item["created_at"])
        assert row["updated_at"] == naive_utc(item["updated_at"])
        for field in ("status_type", "priority", "email", *sorted(JSONB_COLUMNS)):
            assert row[field] == item[field], field
    assert set(
        warehouse.query("SELECT project_id, user_id, first_name FROM usersnap.project_assignees")
    ) == {
        (pid, user["user_id"], user["first_name"])
        for pid, project in fake.projects.items()
        for user in fake.assignees[project["api_key"]]
    }

    state = hub_project.state(state_id("tap-usersnap", "target-postgres"))
    assert bookmarks(state) == {
        pid: max(item["created_at"] for item in feedback) for pid, feedback in fake.feedback.items()
    }
