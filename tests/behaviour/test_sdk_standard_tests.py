"""The Meltano Singer SDK's standard tap tests, run against the fake API."""

from __future__ import annotations

import atexit

from singer_sdk.testing import get_tap_test_class

from fake_usersnap import FakeUsersnap
from tap_usersnap.tap import TapUsersnap

# The SDK builds its test class at import time, so the fake must be up by then.
FAKE = FakeUsersnap().start()
FAKE.seed(projects=3, per_project=25)
atexit.register(FAKE.stop)

TestTapUsersnap = get_tap_test_class(
    tap_class=TapUsersnap,
    config=FAKE.config(page_size=10, start_date="2024-01-01T00:00:00Z"),
)
