"""The release workflow: on a tag, checked archives to PyPI and a GitHub release.

Its two shell steps that decide what is released (the tag against the built version, the
notes cut from CHANGELOG.md) are run here as the workflow runs them, on this repository's
CHANGELOG; the rest is checked for what it may do (least privilege, pinned actions).
"""

from __future__ import annotations

import os
import re
import subprocess
import typing as t
from pathlib import Path

import pytest
import yaml

import tap_usersnap

REPO = Path(__file__).resolve().parents[2]
WORKFLOW_TEXT = (REPO / ".github" / "workflows" / "release.yml").read_text()
WORKFLOW = yaml.safe_load(WORKFLOW_TEXT)
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")
VERSION = tap_usersnap.__version__


def steps(job: str) -> list[dict[str, t.Any]]:
    return t.cast("list[dict[str, t.Any]]", WORKFLOW["jobs"][job]["steps"])


def step_named(job: str, name: str) -> dict[str, t.Any]:
    (step,) = [s for s in steps(job) if s.get("name") == name]
    return step


def run_step(step: dict[str, t.Any], cwd: Path, tag: str) -> subprocess.CompletedProcess[str]:
    """The step's ``run:`` as GitHub runs it (bash -e), with the tag it was pushed with."""
    assert step["env"] == {"TAG": "${{ github.ref_name }}"}
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=cwd,
        env={"PATH": os.environ["PATH"], "TAG": tag},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def changelog_section(version: str) -> str:
    """The body of ``## [version] - date``, read here without the workflow's awk."""
    text = (REPO / "CHANGELOG.md").read_text()
    start = re.search(rf"^## \[{re.escape(version)}\] - \d{{4}}-\d{{2}}-\d{{2}}\n", text, re.M)
    assert start, f"CHANGELOG.md has no dated section for {version}"
    end = re.search(r"^(## \[|\[[^]]+\]: )", text[start.end() :], re.M)
    assert end
    return text[start.end() : start.end() + end.start()].strip("\n") + "\n"


def test_runs_on_version_tags_only() -> None:
    trigger = WORKFLOW[True]  # YAML 1.1 reads the key `on` as true
    assert trigger == {"push": {"tags": ["v*"]}}


def test_every_action_is_pinned_to_a_commit_with_its_release() -> None:
    uses = [
        line.split("uses:", 1)[1].strip()
        for line in WORKFLOW_TEXT.splitlines()
        if line.strip().startswith(("uses:", "- uses:"))
    ]
    assert len(uses) == sum(1 for job in WORKFLOW["jobs"] for s in steps(job) if "uses" in s)
    assert [ref for ref in uses if not PINNED.match(ref)] == []


def test_least_privilege_per_job() -> None:
    assert WORKFLOW["permissions"] == {"contents": "read"}
    jobs = WORKFLOW["jobs"]
    assert "permissions" not in jobs["build"]
    (checkout,) = [s for s in steps("build") if s.get("uses", "").startswith("actions/checkout@")]
    assert checkout["with"]["persist-credentials"] is False
    # Only the publishing job may ask for an OIDC token, and only in the `pypi` environment
    # that PyPI's trusted publisher names.
    assert jobs["publish"]["permissions"] == {"id-token": "write"}
    assert jobs["publish"]["environment"]["name"] == "pypi"
    assert jobs["publish"]["needs"] == "build"
    (publish,) = [s for s in steps("publish") if "uses" in s and "pypi-publish" in s["uses"]]
    assert publish["uses"].startswith("pypa/gh-action-pypi-publish@")
    assert "password" not in publish.get("with", {})  # trusted publishing: no token
    assert jobs["github-release"]["permissions"] == {"contents": "write"}
    assert jobs["github-release"]["needs"] == "publish"


def test_build_checks_both_archives() -> None:
    runs = [s["run"].strip() for s in steps("build") if "run" in s]
    assert runs[0] == "make dist"  # uv build, then scripts/check_dist.py
    assert runs[1].endswith("twine check --strict dist/*")


@pytest.fixture
def built(tmp_path: Path) -> Path:
    """A directory as the build job has it after ``make dist``: this version's archives."""
    (tmp_path / "dist").mkdir()
    for name in (f"tap_usersnap-{VERSION}-py3-none-any.whl", f"tap_usersnap-{VERSION}.tar.gz"):
        (tmp_path / "dist" / name).write_text("")
    return tmp_path


def test_the_tag_must_be_the_built_version(built: Path) -> None:
    step = step_named("build", "the tag is the version that was built")
    assert run_step(step, built, f"v{VERSION}").returncode == 0

    wrong = run_step(step, built, "v99.0.0")
    assert wrong.returncode == 1
    assert "tag v99.0.0 is not the package's version" in wrong.stdout
    assert f"tap_usersnap-{VERSION}.tar.gz" in wrong.stdout


def test_release_notes_are_this_versions_changelog_section(tmp_path: Path) -> None:
    (tmp_path / "CHANGELOG.md").write_text((REPO / "CHANGELOG.md").read_text())
    step = step_named("build", "release notes from CHANGELOG.md")

    result = run_step(step, tmp_path, f"v{VERSION}")

    assert result.returncode == 0, result.stdout + result.stderr
    notes = (tmp_path / "release-notes.md").read_text()
    assert notes.strip("\n") == changelog_section(VERSION).strip("\n")
    assert notes.startswith("The first release")
    assert "\n### Added\n" in notes
    assert "## [" not in notes  # neither the next section nor the link list
    assert "]: https://" not in notes


def test_a_version_without_a_dated_section_is_not_released(tmp_path: Path) -> None:
    text = (REPO / "CHANGELOG.md").read_text()
    (tmp_path / "CHANGELOG.md").write_text(text.replace(f"## [{VERSION}] - ", f"## [{VERSION}]"))
    step = step_named("build", "release notes from CHANGELOG.md")

    result = run_step(step, tmp_path, f"v{VERSION}")

    assert result.returncode == 1
    assert f"CHANGELOG.md has no dated section '## [{VERSION}] - YYYY-MM-DD'" in result.stdout


def test_the_changelog_has_an_unreleased_heading_above_the_released_sections() -> None:
    text = (REPO / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## \[([^]]+)\]", text, re.M)
    assert headings[0] == "Unreleased"
    assert VERSION in headings
    assert re.search(r"^\[Unreleased\]: \S+/compare/v\S+\.\.\.HEAD$", text, re.M)
