"""A bare HTTP client for the fake, so tests can assert on its raw answers without the tap."""

from __future__ import annotations

import time
import typing as t

import jwt
import requests

if t.TYPE_CHECKING:
    from fake_usersnap.server import FakeUsersnap


def token(fake: FakeUsersnap, lifetime: int = 300) -> str:
    """A JWT the fake accepts: HS256, ``kid`` = JWT ID, signed with the secret."""
    now = int(time.time())
    return jwt.encode(
        {"iat": now, "exp": now + lifetime},
        fake.jwt_secret,
        algorithm="HS256",
        headers={"kid": fake.jwt_id},
    )


def call(
    fake: FakeUsersnap,
    method: str,
    path: str,
    *,
    params: dict[str, t.Any] | None = None,
    body: t.Any = None,
    timeout: float = 10,
) -> requests.Response:
    """``METHOD {fake.url}{path}`` with a valid token (and ``body`` as JSON, if given)."""
    return requests.request(
        method,
        f"{fake.url}{path}",
        params=params,
        json=body,
        headers={"Authorization": f"Bearer {token(fake)}"},
        timeout=timeout,
    )
