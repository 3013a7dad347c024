"""The README and docs/ say what the code and the definitions do.

Cheap checks without Meltano: the README's size and the parts scripts rewrite, the pinned
Meltano version, Meltano 4's command syntax, the inline definition in docs/meltano.md
against hub/tap-usersnap.yml, and the YAML the docs ask a user to paste. The commands
themselves run in tests/e2e/ (test_quick_start.py, test_settings_from_env.py,
test_piped_postgres.py).
"""

from __future__ import annotations

import re
import typing as t

import pytest
import yaml

from harness.meltano_project import REPO

README = (REPO / "README.md").read_text()
DOCS = {path.name: path.read_text() for path in sorted((REPO / "docs").glob("*.md"))}
HUB = yaml.safe_load((REPO / "hub" / "tap-usersnap.yml").read_text())
MELTANO_PIN = re.search(
    r"^meltano==(\S+)$", (REPO / "requirements" / "meltano.in").read_text(), re.M
)


def code_blocks(markdown: str, language: str) -> list[str]:
    """The fenced blocks of ``language``, unindented (list items indent theirs)."""
    blocks = re.findall(rf"^( *)```{language}\n(.*?)^\1```$", markdown, re.M | re.S)
    return [
        "\n".join(line.removeprefix(indent) for line in body.splitlines())
        for indent, body in blocks
    ]


def section(markdown: str, heading: str) -> str:
    start = markdown.index(f"\n## {heading}\n")
    end = markdown.find("\n## ", start + 1)
    return markdown[start : end if end != -1 else None]


def test_the_readme_stays_short() -> None:
    assert len(README.encode()) <= 15_000


def test_the_readme_keeps_what_scripts_rewrite() -> None:
    assert README.count("<!-- reliability:start -->") == 1  # scripts/reliability_report.py
    assert README.count("<!-- reliability:end -->") == 1
    assert README.count("From `tap-usersnap --about --format=markdown`:\n\n") == 1  # sync script


def test_the_readme_installs_the_meltano_this_repository_tests() -> None:
    assert MELTANO_PIN
    version = MELTANO_PIN.group(1)
    installation = section(README, "Installation")
    assert f"pipx install meltano=={version}" in installation
    assert f"uv tool install meltano=={version}" in installation
    assert f"meltano, version {version}" in installation


def test_the_readme_says_where_pip_url_points_before_and_after_the_release() -> None:
    installation = section(README, "Installation")
    assert f"`{HUB['pip_url']}`" in installation  # the definition's default
    assert "| `tap-usersnap` (or `tap-usersnap==" in installation
    assert "`--no-install`" in installation
    assert "`meltano install`" in installation


def test_every_meltano_command_in_the_docs_has_meltano_4s_syntax() -> None:
    """``meltano config <plugin> list`` and a leading plugin type are Meltano 3's."""
    texts = {"README.md": README, **DOCS, "CONTRIBUTING.md": (REPO / "CONTRIBUTING.md").read_text()}
    old = re.compile(r"meltano (config [\w-]+ (list|set|test)|(add|install) (extractor|loader)s? )")
    found = {
        name: match.group(0)
        for name, text in texts.items()
        for block in code_blocks(text, "bash")
        if (match := old.search(block))
    }
    assert found == {}
    assert "meltano config test tap-usersnap" in README
    assert "meltano config list tap-usersnap" in README


def test_docs_meltano_md_inline_definition_is_the_hub_files() -> None:
    (block,) = [b for b in code_blocks(DOCS["meltano.md"], "yaml") if "extractors:" in b]
    (extractor,) = yaml.safe_load(block)["plugins"]["extractors"]
    keys = ("name", "kind", "value", "sensitive")
    hub_settings = [{k: s[k] for k in keys if k in s} for s in HUB["settings"]]
    assert extractor["settings"] == hub_settings
    assert extractor["capabilities"] == HUB["capabilities"]
    assert extractor["settings_group_validation"] == HUB["settings_group_validation"]
    for key in ("name", "namespace", "executable", "pip_url"):
        assert extractor[key] == HUB[key], key


def test_docs_meltano_md_says_hard_delete_is_declared() -> None:
    meltano_yml = yaml.safe_load((REPO / "meltano.yml").read_text())
    (loader,) = [p for p in meltano_yml["plugins"]["loaders"] if p["name"] == "target-postgres"]
    assert {"name": "hard_delete", "kind": "boolean"}.items() <= next(
        s for s in loader["settings"] if s["name"] == "hard_delete"
    ).items()
    text = " ".join(DOCS["meltano.md"].split())
    assert "declares the connection settings, the schema and `hard_delete`" in text
    assert "does not declare" not in text


@pytest.mark.parametrize("name", sorted(DOCS))
def test_every_yaml_block_of_the_docs_parses(name: str) -> None:
    for block in code_blocks(DOCS[name], "yaml"):
        assert yaml.safe_load(block) is not None


def test_the_metrics_logging_file_is_a_logging_config() -> None:
    (block,) = [b for b in code_blocks(DOCS["troubleshooting.md"], "yaml") if "filters:" in b]
    config: dict[str, t.Any] = yaml.safe_load(block)
    assert config["version"] == 1
    assert config["disable_existing_loggers"] is False  # the tap's loggers exist by then
    (name,) = config["loggers"]["singer_sdk.metrics"]["filters"]
    assert config["filters"][name]["()"] == "singer_sdk.metrics.MetricExclusionFilter"


def test_targets_md_has_a_row_for_each_target_it_describes() -> None:
    rows = [line for line in DOCS["targets.md"].splitlines() if line.startswith("| target-")]
    names = {row.split(" | ")[0].removeprefix("| ") for row in rows}
    assert {"target-sqlite (MeltanoLabs)", "target-duckdb (MeltanoLabs)"} <= names
    jsonl = next(row for row in rows if row.startswith("| target-jsonl"))
    assert "a new file per run" not in jsonl
    assert "`do_timestamp_file: false`" in jsonl
