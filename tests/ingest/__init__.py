"""Contract, readers, conform, validation, generator."""
