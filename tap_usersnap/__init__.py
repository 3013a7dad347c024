"""tap-usersnap: a Singer tap for Usersnap feedback."""

__version__ = "0.1.0"
