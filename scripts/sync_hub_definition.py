"""Rewrite hub/tap-usersnap.yml from ``tap-usersnap --about``, in Meltano Hub's layout.

Each setting's description and kind, and the supported Python versions, come from the
installed tap; everything else in the file stays. Keys are written in alphabetical order
and lists unindented, as Hub's yamllint rules want; the leading comment is kept.
tests/test_plugin_definitions.py and tests/test_hub_checks.py fail until this has run
after a setting changes.

Usage: ``.venv/bin/python scripts/sync_hub_definition.py``
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import typing as t
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
HUB_FILE = ROOT / "hub" / "tap-usersnap.yml"
#: Meltano's setting kind for each JSON Schema type whose kind the schema alone decides.
KIND_OF_TYPE = {"number": "decimal", "integer": "integer", "boolean": "boolean"}


class HubDumper(yaml.SafeDumper):
    """Writes text of several lines as a literal block, as Hub's files do."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


HubDumper.add_representer(str, _text)


def about() -> dict[str, t.Any]:
    """The installed tap's ``--about``, as JSON."""
    executable = shutil.which("tap-usersnap", path=str(Path(sys.executable).parent))
    if executable is None:
        sys.exit("tap-usersnap is not installed next to this Python (run `make setup`)")
    run = subprocess.run(  # noqa: S603 - the tap installed beside this interpreter
        [executable, "--about", "--format=json"], capture_output=True, text=True, check=True
    )
    return t.cast("dict[str, t.Any]", json.loads(run.stdout))


def synced(definition: dict[str, t.Any], info: dict[str, t.Any]) -> dict[str, t.Any]:
    """``definition`` with descriptions, kinds and Python versions as ``info`` says."""
    properties = info["settings"]["properties"]
    for setting in definition["settings"]:
        schema = properties[setting["name"]]
        setting["description"] = schema["description"]
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        (json_type,) = [name for name in types if name != "null"]
        if json_type in KIND_OF_TYPE:
            setting["kind"] = KIND_OF_TYPE[json_type]
    definition["supported_python_versions"] = info["supported_python_versions"]
    return definition


def main() -> None:
    """Rewrite the Hub file in place."""
    text = HUB_FILE.read_text()
    comment = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    definition = synced(yaml.safe_load(text), about())
    body = yaml.dump(definition, Dumper=HubDumper, sort_keys=True, allow_unicode=True, width=100)
    HUB_FILE.write_text(comment + body)


if __name__ == "__main__":
    main()
