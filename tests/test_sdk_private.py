"""The private singer-sdk members the tap relies on still exist, as relied on.

``tap_usersnap/sdk_private.py`` keeps every use of a private SDK member in one place (four).
When singer-sdk changes one of them, a test here fails naming the installed SDK version and
what to revisit, instead of the tap silently losing a guarantee (versions on records,
bookmarks per project, secret-free config errors, a clean stop on SIGTERM).
"""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import re
from pathlib import Path

from singer_sdk import Stream, plugin_base, tap_base
from singer_sdk.streams import core

import tap_usersnap

SDK_VERSION = importlib.metadata.version("singer-sdk")
PACKAGE = Path(tap_usersnap.__file__).parent
#: Every private SDK member the tap uses: all in sdk_private.py.
PRIVATE = {
    "_generate_record_messages",
    "_increment_stream_state",
    "_validate_config",
    "_handle_termination",
}


def revisit(member: str, found: str) -> str:
    return (
        f"singer-sdk {SDK_VERSION} changed {member} (found: {found}); "
        "revisit its use in tap_usersnap/sdk_private.py"
    )


def private_names(path: Path) -> set[str]:
    """Underscored attributes a module names on an object (``x._name``), its own aside."""
    tree = ast.parse(path.read_text())
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and re.fullmatch(r"_[a-z]\w*", node.attr)
    } | {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and re.fullmatch(r"_[a-z]\w*", node.name)
    }


def test_only_sdk_private_uses_private_sdk_members() -> None:
    for path in PACKAGE.glob("*.py"):
        if path.name == "sdk_private.py":
            continue
        assert not (private_names(path) & PRIVATE), (
            f"{path.name} uses {private_names(path) & PRIVATE}"
        )
        text = path.read_text()
        assert "singer_sdk.helpers._" not in text, path.name
        assert "self._tap" not in text, path.name


def test_sdk_private_uses_at_most_the_four_members() -> None:
    used = private_names(PACKAGE / "sdk_private.py") - {"_config"}
    assert used == PRIVATE, used


def test_records_are_built_through_one_overridable_method() -> None:
    found = inspect.getsource(Stream._write_record_message)
    assert "self._generate_record_messages(record)" in found, revisit(
        "_write_record_message", found
    )
    params = list(inspect.signature(Stream._generate_record_messages).parameters)
    assert params == ["self", "record"], revisit("_generate_record_messages", str(params))


def test_state_is_incremented_through_one_overridable_method() -> None:
    found = inspect.getsource(core.Stream._sync_records)
    assert "self._increment_stream_state(record, context=current_context)" in found, revisit(
        "_sync_records", found
    )
    params = list(inspect.signature(Stream._increment_stream_state).parameters)
    assert params == ["self", "latest_record", "context"], revisit(
        "_increment_stream_state", str(params)
    )


def test_config_is_validated_through_one_overridable_method() -> None:
    found = inspect.getsource(plugin_base.PluginBase.__init__)
    assert "self._validate_config(" in found, revisit("PluginBase.__init__", found)
    params = list(inspect.signature(plugin_base.PluginBase._validate_config).parameters)
    assert params == ["self", "raise_errors"], revisit("_validate_config", str(params))


def test_termination_signals_reach_one_overridable_method() -> None:
    found = inspect.getsource(plugin_base.PluginBase)
    assert "signal.signal(signal.SIGTERM, self._handle_termination)" in found, revisit(
        "signal handling", "no SIGTERM handler"
    )
    params = list(inspect.signature(tap_base.Tap._handle_termination).parameters)
    assert params == ["self", "signum", "frame"], revisit("_handle_termination", str(params))
