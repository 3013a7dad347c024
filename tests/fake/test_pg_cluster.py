"""Where the PostgreSQL helper finds the server binaries, on a fake directory tree."""

from __future__ import annotations

import os
import typing as t

import pytest

from harness.pg_cluster import PostgresClusterError, find_pg_bindir

if t.TYPE_CHECKING:
    from pathlib import Path


def make_bindir(path: Path, *programs: str) -> Path:
    """A directory of executables that do nothing."""
    path.mkdir(parents=True, exist_ok=True)
    for program in programs:
        (path / program).write_text("#!/bin/sh\nexit 0\n")
        (path / program).chmod(0o755)
    return path


@pytest.fixture
def path_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty directory that is the whole PATH: no pg_config, no initdb but what tests add."""
    empty = tmp_path / "path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return empty


def add_pg_config(path_dir: Path, bindir: Path) -> None:
    script = path_dir / "pg_config"
    script.write_text(f"#!/bin/sh\n[ \"$1\" = --bindir ] && echo '{bindir}'\n")
    script.chmod(0o755)


@pytest.mark.usefixtures("path_dir")
def test_newest_installed_version_wins_numerically(tmp_path: Path) -> None:
    root = tmp_path / "usr/lib/postgresql"
    for version in ("9.6", "10", "15", "16"):
        make_bindir(root / version / "bin", "initdb", "pg_ctl", "postgres")
    make_bindir(root / "17" / "bin", "psql")  # postgresql-client-17 alone: no server
    make_bindir(root / "common" / "bin", "initdb")  # not a version

    assert find_pg_bindir(root) == root / "16" / "bin"


def test_pg_config_comes_first(tmp_path: Path, path_dir: Path) -> None:
    root = tmp_path / "usr/lib/postgresql"
    make_bindir(root / "16" / "bin", "initdb", "pg_ctl")
    chosen = make_bindir(tmp_path / "opt/pg/bin", "initdb", "pg_ctl")
    add_pg_config(path_dir, chosen)

    assert find_pg_bindir(root) == chosen


def test_pg_config_without_a_server_falls_through(tmp_path: Path, path_dir: Path) -> None:
    """libpq-dev's pg_config names /usr/bin, where no initdb is."""
    root = tmp_path / "usr/lib/postgresql"
    make_bindir(root / "14" / "bin", "initdb", "pg_ctl")
    add_pg_config(path_dir, make_bindir(tmp_path / "usr/bin", "psql"))

    assert find_pg_bindir(root) == root / "14" / "bin"


def test_initdb_on_path_is_resolved_to_its_directory(tmp_path: Path, path_dir: Path) -> None:
    real = make_bindir(tmp_path / "pgsql/bin", "initdb", "pg_ctl")
    os.symlink(real / "initdb", path_dir / "initdb")  # as /usr/local/bin/initdb -> ...

    assert find_pg_bindir(tmp_path / "no-such-dir") == real


@pytest.mark.usefixtures("path_dir")
def test_nothing_found_says_where_it_looked(tmp_path: Path) -> None:
    root = tmp_path / "usr/lib/postgresql"
    make_bindir(root / "17" / "bin", "psql")

    with pytest.raises(PostgresClusterError, match="not found") as raised:
        find_pg_bindir(root)

    assert str(root / "17" / "bin") in str(raised.value)
