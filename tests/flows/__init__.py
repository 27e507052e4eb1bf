"""The Prefect flows and deployments."""
