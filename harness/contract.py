"""Every request a tap sends during a test checked against the API's spec (``openapi.json``).

:func:`every_request_checked` points every :class:`~fake_usersnap.FakeUsersnap` at one
:class:`~fake_usersnap.ContractLog` for as long as it lasts, and fails the test at its end
if a tap sent a request the spec does not allow, listing each. ``tests/conftest.py`` wraps
every test in it (the autouse ``api_contract`` fixture).
"""

from __future__ import annotations

import contextlib
import typing as t

import pytest

from fake_usersnap import ContractLog, FakeUsersnap


@contextlib.contextmanager
def every_request_checked(*, on_purpose: bool = False) -> t.Iterator[ContractLog]:
    """Check every request any fake serves meanwhile; fail unless it is all ``on_purpose``."""
    log = ContractLog()
    previous, FakeUsersnap.contract = FakeUsersnap.contract, log
    try:
        yield log
    finally:
        FakeUsersnap.contract = previous
    if log.violations and not on_purpose:
        shown = "\n  ".join(dict.fromkeys(log.violations))
        pytest.fail(f"requests the API spec does not allow:\n  {shown}", pytrace=False)
