"""The SDK's request metrics are logged for every request the tap sends.

``http_request_count`` (one counter per stream and project, the last count logged when the
run ends) adds up to the requests the API received; ``http_request_duration`` is one line
per answer.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import typing as t

from harness.singer_run import run_sync

if t.TYPE_CHECKING:
    import pytest

    from fake_usersnap import FakeUsersnap


def metrics(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, t.Any]]:
    points = [
        json.loads(r.getMessage().removeprefix("METRIC: "))
        for r in caplog.records
        if r.getMessage().startswith("METRIC: ")
    ]
    return [p for p in points if p["metric"] == name]


def received(fake: FakeUsersnap, pattern: str) -> int:
    return sum(1 for r in fake.requests if re.search(pattern, f"{r.method} {r.path}"))


def test_request_counts_add_up_to_the_requests_received(
    fake: FakeUsersnap, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="singer_sdk.metrics"):
        run_sync(fake.config(concurrency=4, page_size=5))

    counts: collections.Counter[str] = collections.Counter()
    feedback_projects = set()
    for point in metrics(caplog, "http_request_count"):
        counts[point["tags"]["stream"]] += point["value"]
        if point["tags"]["stream"] == "feedback":
            feedback_projects.add(point["tags"]["context"]["project_id"])
    assert counts == {
        "projects": received(fake, r"^GET /projects$"),
        "feedback": received(fake, r"/feedbacks/filter(/count)?$"),
        "project_assignees": received(fake, r"/assignees$"),
    }
    assert feedback_projects == set(fake.projects)
    durations = metrics(caplog, "http_request_duration")
    assert len(durations) == sum(counts.values())
