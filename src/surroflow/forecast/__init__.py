"""The forecast task: forecasters that step a chaotic system's state forward, on the estimator
core of :mod:`surroflow.surrogates` (one registry, family ``"forecaster"``; one NetCDF codec,
:mod:`surroflow.surrogates.state`).

Modules: :mod:`.base` (the contract and shared numerics), :mod:`.baselines`, :mod:`.linear`,
:mod:`.reservoir`, :mod:`.sindy` (sparse identification, PySINDy), :mod:`.neural` (torch; imported only when a torch class is asked for) and
:mod:`.reduced` (a forecaster in a POD basis).
"""
from __future__ import annotations

from typing import Any

from ..surrogates.registry import estimator_class, make_estimator
from ..surrogates.registry import kinds as _kinds
from .base import BLOWUP, Forecaster, polynomial_features, ridge_solve
from .baselines import BASELINES, Climatology, Persistence
from .linear import DMD, OpInf
from .reduced import Reduced
from .reservoir import NGRC, RandomFeatures
from .sindy import SINDy

_LAZY = {"MLPStepper": "neural", "NeuralODE": "neural"}


def make_forecaster(kind: str, **params: Any) -> Forecaster:
    """A forecaster of ``kind`` with hyperparameters ``params`` (unknown ones named); the
    class defaults apply to what ``params`` leaves unset."""
    return make_estimator(kind, params, "forecaster", seed=None)


def forecaster_class(kind: str) -> type[Forecaster]:
    return estimator_class(kind, "forecaster")


def kinds() -> list[str]:
    """The forecaster kinds."""
    return _kinds("forecaster")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BASELINES", "BLOWUP", "Forecaster", "make_forecaster", "forecaster_class", "kinds", "Persistence",
           "Climatology", "DMD", "OpInf", "NGRC", "RandomFeatures", "SINDy", "MLPStepper", "NeuralODE", "Reduced",
           "polynomial_features", "ridge_solve"]
