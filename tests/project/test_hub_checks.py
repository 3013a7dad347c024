"""hub/tap-usersnap.yml passes the checks a Meltano Hub pull request runs.

Hub lints every definition with yamllint (its ``.yamllint.yaml``: alphabetical keys,
two-space indents, lists not indented) and validates it against its extractor JSON Schema.
The rules are restated here, and the exact files from the meltano/hub repository are
vendored in ``tests/project/data/meltano-hub/`` (its README names the commit).
"""

from __future__ import annotations

import json
import os
import typing as t
from pathlib import Path

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from yamllint import linter
from yamllint.config import YamlLintConfig

from harness.meltano_project import REPO

HUB_FILE = REPO / "hub" / "tap-usersnap.yml"
HUB = yaml.safe_load(HUB_FILE.read_text())

#: Meltano Hub's yamllint rules (its .yamllint.yaml), in our words.
HUB_YAMLLINT_RULES = """
extends: default
rules:
  braces: {forbid: non-empty}
  document-start: {present: false}
  indentation: {indent-sequences: false, spaces: 2}
  key-ordering: enable
  line-length: disable
  trailing-spaces: disable
  truthy: disable
"""
#: What Hub's extractor schema allows: the top-level keys, and the values of a few.
HUB_TOP_LEVEL_KEYS = {
    "name", "pip_url", "variant", "namespace", "label", "description", "executable",
    "settings", "docs", "repo", "logo_url", "hidden", "python", "settings_group_validation",
    "commands", "capabilities", "metadata", "schema", "select", "maintenance_status",
    "quality", "domain_url", "keywords", "requires", "definition", "next_steps",
    "settings_preamble", "usage", "prereq", "supported_python_versions", "log_parser",
}  # fmt: skip
HUB_REQUIRED = {"name", "namespace", "variant", "quality"}
HUB_QUALITY = {"gold", "silver", "bronze", "unknown"}
HUB_CAPABILITIES = {
    "properties", "catalog", "discover", "state", "about", "stream-maps", "schema-flattening",
    "activate-version", "batch", "test", "log-based", "structured-logging",
}  # fmt: skip
HUB_KINDS = {
    "oauth", "hidden", "password", "date_iso8601", "file", "email", "integer", "options",
    "object", "array", "boolean", "string", "decimal",
}  # fmt: skip
HUB_SETTING_KEYS = {
    "name", "aliases", "label", "value", "placeholder", "kind", "description", "tooltip",
    "documentation", "env", "value_processor", "value_post_processor", "oauth", "options",
    "docs", "hidden", "sensitive",
}  # fmt: skip


def hub_checks_dir() -> Path | None:
    """Where meltano/hub's own files are laid out, if anywhere."""
    candidates = [Path(__file__).parent / "data" / "meltano-hub"]
    if os.environ.get("MELTANO_HUB_CHECKS"):
        candidates.insert(0, Path(os.environ["MELTANO_HUB_CHECKS"]))
    return next((path for path in candidates if (path / ".yamllint.yaml").is_file()), None)


def lint(config: YamlLintConfig, path: Path = HUB_FILE) -> list[str]:
    problems = linter.run(path.read_text(), config, str(path))
    return [f"{path.name}:{p.line}:{p.column} {p.rule}: {p.desc}" for p in problems]


def test_every_hub_file_passes_hubs_yamllint_rules() -> None:
    config = YamlLintConfig(HUB_YAMLLINT_RULES)
    files = sorted((REPO / "hub").glob("*.yml"))
    assert len(files) == 3
    assert [problem for path in files for problem in lint(config, path)] == []


def test_the_pull_requests_other_entries_name_the_variant() -> None:
    maintainers = yaml.safe_load((REPO / "hub" / "maintainers.yml").read_text())
    defaults = yaml.safe_load((REPO / "hub" / "default_variants.yml").read_text())
    assert set(maintainers) == {HUB["variant"]}
    assert set(maintainers[HUB["variant"]]) == {"label", "name", "url"}
    assert defaults == {"extractors": {HUB["name"]: HUB["variant"]}}
    assert HUB["logo_url"].startswith("/assets/logos/extractors/")


def test_yamllint_with_hubs_rules_finds_keys_out_of_order() -> None:
    config = YamlLintConfig(HUB_YAMLLINT_RULES)
    problems = linter.run("name: x\nlabel: y\n", config)
    assert [p.rule for p in problems] == ["key-ordering"]


def test_the_hub_file_has_only_what_hubs_schema_allows() -> None:
    assert set(HUB) <= HUB_TOP_LEVEL_KEYS
    assert set(HUB) >= HUB_REQUIRED
    assert HUB["quality"] in HUB_QUALITY
    assert set(HUB["capabilities"]) <= HUB_CAPABILITIES
    assert all(version.startswith("3.") for version in HUB["supported_python_versions"])
    for setting in HUB["settings"]:
        assert set(setting) <= HUB_SETTING_KEYS, setting["name"]
        assert setting["kind"] in HUB_KINDS, setting["name"]
        assert isinstance(setting["description"], str), setting["name"]


def hub_schema_registry(root: Path) -> Registry[t.Any]:
    """Hub's schemas, each found by the file name its ``$ref`` ends in."""

    def retrieve(uri: str) -> Resource[t.Any]:
        (path,) = (root / "schemas").glob(f"*/{uri.rsplit('/', 1)[-1]}")  # names are unique
        return Resource.from_contents(json.loads(path.read_text()))

    return Registry(retrieve=retrieve)  # type: ignore[call-arg]


def test_the_hub_file_passes_hubs_own_yamllint_config_and_extractor_schema() -> None:
    root = hub_checks_dir()
    if root is None:
        pytest.skip("the vendored meltano/hub files are missing")
    assert lint(YamlLintConfig(file=str(root / ".yamllint.yaml"))) == []
    schema_path = root / "schemas" / "plugin_definitions" / "extractors.schema.json"
    schema = json.loads(schema_path.read_text())
    validator = jsonschema.Draft7Validator(schema, registry=hub_schema_registry(root))
    assert [error.message for error in validator.iter_errors(HUB)] == []
    without_quality = {key: value for key, value in HUB.items() if key != "quality"}
    assert [e.message for e in validator.iter_errors(without_quality)] == [
        "'quality' is a required property"
    ]
