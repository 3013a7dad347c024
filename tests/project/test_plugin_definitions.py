"""meltano.yml and the Meltano Hub definition describe the tap as it is.

One list of capabilities and settings for all three: ``tap-usersnap --about``, meltano.yml
and hub/tap-usersnap.yml. A setting missing from a plugin definition cannot be set the Meltano
way; a secret not marked sensitive is shown by ``meltano config``; an unpinned plugin makes
``meltano install`` change under our feet. These checks are cheap, so they run without Meltano.
"""

from __future__ import annotations

import functools
import json
import typing as t
from importlib import metadata

import pytest
import yaml

from harness.meltano_project import REPO
from harness.singer_run import run_cli
from tap_usersnap.settings import TAP_SETTINGS

MELTANO_YML = yaml.safe_load((REPO / "meltano.yml").read_text())
HUB_TEXT = (REPO / "hub" / "tap-usersnap.yml").read_text()
HUB = yaml.safe_load(HUB_TEXT)
#: The project's one home (pyproject.toml's [project.urls]); the Hub file points there.
HOME = "https://github.com/tap-usersnap/tap-usersnap"

#: Which Meltano setting kinds can carry each JSON Schema type of the tap's settings.
KINDS: dict[str, set[str | None]] = {
    "string": {"string", "password", None},
    "integer": {"integer"},
    # not `decimal`: Meltano 4.4.1 cannot pass a decimal read from the environment on
    # (tests/e2e/test_settings_from_env.py); 2.5 still works from meltano.yml's `config:`
    "number": {"integer"},
    "boolean": {"boolean"},
    "array": {"array"},
    "object": {"object"},
    "date-time": {"date_iso8601"},
}


#: What a newer SDK adds to ``--about`` that the definitions leave out: 0.55's builtin
#: setting (the tap does not let its ACTIVATE_VERSION precede the records) and its
#: capability, which Meltano Hub's schema does not know yet.
NEWER_SDK_SETTINGS = {"emit_activate_version_messages"}
NEWER_SDK_CAPABILITIES = {"start-date"}


@functools.cache
def about() -> dict[str, t.Any]:
    """``--about``, less what :data:`NEWER_SDK_SETTINGS` and ``_CAPABILITIES`` name."""
    info = json.loads(run_cli("--about", "--format=json").stdout)
    settings = info["settings"]["properties"]
    for name in NEWER_SDK_SETTINGS & set(settings):
        del settings[name]
    info["capabilities"] = [c for c in info["capabilities"] if c not in NEWER_SDK_CAPABILITIES]
    return t.cast("dict[str, t.Any]", info)


def extractor_in_meltano_yml() -> dict[str, t.Any]:
    (extractor,) = MELTANO_YML["plugins"]["extractors"]
    return t.cast("dict[str, t.Any]", extractor)


def json_type(schema: dict[str, t.Any]) -> str:
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    (kind,) = [name for name in types if name != "null"]
    if schema.get("format") == "date-time":
        return "date-time"
    return str(kind)


@pytest.mark.parametrize(
    "definition", [extractor_in_meltano_yml(), HUB], ids=["meltano.yml", "hub"]
)
def test_definition_matches_the_tap(definition: dict[str, t.Any]) -> None:
    settings = {s["name"]: s for s in definition["settings"]}
    available = about()["settings"]["properties"]
    assert list(settings) == list(available)  # in order; the SDK's settings too
    for name, setting in settings.items():
        schema = available[name]
        expected = KINDS[json_type(schema)]
        assert setting.get("kind") in expected, name
        assert bool(setting.get("sensitive")) == bool(schema.get("secret")), name
        if "default" in schema:
            assert setting.get("value") == schema["default"], name
        if definition is HUB:  # what the Hub page shows is what `--about` says
            assert setting["description"] == schema["description"], name
    required = set(about()["settings"]["required"])
    assert [set(group) for group in definition["settings_group_validation"]] == [required]
    assert set(definition["capabilities"]) == set(about()["capabilities"])
    assert len(definition["capabilities"]) == len(set(definition["capabilities"]))
    assert {"catalog", "discover", "state"} <= set(definition["capabilities"])
    assert definition["namespace"] == "tap_usersnap"
    assert definition["executable"] == about()["name"] == "tap-usersnap"


def test_meltano_yml_and_hub_list_the_same_capabilities_and_settings() -> None:
    """Also without the tap: neither may gain what the other lacks."""
    extractor = extractor_in_meltano_yml()
    assert sorted(extractor["capabilities"]) == sorted(HUB["capabilities"])
    assert [s["name"] for s in extractor["settings"]] == [s["name"] for s in HUB["settings"]]
    for ours, hubs in zip(extractor["settings"], HUB["settings"], strict=True):
        assert ours.get("value") == hubs.get("value"), ours["name"]
        assert bool(ours.get("sensitive")) == bool(hubs.get("sensitive")), ours["name"]
    assert extractor["settings_group_validation"] == HUB["settings_group_validation"]


def test_meltano_yml_needs_no_hub_and_pins_every_plugin() -> None:
    assert "version" not in MELTANO_YML  # Meltano 4 warns about it
    assert MELTANO_YML["send_anonymous_usage_stats"] is False
    plugins = [p for kind in MELTANO_YML["plugins"].values() for p in kind]
    for plugin in plugins:
        assert "variant" not in plugin, plugin["name"]  # a variant means a Hub lookup
        assert {"namespace", "pip_url", "executable"} <= set(plugin), plugin["name"]
        packages = plugin["pip_url"].split()
        assert packages == ["-e", "."] or all("==" in p for p in packages), plugin["name"]
    loaders = {p["name"]: p for p in MELTANO_YML["plugins"]["loaders"]}
    assert "duckdb==1.2.2" in loaders["target-duckdb"]["pip_url"].split()


def test_hub_definition_has_what_the_hub_requires() -> None:
    assert {"name", "namespace", "variant", "label", "pip_url", "repo"} <= set(HUB)
    assert HUB["maintenance_status"] in {"active", "beta", "development", "inactive", "unknown"}
    # Usable as it is with `meltano add extractor tap-usersnap --from-ref hub/tap-usersnap.yml`:
    # nothing to fill in, and it installs from the project's home until it is on PyPI.
    assert "OWNER" not in HUB_TEXT
    assert HUB["name"] == HUB["variant"] == "tap-usersnap"
    assert HUB["repo"] == HOME
    assert HUB["pip_url"] in {f"git+{HOME}.git", "tap-usersnap"}  # tap-usersnap: PyPI's name
    hub_kinds = {"oauth", "hidden", "password", "date_iso8601", "file", "email", "integer"}
    hub_kinds |= {"options", "object", "array", "boolean", "string", "decimal"}
    assert {s["kind"] for s in HUB["settings"]} <= hub_kinds
    assert HUB["supported_python_versions"] == about()["supported_python_versions"]
    assert HUB["quality"] in {"gold", "silver", "bronze", "unknown"}


def test_one_home_for_the_project() -> None:
    """pyproject.toml's URLs, as installed, are the Hub file's home and pages under it."""
    urls = dict(
        entry.split(", ", 1)
        for entry in metadata.metadata("tap-usersnap").get_all("Project-URL") or []
    )
    assert urls.pop("Homepage") == urls.pop("Repository") == HOME
    assert urls
    assert all(url.startswith(f"{HOME}/") for url in urls.values())


def test_the_readme_settings_table_is_the_abouts() -> None:
    """The README's table is ``--about --format=markdown``'s, rows of the tap's own settings.

    The SDK's settings (stream maps, flattening) are named below the table instead.
    """
    readme = (REPO / "README.md").read_text()
    ours = readme.split("From `tap-usersnap --about --format=markdown`:\n\n", 1)[1]
    ours = ours.split("\n\n", 1)[0]
    markdown = run_cli("--about", "--format=markdown").stdout
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    own = [row for row in rows[1:] if row.split(" | ")[0][2:] in TAP_SETTINGS]
    separator = [line for line in markdown.splitlines() if line.startswith("|:--")]
    assert ours.splitlines() == rows[:1] + separator + own


def test_the_quick_starts_target_postgres_is_the_pinned_one() -> None:
    """plugins/target-postgres.yml, which the README's Quick start adds, is meltano.yml's."""
    loaders = {p["name"]: p for p in MELTANO_YML["plugins"]["loaders"]}
    pinned = {k: v for k, v in loaders["target-postgres"].items() if k != "config"}
    assert yaml.safe_load((REPO / "plugins" / "target-postgres.yml").read_text()) == pinned
    assert "plugins/target-postgres.yml" in (REPO / "README.md").read_text()
