"""The incremental engine of the feedback stream: state, requests, reads, edits, deletes.

It is given a :class:`~tap_usersnap.feedback.requests.FeedbackApi` to read through, a
:class:`~tap_usersnap.feedback.reconciliation.StreamOutput` to write through, the stream's
state and the settings; it knows nothing of the SDK's streams.
"""
