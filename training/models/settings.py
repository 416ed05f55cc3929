"""The base of a model's own settings: a frozen pydantic section of ``TrainConfig.model``
(``model.<key>.*``) that one model family declares next to its module and names in its
:class:`~training.models.ModelSpec` (``ModelSpec.settings``). Torch-free, like the registry,
so that :mod:`training.config` can hold every model's settings without importing a model."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class ModelSettings(BaseModel):
    """Settings read by one model family only. A subclass sets :attr:`key`, the attribute of
    :class:`training.config.ModelConfig` that holds it (its settings' paths are
    ``model.<key>.<field>``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    #: The attribute of ``TrainConfig.model`` holding these settings.
    key: ClassVar[str]

    @classmethod
    def path(cls) -> str:
        """The dotted path of these settings in :class:`~training.config.TrainConfig`."""
        return f"model.{cls.key}"
