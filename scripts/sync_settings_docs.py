"""Rewrite what documents the settings from ``tap-usersnap --about``, after a setting changes.

- hub/tap-usersnap.yml, in Meltano Hub's layout: each setting's description and kind, and
  the supported Python versions, come from the installed tap; everything else stays. Keys
  are written in alphabetical order and lists unindented, as Hub's yamllint rules want; the
  leading comment is kept.
- README.md's settings table: ``--about --format=markdown``'s rows of the tap's own settings.

tests/project/test_plugin_definitions.py and tests/project/test_hub_checks.py fail until this
has run.

Usage: ``.venv/bin/python scripts/sync_settings_docs.py``
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
README = ROOT / "README.md"
README_TABLE_INTRO = "From `tap-usersnap --about --format=markdown`:\n\n"
#: Meltano's setting kind for each JSON Schema type whose kind the schema alone decides.
#: A number is declared ``integer``: Meltano 4.4.1 reads a ``decimal`` setting from the
#: environment into a value it then cannot write to the tap's config ("Object of type
#: Decimal is not JSON serializable"); a decimal still works from meltano.yml's ``config:``.
KIND_OF_TYPE = {"number": "integer", "integer": "integer", "boolean": "boolean"}


class HubDumper(yaml.SafeDumper):
    """Writes text of several lines as a literal block, as Hub's files do."""


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


HubDumper.add_representer(str, _text)


def about(output: str = "json") -> str:
    """The installed tap's ``--about`` in ``output`` format."""
    executable = shutil.which("tap-usersnap", path=str(Path(sys.executable).parent))
    if executable is None:
        sys.exit("tap-usersnap is not installed next to this Python (run `make setup`)")
    run = subprocess.run(  # noqa: S603 - the tap installed beside this interpreter
        [executable, "--about", f"--format={output}"], capture_output=True, text=True, check=True
    )
    return run.stdout


def settings_table(markdown: str, own: t.Collection[str]) -> str:
    """The settings table of ``--about --format=markdown``, only the rows of ``own``."""
    lines = markdown.splitlines()
    rows = [line for line in lines if line.startswith("| ")]
    separator = [line for line in lines if line.startswith("|:--")]
    kept = [row for row in rows[1:] if row.split(" | ")[0][2:] in own]
    return "\n".join(rows[:1] + separator + kept)


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
    """Rewrite the Hub file and the README's settings table in place."""
    info = json.loads(about())
    text = HUB_FILE.read_text()
    comment = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    definition = synced(yaml.safe_load(text), info)
    body = yaml.dump(definition, Dumper=HubDumper, sort_keys=True, allow_unicode=True, width=100)
    HUB_FILE.write_text(comment + body)

    from tap_usersnap.settings import SETTINGS  # noqa: PLC0415 - the installed tap's

    head, rest = README.read_text().split(README_TABLE_INTRO, 1)
    _, tail = rest.split("\n\n", 1)
    table = settings_table(about("markdown"), SETTINGS["properties"])
    README.write_text(head + README_TABLE_INTRO + table + "\n\n" + tail)


if __name__ == "__main__":
    main()
