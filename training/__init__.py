"""DP-GCN training: datasets from exported graph files, models, DDPG policy, evaluation, inference.

This package is pure numpy / PyTorch. It never imports ``neo4j``, ``fastapi`` or ``celery`` and
never reads environment variables; every experiment setting is a
:class:`training.config.TrainConfig`. Importing the package itself is cheap: torch is only
imported by the submodules that need it, so :mod:`training.inference` scores with numpy alone.
See ``docs/model.md``.
"""

from __future__ import annotations

from training.errors import TrainingError

__all__ = ["TrainingError"]
