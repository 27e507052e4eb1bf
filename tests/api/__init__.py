"""The field-device REST API."""
