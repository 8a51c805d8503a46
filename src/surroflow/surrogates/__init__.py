"""Surrogate regressors behind one scikit-learn-style fit/predict API.

``make_surrogate(kind, **hyperparameters)`` builds one from the config; every surrogate can be
saved to and loaded from a NetCDF dataset (:meth:`to_dataset` / :func:`load_surrogate`) without
pickles.  Built-in kinds are registered lazily so torch is imported only when a torch model is
asked for.
"""
from __future__ import annotations

import importlib
from typing import Any

from .base import Surrogate

_BUILTIN: dict[str, str] = {
    "gaussian_process": "surroflow.surrogates.sklearn_models:GaussianProcessSurrogate",
    "rbf": "surroflow.surrogates.sklearn_models:RBFSurrogate",
    "linear": "surroflow.surrogates.sklearn_models:PolynomialRidgeSurrogate",
    "mlp": "surroflow.surrogates.torch_models:MLPSurrogate",
}


def surrogate_class(kind: str) -> type[Surrogate]:
    if kind not in _BUILTIN:
        raise KeyError(f"unknown surrogate kind {kind!r}; allowed: {sorted(_BUILTIN)}")
    module, _, attr = _BUILTIN[kind].partition(":")
    return getattr(importlib.import_module(module), attr)


def make_surrogate(kind: str, **hyperparameters: Any) -> Surrogate:
    return surrogate_class(kind)(**hyperparameters)


def kinds() -> list[str]:
    return sorted(_BUILTIN)


__all__ = ["Surrogate", "make_surrogate", "surrogate_class", "kinds"]
