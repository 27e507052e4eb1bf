"""Workflows that combine the products: quarantine review, scoring, backfill, key rotation, archive.

Sits beside `tasks.monitoring` (neither imports the other), below the Runtime.
"""
