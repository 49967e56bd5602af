"""Data sources: one loaded data set prepared for one task (splits, batches, device-side preparation)."""

from divekit.data.sources.base import DataSource, carve_validation

__all__ = ["DataSource", "carve_validation"]
