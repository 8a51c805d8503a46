"""The estimator contract shared by surrogates and forecasters (scikit-learn conventions).

* ``__init__`` stores hyperparameters only, unchanged (so :func:`sklearn.base.clone`,
  ``get_params``/``set_params`` and :class:`~sklearn.model_selection.GridSearchCV` work);
* ``fit`` validates, learns attributes ending in ``_`` and returns ``self``;
* ``get_state()`` returns the learned state as plain numpy arrays (or nested estimators), and
  ``set_state(state)`` restores it: :mod:`surroflow.surrogates.state` stores that state as
  NetCDF, so loading a model never unpickles anything.

Every estimator class has a ``family`` (``"surrogate"`` or ``"forecaster"``) and a ``kind``
(its registry name, :mod:`surroflow.surrogates.registry`).

A :class:`Surrogate` maps ``X`` ``(n, n_inputs)`` (parameters and, for transient problems,
time) to ``Y`` ``(n, n_outputs)`` (reduced coordinates) with ``fit(X, Y)`` and
``predict(X, return_std=False)``; models without uncertainty raise if asked for it.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

from .. import SurroflowError


class Estimator(BaseEstimator):
    """Base of every surrogate and forecaster: hyperparameters, state, family and kind."""

    family: ClassVar[str] = ""
    kind: ClassVar[str] = ""

    def get_state(self) -> dict[str, Any]:
        """Learned state as named numpy arrays (no objects but nested estimators)."""
        raise NotImplementedError

    def set_state(self, state: dict[str, Any]) -> "Estimator":
        """Restore the learned state produced by :meth:`get_state`; returns ``self``."""
        raise NotImplementedError


class Surrogate(RegressorMixin, Estimator):
    """A regressor ``X -> Y`` (``score`` is R² from :class:`sklearn.base.RegressorMixin`).

    The mixin comes first in the bases, as scikit-learn requires for its estimator tags.
    """

    family: ClassVar[str] = "surrogate"
    supports_std: ClassVar[bool] = False
    #: whether ``formulation: auto`` of a :class:`~surroflow.surrogates.reduced.ReducedModel`
    #: may pick the trajectory formulation (one row per sample) for this kind: True for
    #: regressors that solve for all outputs at once (kernel, interpolation, least squares);
    #: False where the training budget counts passes over the rows (epochs), so 50x fewer rows
    #: mean 50x fewer optimiser steps and a worse fit at the default settings
    auto_trajectory: ClassVar[bool] = True

    @staticmethod
    def _check_xy(X: Any, Y: Any | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        X = np.asarray(X, dtype=float)
        if X.ndim != 2:
            raise SurroflowError(f"surrogate inputs must be 2-D (n, n_inputs), got shape {X.shape}")
        if not np.all(np.isfinite(X)):
            raise SurroflowError("surrogate inputs contain NaN or Inf")
        if Y is None:
            return X, None
        Y = np.asarray(Y, dtype=float)
        if Y.ndim == 1:
            Y = Y[:, None]
        if Y.ndim != 2 or Y.shape[0] != X.shape[0]:
            raise SurroflowError(f"surrogate outputs must be (n, n_outputs) with n={X.shape[0]}, got {Y.shape}")
        if not np.all(np.isfinite(Y)):
            raise SurroflowError("surrogate outputs contain NaN or Inf")
        return X, Y

    def fit(self, X: Any, Y: Any) -> "Surrogate":
        raise NotImplementedError

    def predict(self, X: Any, return_std: bool = False) -> Any:
        raise NotImplementedError

    def _no_std(self) -> None:
        raise SurroflowError(f"surrogate kind {self.kind!r} gives no uncertainty: call predict(X) "
                             "without return_std (use kind 'gaussian_process' for a predictive std)")

    def _check_predict_input(self, X: Any, fitted_attr: str) -> np.ndarray:
        """A fitted model and 2-D finite ``X`` with the trained number of columns."""
        if not hasattr(self, fitted_attr):
            raise SurroflowError(f"this {type(self).__name__} is not fitted: call fit() or set_state() first")
        X, _ = self._check_xy(X)
        n_inputs = getattr(self, "n_inputs_", None)
        if n_inputs is not None and X.shape[1] != n_inputs:
            raise SurroflowError(f"{type(self).__name__} was trained on {n_inputs} inputs, got X with "
                                 f"{X.shape[1]} columns")
        return X


# --------------------------------------------------------------------------- scalers
def minmax(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shift and scale mapping the columns of ``X`` onto [0, 1] (constant columns: scale 1)."""
    lo = X.min(axis=0)
    span = X.max(axis=0) - lo
    span = np.where(span > 0, span, 1.0)
    return lo, span


def standard(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the columns of ``Y`` (constant columns: scale 1)."""
    mean = Y.mean(axis=0)
    std = Y.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return mean, std


def input_scaler(X: np.ndarray, scaling: str) -> tuple[np.ndarray, np.ndarray]:
    if scaling == "minmax":
        return minmax(X)
    if scaling == "standard":
        return standard(X)
    if scaling == "none":
        return np.zeros(X.shape[1]), np.ones(X.shape[1])
    raise SurroflowError(f"input_scaling must be 'minmax', 'standard' or 'none', got {scaling!r}")


def require_state(state: dict[str, Any], names: tuple[str, ...], kind: str) -> None:
    """A clear error when a stored state lacks some of ``names``."""
    missing = [n for n in names if n not in state]
    if missing:
        raise SurroflowError(f"{kind} state lacks {missing}; present: {sorted(state)}")


__all__ = ["Estimator", "Surrogate", "require_state", "minmax", "standard", "input_scaler"]
