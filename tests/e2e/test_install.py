"""The README's installs: a tool install, a local checkout and a wheel; then the CLI runs.

``uv tool install`` from this checkout stands in for the README's git URL (no network to
GitHub here); the package, its dependencies from PyPI and its entry point are the same. A
checkout path and a wheel path are what ``pip_url`` takes for a fork or an unreleased fix:
Meltano pip-installs them into a venv of the plugin's own, as these tests do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t

import pytest

import tap_usersnap
from harness.meltano_project import REPO
from harness.singer_run import parse_messages

if t.TYPE_CHECKING:
    from pathlib import Path

    from fake_usersnap import FakeUsersnap

pytestmark = pytest.mark.e2e

UV = REPO / ".uv" / "bin" / "uv"


def uv_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "UV_TOOL_DIR": str(tmp_path / "tools"),
        "UV_TOOL_BIN_DIR": str(tmp_path / "bin"),
        "UV_PYTHON_DOWNLOADS": "never",
    }


def assert_a_working_tap(tap: Path, tmp_path: Path, fake: FakeUsersnap) -> None:
    """This checkout's version, and a sync that delivers every feedback item."""
    about = subprocess.run(
        [str(tap), "--about", "--format=json"], capture_output=True, text=True, check=True
    )
    assert json.loads(about.stdout)["version"] == tap_usersnap.__version__

    config = tmp_path / "config.json"
    config.write_text(json.dumps(fake.config()))
    run = subprocess.run(
        [str(tap), "--config", str(config)], capture_output=True, text=True, check=True
    )
    records = [m for m in parse_messages(run.stdout) if m["type"] == "RECORD"]
    ids = {m["record"]["feedback_id"] for m in records if m["stream"] == "feedback"}
    assert ids == fake.all_feedback_ids()


def pip_install(source: Path, tmp_path: Path) -> Path:
    """``source`` installed into a new venv, as Meltano installs a ``pip_url``."""
    env, venv = uv_env(tmp_path), tmp_path / "plugin-venv"
    subprocess.run(
        [str(UV), "venv", "--quiet", "--python", sys.executable, str(venv)], env=env, check=True
    )
    python = venv / "bin" / "python"
    install = [str(UV), "pip", "install", "--quiet", "--python", str(python), str(source)]
    subprocess.run(install, env=env, check=True, timeout=600)
    return venv / "bin" / "tap-usersnap"


def test_a_tool_install_gives_a_working_tap_usersnap(tmp_path: Path, fake: FakeUsersnap) -> None:
    env = uv_env(tmp_path)
    subprocess.run([str(UV), "tool", "install", str(REPO)], env=env, check=True, timeout=600)
    assert_a_working_tap(tmp_path / "bin" / "tap-usersnap", tmp_path, fake)


def test_pip_url_as_a_local_checkout(tmp_path: Path, fake: FakeUsersnap) -> None:
    """``pip_url: /path/to/tap-usersnap``: a regular (not editable) install of the checkout."""
    tap = pip_install(REPO, tmp_path)
    where = subprocess.run(
        [str(tap.with_name("python")), "-c", "import tap_usersnap; print(tap_usersnap.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,  # not this checkout, which `-c` would import from
    )
    assert not where.stdout.startswith(str(REPO))  # a copy in the venv, not this checkout
    assert_a_working_tap(tap, tmp_path, fake)


def test_pip_url_as_a_wheel(tmp_path: Path, fake: FakeUsersnap) -> None:
    """``pip_url: /path/to/tap_usersnap-<version>-py3-none-any.whl``, built by ``uv build``."""
    dist = tmp_path / "dist"
    build = [str(UV), "build", "--wheel", "--quiet", "--out-dir", str(dist), str(REPO)]
    subprocess.run(build, env=uv_env(tmp_path), check=True, timeout=600)
    (wheel,) = dist.glob("tap_usersnap-*.whl")
    assert wheel.name == f"tap_usersnap-{tap_usersnap.__version__}-py3-none-any.whl"
    assert_a_working_tap(pip_install(wheel, tmp_path), tmp_path, fake)
