"""The baselines every forecast evaluation reports: persistence and climatology."""
from __future__ import annotations

import numpy as np

from ..surrogates.registry import register
from .base import Forecaster

#: the baselines every forecast evaluation reports
BASELINES = ("persistence", "climatology")


@register("forecaster", "persistence")
class Persistence(Forecaster):
    """Tomorrow equals today: the last state, forever."""

    kind = "persistence"

    def __init__(self) -> None:
        pass

    def _step_z(self, zhist):
        return zhist[:, -1].copy()


@register("forecaster", "climatology")
class Climatology(Forecaster):
    """The training mean state (the best constant forecast in the mean-square sense)."""

    kind = "climatology"

    def __init__(self) -> None:
        pass

    def _step_z(self, zhist):
        return np.zeros((zhist.shape[0], zhist.shape[2]))


__all__ = ["BASELINES", "Persistence", "Climatology"]
