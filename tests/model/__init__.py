"""The vulnerability model."""
