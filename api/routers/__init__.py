"""API routers: surveys, files, status, health and auth."""
