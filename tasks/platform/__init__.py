"""Platform: typed Settings, object stores (local, S3, Azure), the catalog database plumbing and retry policy.

Holds no survey logic; every product package builds on it.
"""
