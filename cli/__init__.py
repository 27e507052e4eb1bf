"""The `rtv` command line."""
