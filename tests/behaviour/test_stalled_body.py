"""A body that trickles in: the try fails at the request timeout, however often bytes come."""

from __future__ import annotations

import logging
import re
import typing as t

from harness.expect import messages_at
from harness.reliability import (
    FaultScenario,
)

if t.TYPE_CHECKING:
    pass


FILTER = r"POST .*/filter$"
NETWORK = "server errors and network"


def test_a_body_trickling_in_fails_the_try_at_the_request_timeout(
    scenario: FaultScenario, sleeps: list[float]
) -> None:
    fake = scenario.fake
    # A short answer (15 bytes, 3 s at this pace): were the whole-answer deadline gone, the
    # try would end after 3 s and fail the checks below instead of hanging the suite.
    fake.inject(
        "trickle",
        match=FILTER,
        skip=1,
        times=1,
        seconds=0.2,
        transform=lambda envelope, request: b'{"status":true}',
    )

    played = scenario.play(
        "200 whose body trickles in at a byte per 0.2 s, request_timeout 1 s",
        group=NETWORK,
        settings={"request_timeout": 1},
    )

    assert sorted(played.first.ids()) == sorted(fake.all_feedback_ids())
    assert len(sleeps) == 1
    filters = fake.requests_to(FILTER)
    trickled, retried = filters[1], filters[2]
    assert (trickled.path, trickled.params) == (retried.path, retried.params)
    # One try, bounded by request_timeout. The fake stamps each request when it arrives and
    # the tap's deadline runs from just before it sends, so the gap between two arrivals may
    # fall short of the 1 s by the first request's delivery time (ms; 50 us seen).
    assert 0.95 <= retried.at - trickled.at < 3.0
    project_id = trickled.path.split("/")[2]
    warning = (
        rf"Usersnap did not answer in time: POST /v0\.1/projects/{project_id}/feedbacks/filter "
        rf"did not finish within 1s \(request_timeout\) \(project '[^']+' \({project_id}\)\); "
        r"retrying in \d+\.\ds \(try 2 of 6\)"
    )
    warnings = messages_at(scenario.caplog, logging.WARNING)
    assert [w for w in warnings if re.fullmatch(warning, w)] == warnings
    assert len(warnings) == 1
