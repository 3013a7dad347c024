"""End-to-end fixtures: a real PostgreSQL, and Meltano with its plugins installed once.

Both are session-scoped because they are slow to make (a cluster, three plugin venvs); each
test still starts from nothing: an empty ``usersnap`` schema, its own copy of meltano.yml and
its own Meltano system database (so its own state), sharing only the installed plugins.
"""

from __future__ import annotations

import typing as t

import pytest

from harness.meltano_project import MeltanoProject, meltano_env
from harness.pg_cluster import PostgresCluster

if t.TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="session")
def postgres() -> t.Iterator[PostgresCluster]:
    """A throwaway PostgreSQL 15 with an empty ``warehouse`` database (meltano.yml's)."""
    cluster = PostgresCluster(dbname="warehouse")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()  # also when a test failed or the session was interrupted


@pytest.fixture
def warehouse(postgres: PostgresCluster) -> PostgresCluster:
    """The cluster with no ``usersnap`` schema: every test loads into an empty warehouse."""
    postgres.query("DROP SCHEMA IF EXISTS usersnap CASCADE")
    return postgres


@pytest.fixture(scope="session")
def meltano_sys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``.meltano`` directory with every plugin of meltano.yml installed, once per session."""
    sys_dir = tmp_path_factory.mktemp("meltano-sys")
    env = meltano_env(
        MELTANO_SYS_DIR_ROOT=str(sys_dir),
        MELTANO_DATABASE_URI=f"sqlite:///{sys_dir / 'install.db'}",
    )
    project = MeltanoProject.copy_of_repo(tmp_path_factory.mktemp("meltano-install"), env)
    project.run("install")
    return sys_dir


@pytest.fixture
def meltano(tmp_path: Path, meltano_sys_dir: Path) -> MeltanoProject:
    """A fresh copy of the project: its own meltano.yml and state, the shared plugins."""
    env = meltano_env(
        MELTANO_SYS_DIR_ROOT=str(meltano_sys_dir),
        MELTANO_DATABASE_URI=f"sqlite:///{tmp_path / 'meltano.db'}",
    )
    return MeltanoProject.copy_of_repo(tmp_path / "project", env)
