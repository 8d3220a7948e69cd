"""Bulk actions (issue 7 fills this in)."""

from __future__ import annotations


def run_pending_bulk_actions() -> int:
    """Advance pending bulk actions by one chunk each; returns how many runs were processed."""
    return 0
