"""Encryption, pseudonyms, keys."""
