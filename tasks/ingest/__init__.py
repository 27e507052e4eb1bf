"""Ingest: the data contract, readers, conform, rules and the GX suite, identity, features, zones, landing, reports.

Turns landed bytes into validated, quarantined and processed zone objects; builds on platform and protection.
"""
