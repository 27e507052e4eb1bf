"""Review and key rotation."""
