"""Helpers the tests share: API server, SMTP server, a switchable TCP proxy."""
