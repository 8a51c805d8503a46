"""The forecast task: surrogates that step a chaotic system's state forward, scored in
Lyapunov times against persistence and climatology.

Submodules: :mod:`.models` (forecasters and their NetCDF storage), :mod:`.metrics` (VPT, RMSE
against lead time, long-horizon statistics), :mod:`.pipeline` (file-level stage functions used
by the Snakemake scripts) and :mod:`.figures`.  Torch is imported only when a torch model is
fitted or loaded.
"""
from __future__ import annotations

from .models import BASELINES, Forecaster, forecaster_from_dataset, forecaster_to_dataset, kinds, make_forecaster

__all__ = ["BASELINES", "Forecaster", "forecaster_from_dataset", "forecaster_to_dataset", "kinds",
           "make_forecaster"]
