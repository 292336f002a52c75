"""Fixtures for the daemon's tests (the portal's live in portal_support.py)."""

from tests.daemon.portal_support import portal  # noqa: F401
