"""How many tap modules and functions the feedback stream's sync of one item crosses.

``python -m scripts.trace_item_path`` syncs one project holding one item from the fake API
in this process (concurrency 1, edits and deletes off) with ``sys.setprofile`` on while
``FeedbackStream.get_records`` runs (the SDK's handling of each record it yields included),
and prints the tap modules entered, the tap functions called and the pairs of tap modules
that call each other (the figures in docs/architecture.md).
"""

from __future__ import annotations

import sys
import types
import typing as t

from fake_usersnap import FakeUsersnap
from harness.singer_run import run_sync
from tap_usersnap.feedback import FeedbackStream

PACKAGE = "tap_usersnap"


def _tap_module(frame: types.FrameType | None) -> str | None:
    """The module of the nearest frame, from ``frame`` outwards, that is the tap's."""
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name.startswith(PACKAGE):
            return str(name)
        frame = frame.f_back
    return None


def main() -> None:
    """Sync one item with the profile on; print the figures."""
    modules: set[str] = set()
    functions: set[tuple[str, str]] = set()
    pairs: set[frozenset[str]] = set()

    def profile(frame: types.FrameType, event: str, arg: t.Any) -> None:
        module = frame.f_globals.get("__name__", "")
        if event != "call" or not module.startswith(PACKAGE):
            return
        modules.add(module)
        functions.add((module, frame.f_code.co_name))
        caller = _tap_module(frame.f_back)
        if caller is not None and caller != module:
            pairs.add(frozenset((caller, module)))

    get_records = FeedbackStream.get_records

    def traced(self: FeedbackStream, context: t.Any) -> t.Iterator[dict[str, t.Any]]:
        sys.setprofile(profile)
        try:
            yield from get_records(self, context)
        finally:
            sys.setprofile(None)

    with FakeUsersnap() as fake:
        fake.add_feedback(fake.add_project("One")["project_id"])
        setattr(FeedbackStream, "get_records", traced)  # noqa: B010 - for this run only
        try:
            run_sync(fake.config(concurrency=1, capture_edits=False, capture_deletes=False))
        finally:
            setattr(FeedbackStream, "get_records", get_records)  # noqa: B010
    names = ", ".join(sorted(m.removeprefix(PACKAGE + ".") for m in modules))
    print(f"{len(modules)} tap modules: {names}")
    print(f"{len(functions)} tap functions, {len(pairs)} pairs of modules that call each other")


if __name__ == "__main__":
    main()
