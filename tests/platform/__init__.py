"""Settings, stores, catalog, retries, deployment names."""
