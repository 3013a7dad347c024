"""Run the tap as ``python -m tap_usersnap``."""

from tap_usersnap.tap import TapUsersnap

TapUsersnap.cli()
