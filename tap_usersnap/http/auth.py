"""Usersnap authentication: the tap signs its own short-lived HS256 JWT."""

from __future__ import annotations

import threading
import time
import typing as t
import uuid
import warnings

import jwt
from jwt.warnings import InsecureKeyLengthWarning
from singer_sdk.authenticators import APIAuthenticatorBase
from typing_extensions import override

if t.TYPE_CHECKING:
    import requests

#: How long a signed token is valid. Short, so a leaked token is worth little.
TOKEN_LIFETIME_SECONDS = 300
#: Re-sign when less than this is left, so no request ever carries a token about to expire.
REFRESH_MARGIN_SECONDS = 120
#: Backdate ``iat`` a little: a server clock slightly behind ours must not see a future token.
CLOCK_SKEW_SECONDS = 30


class UsersnapJWTAuthenticator(APIAuthenticatorBase):
    """Adds ``Authorization: Bearer <jwt>`` signed with the customer's JWT secret.

    Usersnap documents HS256 (never HS512) with the JWT ID in the header's ``kid``. The
    token is cached and re-signed well before it expires, so a run of any length never
    sends an expired token; :meth:`invalidate` forces a fresh one after a 401.
    """

    def __init__(
        self,
        jwt_id: str,
        jwt_secret: str,
        *,
        lifetime: int = TOKEN_LIFETIME_SECONDS,
        clock: t.Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self._jwt_id = jwt_id
        self._jwt_secret = jwt_secret
        self._lifetime = lifetime
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    @override
    def __repr__(self) -> str:
        """Name the key, never the secret or the token."""
        return f"{type(self).__name__}(jwt_id={self._jwt_id!r})"

    @property
    def token(self) -> str:
        """A valid token, signing a new one when the cached one is close to expiry."""
        with self._lock:
            now = self._clock()
            if self._token is None or now >= self._expires_at - REFRESH_MARGIN_SECONDS:
                self._token = self._sign(now)
            return self._token

    def invalidate(self) -> None:
        """Drop the cached token so the next request carries a freshly signed one."""
        with self._lock:
            self._token = None

    @override
    def authenticate_request(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Set the bearer header on every request (retries included) from the cache."""
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request

    def _sign(self, now: float) -> str:
        """A new token; ``jti`` makes every signature unique, even within one second."""
        issued_at = int(now) - CLOCK_SKEW_SECONDS
        self._expires_at = int(now) + self._lifetime
        with warnings.catch_warnings():
            # Usersnap generates the secret; its length is not the user's to choose.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            return jwt.encode(
                {"iat": issued_at, "exp": int(self._expires_at), "jti": uuid.uuid4().hex},
                self._jwt_secret,
                algorithm="HS256",
                headers={"kid": self._jwt_id},
            )
