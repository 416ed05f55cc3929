"""The training package's errors: one root class, specific subclasses."""

from __future__ import annotations


class TrainingError(Exception):
    """Root of every error raised by :mod:`training`."""


class ExportFormatError(TrainingError):
    """An export directory does not follow ``docs/export-format.md``."""


class ConfigError(TrainingError):
    """A :class:`training.config.TrainConfig` value is invalid or names something unknown."""


class ModelDirError(TrainingError):
    """A model directory is missing a file or holds inconsistent arrays."""
