"""What the network and the server's clock can do to a run, told in one line or absorbed.

A redirect loop, a redirect to another host that answers 401, a server clock far off (its
401 names the skew), a byte that is not UTF-8 in a page.
"""

from __future__ import annotations

import re
import typing as t

import pytest

from fake_usersnap.protocol import encode_json
from harness.reliability import BAD_INPUT, FaultScenario
from tap_usersnap.client import CLOCK_SKEW_SECONDS, CredentialsRejectedError, UsersnapError

if t.TYPE_CHECKING:
    from fake_usersnap import FakeUsersnap, RecordedRequest

FILTER = r"POST .*/filter$"
LISTING = "GET /projects$"
FOREVER = 10**6
SERVER = "server errors and network"
ACCESS = "credentials and projects"


def test_a_redirect_loop_ends_the_run_in_one_line(scenario: FaultScenario) -> None:
    fake = scenario.fake
    listing = f"{fake.url}/projects"
    fake.inject("status", status=302, headers={"Location": listing}, match=LISTING, times=FOREVER)
    host = listing.split("/")[2]
    played = scenario.play(
        "a redirect loop on the projects listing, CLI",
        group=SERVER,
        fails=UsersnapError,
        message=re.escape(
            f"| Usersnap's answers redirect in a loop (more than 30 redirects, the last to "
            f"{host}/v0.1/projects); check api_url"
        )
        + "$",
        cli=True,
    )
    assert played.first.returncode == 1
    assert len([line for line in played.first.stderr.splitlines() if "ERROR" in line]) == 1


@pytest.mark.off_contract  # the redirected request goes without its token, on purpose
def test_a_401_after_a_redirect_to_another_host_names_the_redirect(
    scenario: FaultScenario, empty_fake: FakeUsersnap
) -> None:
    fake, elsewhere = scenario.fake, empty_fake
    fake.inject(
        "status",
        status=307,
        headers={"Location": f"{elsewhere.url}/projects/x/feedbacks/filter"},
        match=FILTER,
        skip=2,
        times=FOREVER,
    )
    origin, other = (f"http://{url.split('/')[2]}" for url in (fake.url, elsewhere.url))
    project_id = next(iter(fake.projects))
    played = scenario.play(
        "a redirect to another host, which answers 401, CLI",
        group=ACCESS,
        fails=UsersnapError,
        message=re.escape(
            f"| Usersnap's answer to POST /v0.1/projects/{project_id}/feedbacks/filter came "
            f"from another host: {origin} redirected it to {other}, which answered 401; the "
            "credentials are never sent to another host, so set api_url to the URL the "
            "redirect names if that is the API"
        )
        + "$",
        cli=True,
    )
    assert played.first.returncode == 1


def test_a_byte_that_is_not_utf8_costs_nothing_but_that_character(
    scenario: FaultScenario,
) -> None:
    fake = scenario.fake
    marker = b'"text_value": "'

    def break_one_byte(envelope: dict, request: RecordedRequest) -> bytes:
        body = encode_json(envelope)
        at = body.index(marker) + len(marker)
        return body[:at] + b"\xff" + body[at:]

    fake.inject("mangle", match=FILTER, skip=1, transform=break_one_byte)
    played = scenario.play("a byte that is not UTF-8 in a page", group=BAD_INPUT)

    replaced = [
        (r["feedback_id"], answer["text_value"])
        for r in played.first.records("feedback")
        for answer in r["ordered_inputs"] or []
        if "\ufffd" in (answer.get("text_value") or "")
    ]
    assert len(replaced) == 1


def rejected_by_clock(fake: FakeUsersnap, seconds: int, side: str, looks: str) -> str:
    """The 401 line; the Date header counts whole seconds, so the skew is told to one."""
    return (
        rf"^Usersnap rejected the credentials \(401\) of JWT ID '{fake.jwt_id}': check the "
        r"jwt_id and jwt_secret settings; .*\(Settings > API\); but the server's clock \(its "
        rf"Date header\) is ({seconds - 1}|{seconds}|{seconds + 1}) s {side} this machine's, "
        rf"so the token looks {looks} there: set this machine's clock right \(NTP\)$"
    )


def test_a_server_clock_a_little_behind_accepts_the_token(scenario: FaultScenario) -> None:
    scenario.fake.clock_offset_seconds = -(CLOCK_SKEW_SECONDS - 10)
    scenario.play("server clock 20 s behind", group=ACCESS)
    assert {r.status for r in scenario.fake.requests} == {200}


@pytest.mark.parametrize(
    ("offset", "side", "looks"),
    [(-45, "behind", "issued in the future"), (400, "ahead of", "expired")],
)
def test_a_server_clock_far_off_is_named_in_the_401_line(
    scenario: FaultScenario, sleeps: list[float], offset: int, side: str, looks: str
) -> None:
    fake = scenario.fake
    fake.clock_offset_seconds = offset
    scenario.play(
        f"server clock {abs(offset)} s {side} (401)",
        group=ACCESS,
        fails=CredentialsRejectedError,
        message=rejected_by_clock(fake, abs(offset), side, looks),
        recover=lambda: setattr(fake, "clock_offset_seconds", 0.0),
    )
    assert sleeps == []  # one re-signed try at once, then the clear failure


def test_a_server_clock_far_off_through_the_cli(scenario: FaultScenario) -> None:
    fake = scenario.fake
    fake.clock_offset_seconds = -45
    played = scenario.play(
        "server clock 45 s behind, CLI",
        group=ACCESS,
        fails=CredentialsRejectedError,
        message=rejected_by_clock(fake, 45, "behind", "issued in the future").replace(
            "^", r"\| ", 1
        ),
        recover=lambda: setattr(fake, "clock_offset_seconds", 0.0),
        cli=True,
    )
    assert played.first.returncode == 1
    errors = [line for line in played.first.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, errors
