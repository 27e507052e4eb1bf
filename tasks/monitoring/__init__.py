"""Monitoring: drift and its statistics, quality thresholds, alert mail, health and readiness, schedules.

Sits beside `tasks.workflows` (neither imports the other), below the Runtime.
"""
