"""The transport layer: sessions, the JWT, retries, answers and pages of the Usersnap API.

It knows nothing of feedback, state or the SDK's streams; every layer above sends through
:class:`~tap_usersnap.http.client.ApiClient`.
"""
