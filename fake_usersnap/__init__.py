"""A local fake of the Usersnap REST API v0.1.

A development package: the tests, the demo and the benchmark use it; the wheel ships only
``tap_usersnap``. The fake is faithful to ``shared/usersnap-api/openapi.json``: it listens on
127.0.0.1, checks the JWT the way Usersnap documents it (HS256 only, header ``kid`` = JWT ID,
signed with the JWT secret, not expired), answers with the spec's envelopes, and implements
the filter endpoint's semantics (created_at/state/email filters, created_at/updated_at
ordering, keyset cursor pagination with ``limit``/``after``, ``has_more`` and ``next``), and
refuses what the spec does not allow: any query parameter on ``GET /projects`` (which has
no cursor), parameters a feedback list does not take, filter timestamps in any form but
whole-second UTC. Switches cover what the spec leaves open (see :class:`FakeUsersnap`).

- :mod:`~fake_usersnap.server`: :class:`FakeUsersnap`, its data, JWT check and endpoints;
- :mod:`~fake_usersnap.endpoints`: what each route answers;
- :mod:`~fake_usersnap.handler`: the HTTP layer;
- :mod:`~fake_usersnap.store`: what those parts need of the fake (Protocols the server
  satisfies, so they never import it);
- :mod:`~fake_usersnap.protocol` and :mod:`~fake_usersnap.query`: envelopes, errors,
  pagination, filters;
- :mod:`~fake_usersnap.contract`: every request checked against ``openapi.json`` itself;
- :mod:`~fake_usersnap.faults`: scripted misbehaviour (:meth:`FakeUsersnap.inject`), and
  :mod:`~fake_usersnap.malformed`: ready-made malformed answers for it;
- :mod:`~fake_usersnap.client`: a bare HTTP client, to test the fake itself;
- :mod:`~fake_usersnap.data`: realistic sample data;
- :mod:`~fake_usersnap.prerendered`: the benchmark's pre-rendered pages;
- ``python -m fake_usersnap``: serve sample (or benchmark) data by hand.

It stands alone: the tools that run the tap against it are in :mod:`harness`.
"""

from fake_usersnap.contract import Contract, ContractLog
from fake_usersnap.data import SampleData, text_input
from fake_usersnap.faults import Fault, RecordedRequest
from fake_usersnap.prerendered import PrerenderedFeedback
from fake_usersnap.protocol import ApiError, ProjectsPaging, filter_time, parse_iso, utc_iso
from fake_usersnap.server import FakeUsersnap

__all__ = [
    "ApiError",
    "Contract",
    "ContractLog",
    "FakeUsersnap",
    "Fault",
    "PrerenderedFeedback",
    "ProjectsPaging",
    "RecordedRequest",
    "SampleData",
    "filter_time",
    "parse_iso",
    "text_input",
    "utc_iso",
]
