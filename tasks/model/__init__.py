"""The vulnerability model: estimator, honest evaluation, the MLflow registry, predictions, retrain triggers.

Reads ingest's features and zones; knows nothing of monitoring or the workflows above it.
"""
