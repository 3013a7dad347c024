"""The performance benchmark: tap-usersnap against a plain ``requests`` loop.

``make bench`` (``python -m benchmarks.bench``) starts the fake Usersnap API in its own
process with pre-rendered pages and measures every client as a separate subprocess.
"""
