"""The test suite; it mirrors the packages (tests/ingest/ for tasks/ingest/, ...)."""
