"""Data protection: field encryption and keyed pseudonyms, key stores, users and roles, the audit log.

Builds only on `tasks.platform`.
"""
