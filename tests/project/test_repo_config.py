"""The CI workflow and the pre-commit hooks: pinned, least privilege, in step with the project."""

from __future__ import annotations

import re
import typing as t
from importlib import metadata
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW_TEXT = (REPO / ".github" / "workflows" / "ci.yml").read_text()
WORKFLOW = yaml.safe_load(WORKFLOW_TEXT)
PRE_COMMIT_TEXT = (REPO / ".pre-commit-config.yaml").read_text()
PRE_COMMIT = yaml.safe_load(PRE_COMMIT_TEXT)
#: `uses: owner/repo@<full commit> # vX.Y.Z`
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


def steps(job: str) -> list[dict[str, t.Any]]:
    return t.cast("list[dict[str, t.Any]]", WORKFLOW["jobs"][job]["steps"])


def runs(job: str) -> list[str]:
    return [step["run"].strip() for step in steps(job) if "run" in step]


def test_every_action_is_pinned_to_a_commit_with_its_release() -> None:
    uses = [
        line.split("uses:", 1)[1].strip()
        for line in WORKFLOW_TEXT.splitlines()
        if line.strip().startswith(("uses:", "- uses:"))
    ]
    assert len(uses) == sum(1 for job in WORKFLOW["jobs"] for s in steps(job) if "uses" in s)
    assert uses
    assert [ref for ref in uses if not PINNED.match(ref)] == []


def test_least_privilege_and_no_persisted_token() -> None:
    assert WORKFLOW["permissions"] == {"contents": "read"}
    assert all("permissions" not in job for job in WORKFLOW["jobs"].values())
    for job in WORKFLOW["jobs"]:
        (checkout,) = [s for s in steps(job) if s.get("uses", "").startswith("actions/checkout@")]
        assert checkout["with"]["persist-credentials"] is False


def test_unit_job_covers_every_supported_python() -> None:
    classifiers = metadata.metadata("tap-usersnap").get_all("Classifier") or []
    prefix = "Programming Language :: Python :: "
    supported = [c.removeprefix(prefix) for c in classifiers if re.match(rf"{prefix}3\.\d+$", c)]

    assert WORKFLOW["jobs"]["unit"]["strategy"]["matrix"]["python-version"] == supported
    assert runs("unit") == ["make lint types unit"]


def test_a_job_runs_the_unit_tests_on_the_newest_sdk_pre_release() -> None:
    """Over the locked environment, so only singer-sdk differs; a warning, not a gate."""
    job = WORKFLOW["jobs"]["sdk-prerelease"]
    assert job["continue-on-error"] is True
    install, test = runs("sdk-prerelease")
    assert install.startswith("make setup\n")
    assert "--prerelease allow" in install
    assert '"singer-sdk[msgspec,testing]>=0.55.0a0"' in install
    assert test == '.venv/bin/pytest -m "not e2e"'


def test_e2e_and_build_jobs() -> None:
    (setup_python,) = [
        s for s in steps("e2e") if s.get("uses", "").startswith("actions/setup-python@")
    ]
    assert setup_python["with"]["python-version"] == "3.11"
    assert any("apt-get install" in run and "postgresql" in run for run in runs("e2e"))
    assert runs("e2e")[-1] == "make e2e"
    assert runs("build") == ["make dist"]
    for job in WORKFLOW["jobs"]:
        make_steps = [s for s in steps(job) if s.get("run", "").startswith("make ")]
        assert make_steps
        assert all(
            s["env"]["PYTHON"] == "${{ steps.python.outputs.python-path }}" for s in make_steps
        )


def test_pre_commit_hooks_are_pinned_and_match_the_lock() -> None:
    hooks = {hook["id"]: repo for repo in PRE_COMMIT["repos"] for hook in repo["hooks"]}
    wanted = {"check-yaml", "check-toml", "end-of-file-fixer", "trailing-whitespace"}
    assert wanted | {"ruff-check", "ruff-format", "mypy", "actionlint"} <= set(hooks)
    for repo in PRE_COMMIT["repos"]:
        if repo["repo"] != "local":
            assert re.fullmatch(r"v\d+\.\d+\.\d+|[0-9a-f]{40}", repo["rev"]), repo["repo"]
    assert re.search(r"rev: [0-9a-f]{40} # frozen: v\d+\.\d+\.\d+\n", PRE_COMMIT_TEXT), (
        "the commit-pinned rev names its release"
    )
    assert hooks["ruff-check"]["rev"] == f"v{metadata.version('ruff')}"
    assert hooks["mypy"]["hooks"][0]["entry"] == ".venv/bin/mypy"


def test_dependabot_updates_every_kind_of_pin() -> None:
    """The locked Python dependencies, Meltano's pins and the workflows' actions."""
    config = yaml.safe_load((REPO / ".github" / "dependabot.yml").read_text())
    assert config["version"] == 2
    updates = {(u["package-ecosystem"], u["directory"]) for u in config["updates"]}
    assert updates == {("uv", "/"), ("pip", "/requirements"), ("github-actions", "/")}
    assert (REPO / "uv.lock").is_file()
    assert "meltano==" in (REPO / "requirements" / "meltano.in").read_text()
    assert {path.name for path in (REPO / ".github" / "workflows").glob("*.yml")} == {
        "ci.yml",
        "release.yml",
    }
    for update in config["updates"]:
        assert update["schedule"]["interval"] == "weekly", update["package-ecosystem"]
