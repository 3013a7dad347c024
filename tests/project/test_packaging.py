"""The distribution's metadata: one version, the one ``tap-usersnap --about`` shows."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.version import Version

import tap_usersnap

TAP = Path(sys.executable).parent / "tap-usersnap"


def test_about_reports_the_package_version() -> None:
    completed = subprocess.run(
        [str(TAP), "--about", "--format=json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    about = json.loads(completed.stdout)

    assert about["name"] == "tap-usersnap"
    assert about["version"] == tap_usersnap.__version__
    assert metadata.version("tap-usersnap") == tap_usersnap.__version__


def test_version_is_pep_440_and_normalised() -> None:
    assert str(Version(tap_usersnap.__version__)) == tap_usersnap.__version__


def test_changelog_has_a_section_for_this_version() -> None:
    text = (Path(__file__).resolve().parents[2] / "CHANGELOG.md").read_text()
    urls = dict(
        entry.split(", ", 1)
        for entry in metadata.metadata("tap-usersnap").get_all("Project-URL") or []
    )
    version = tap_usersnap.__version__

    assert "\n## [Unreleased]\n" in text
    assert f"\n## [{version}]" in text
    assert f"\n[{version}]: {urls['Repository']}/releases/tag/v{version}\n" in text
