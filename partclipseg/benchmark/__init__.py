"""Measurements behind ``partclipseg bench`` and ``partclipseg bench-backends`` (README and docs/deployment.md)."""
