"""tap-usersnap: a Singer tap for Usersnap feedback."""
