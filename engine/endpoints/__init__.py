"""Endpoints: the pace, retries, transport and wire formats of every model and judge API."""
