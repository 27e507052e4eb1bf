"""Errors every layer shares: bad input is an outcome to report, never a failure to retry."""

from __future__ import annotations


class BadInput(Exception):
    """The input itself is wrong (unreadable, oversized, not a survey table): retrying cannot help."""
