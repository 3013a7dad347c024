"""Scripted misbehaviour: what a fault can do to an answer, and the requests it keys on.

Faults are injected with :meth:`FakeUsersnap.inject <fake_usersnap.server.FakeUsersnap.inject>`.
Besides answers that replace the real one (``status``, ``reset``, ``truncate``, ``raw``), a
fault can delay it (``stall``), send it one byte every ``seconds`` (``trickle``), run an
action first, such as deleting a project or revoking the key mid-run (``call``), or rewrite
the real answer, such as dropping the cursor or repeating items (``mangle``; ready-made
rewrites in :mod:`fake_usersnap.malformed`).

A fault strikes the requests whose ``METHOD path`` its ``match`` regex finds, so one
endpoint alone can misbehave, e.g. a 403 from the assignees endpoint while every other
endpoint answers::

    fake.inject("status", status=403, match=r"^GET /projects/[^/]+/assignees$", times=10**6)

A ``status`` fault's default body is an error envelope with errortype ``FAULT``; pass
``body`` for another one.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import itertools
import time
import typing as t

FaultKind = t.Literal[
    "status", "reset", "stall", "truncate", "raw", "call", "mangle", "trickle", "gzip_bomb"
]
#: What one gzip member of a bomb inflates to; a bomb repeats it (gzip allows many members).
BOMB_MEMBER_BYTES = 16 * 1024 * 1024


@dataclasses.dataclass
class RecordedRequest:
    """What the fake saw of one request (the token is kept so tests can check re-signing)."""

    method: str
    path: str
    params: dict[str, str]
    body: t.Any
    token: str | None
    status: int = 0
    #: The request's headers, as sent.
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    #: A ``trickle`` noticed the client hang up before the whole body was sent.
    hung_up: bool = False
    #: When the request arrived (``time.monotonic``).
    at: float = dataclasses.field(default_factory=time.monotonic)


#: Rewrites a real JSON answer (a deep copy of it) for a ``mangle`` fault; bytes replace
#: the body outright.
Transform = t.Callable[[dict[str, t.Any], RecordedRequest], "dict[str, t.Any] | bytes"]


@dataclasses.dataclass
class Fault:
    """A scripted misbehaviour, served instead of the real answer ``times`` times.

    ``match`` is a regex searched in ``METHOD path`` (e.g. ``"POST .*/filter"``, the path
    without ``/v0.1``); ``skip`` lets that many matching requests through first, so a fault
    can strike mid-run; a large ``times`` makes it permanent.

    - ``status``: answer ``status`` with ``headers`` and ``body`` (default: an error
      envelope with errortype ``FAULT``);
    - ``raw``: answer 200 with ``body`` as it is (HTML, broken JSON...);
    - ``reset``: close the connection with a TCP reset, no answer;
    - ``truncate``: headers promising twice the ``body`` sent, then close;
    - ``stall``: wait ``seconds``, then answer normally;
    - ``trickle``: answer normally, the status line and headers (the real Content-Length)
      at once, the body one byte every ``seconds``: a client whose read timeout restarts
      with every byte waits for ever. It stops when the client hangs up
      (:attr:`RecordedRequest.hung_up`) or the fake stops;
    - ``gzip_bomb``: answer 200 with ``Content-Encoding: gzip``, a body that inflates to
      ``inflates_to`` bytes (the start of a page, then spaces), about a thousandth of that
      on the wire, written as it goes (see :func:`gzip_bomb`);
    - ``call``: run ``action``, then answer normally;
    - ``mangle``: answer with ``transform`` applied to a successful real answer.
    """

    kind: FaultKind
    times: int = 1
    match: str = ""
    skip: int = 0
    status: int = 500
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    body: bytes | None = None
    seconds: float = 0.0
    action: t.Callable[[], None] | None = None
    transform: Transform | None = None
    inflates_to: int = 0


def gzip_bomb(inflates_to: int) -> tuple[int, t.Iterator[bytes]]:
    """The length on the wire and the chunks of a gzip body inflating to ``inflates_to``.

    The start of a page, then members of spaces: a 2 GB bomb is about 2 MB, and the fake
    never holds more than one member of it.
    """
    head = gzip.compress(b'{"status": true, "data": {"has_more": false, "feedbacks": [')
    members = max(1, -(-inflates_to // BOMB_MEMBER_BYTES))
    member = _spaces_member()
    return len(head) + members * len(member), itertools.chain([head], [member] * members)


@functools.cache
def _spaces_member() -> bytes:
    return gzip.compress(b" " * BOMB_MEMBER_BYTES, compresslevel=9)
