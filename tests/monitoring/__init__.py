"""Drift, alerts, health."""
