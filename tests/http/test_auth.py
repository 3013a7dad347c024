"""The JWT authenticator: claims, caching, re-signing, what the fake API accepts, and a
401 from a server whose clock is far from ours."""

from __future__ import annotations

import jwt
import pytest
import requests

from fake_usersnap import ApiError, FakeUsersnap
from harness.reliability import FaultScenario
from tap_usersnap.http.auth import (
    CLOCK_SKEW_SECONDS,
    REFRESH_MARGIN_SECONDS,
    TOKEN_LIFETIME_SECONDS,
    UsersnapJWTAuthenticator,
)
from tap_usersnap.http.errors import CredentialsRejectedError
from tap_usersnap.http.responses import clock_skew_hint

ACCESS = "credentials and projects"

SECRET = "s3cr3t-" + "x" * 64


class Clock:
    """A clock the test moves by hand: no sleeping."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_token_is_hs256_with_kid_and_short_expiry() -> None:
    clock = Clock()
    token = UsersnapJWTAuthenticator("my-jwt-id", SECRET, clock=clock).token

    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256"
    assert header["kid"] == "my-jwt-id"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims["exp"] == int(clock.now) + TOKEN_LIFETIME_SECONDS
    assert claims["iat"] == int(clock.now) - CLOCK_SKEW_SECONDS
    assert claims["exp"] - claims["iat"] <= 10 * 60


def test_token_is_cached_until_close_to_expiry_then_resigned() -> None:
    clock = Clock()
    auth = UsersnapJWTAuthenticator("kid", SECRET, clock=clock)
    first = auth.token

    clock.now += TOKEN_LIFETIME_SECONDS - REFRESH_MARGIN_SECONDS - 1
    assert auth.token == first

    clock.now += 1
    second = auth.token
    assert second != first
    claims = jwt.decode(second, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    assert claims["exp"] == int(clock.now) + TOKEN_LIFETIME_SECONDS


def test_no_request_ever_carries_a_token_near_expiry() -> None:
    """Over a simulated two-hour run, every token sent has over a minute left."""
    clock = Clock()
    auth = UsersnapJWTAuthenticator("kid", SECRET, clock=clock)
    for _ in range(2 * 60 * 60 // 7):
        clock.now += 7
        claims = jwt.decode(auth.token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
        assert claims["exp"] - clock.now >= 60


def test_invalidate_forces_a_new_signature() -> None:
    clock = Clock()
    auth = UsersnapJWTAuthenticator("kid", SECRET, clock=clock)
    first = auth.token
    clock.now += 1
    auth.invalidate()
    assert auth.token != first


def test_request_gets_bearer_header() -> None:
    auth = UsersnapJWTAuthenticator("kid", SECRET)
    prepared = requests.Request("GET", "http://127.0.0.1/x").prepare()
    auth(prepared)
    assert prepared.headers["Authorization"] == f"Bearer {auth.token}"


def test_repr_never_shows_secret_or_token() -> None:
    auth = UsersnapJWTAuthenticator("kid", SECRET)
    token = auth.token
    assert SECRET not in repr(auth)
    assert token not in repr(auth)


def test_fake_accepts_our_token_and_rejects_wrong_ones() -> None:
    fake = FakeUsersnap(jwt_id="kid", jwt_secret=SECRET)
    good = UsersnapJWTAuthenticator("kid", SECRET).token
    assert fake.authenticate(f"Bearer {good}") == good

    wrong_kid = UsersnapJWTAuthenticator("other", SECRET).token
    wrong_secret = UsersnapJWTAuthenticator("kid", SECRET + "!").token
    hs512 = jwt.encode({"iat": 1, "exp": 2**31}, SECRET, algorithm="HS512", headers={"kid": "kid"})
    expired = UsersnapJWTAuthenticator("kid", SECRET, clock=Clock(1_000_000.0)).token
    for token in (wrong_kid, wrong_secret, hs512, expired, "not-a-jwt"):
        with pytest.raises(ApiError) as caught:
            fake.authenticate(f"Bearer {token}")
        assert caught.value.status == 401


# ---------------------------------------------------------------- clocks that disagree


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
    assert sleeps == [0.0]  # one re-signed try, then the clear failure


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


@pytest.mark.parametrize("date", [None, "", "yesterday", "Thu, 01 Jan 1970 00:00:00 GMT"])
def test_a_401_without_a_usable_date_or_with_a_close_one(date: str | None) -> None:
    response = requests.Response()
    if date is not None:
        response.headers["Date"] = date
    now = 0.0 if date and "1970" in date else 1_700_000_000.0
    hint = clock_skew_hint(response, now=now + CLOCK_SKEW_SECONDS)
    assert hint is None
