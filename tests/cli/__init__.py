"""The rtv command line."""
