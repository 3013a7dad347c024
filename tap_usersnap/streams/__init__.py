"""The SDK's streams: thin adapters between the SDK and the run, the engine and the API."""
