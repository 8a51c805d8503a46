"""The surrogate interface (scikit-learn conventions).

* ``__init__`` stores hyperparameters only;
* ``fit(X, Y)`` validates, learns attributes ending in ``_`` and returns ``self``;
* ``predict(X, return_std=False)`` is pure; models without uncertainty raise if asked for it;
* ``get_state()`` returns plain arrays and JSON-able hyperparameters; ``set_state`` restores them.
  :func:`surroflow.surrogates.io.save_surrogate` stores that state as NetCDF (torch weights as
  a ``state_dict`` of arrays), so loading a model never unpickles anything.

``X`` is ``(n, n_inputs)`` (parameters and, for transient problems, time); ``Y`` is
``(n, n_outputs)`` (reduced coordinates).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from .. import SurroflowError


class Surrogate(ABC):
    kind: str = ""
    supports_std: bool = False

    def get_params(self) -> dict[str, Any]:
        import inspect
        sig = inspect.signature(type(self).__init__)
        return {k: getattr(self, k) for k in sig.parameters if k != "self"}

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
        if Y.ndim != 2 or Y.shape[0] != X.shape[0]:
            raise SurroflowError(f"surrogate outputs must be (n, n_outputs) with n={X.shape[0]}, got {Y.shape}")
        if not np.all(np.isfinite(Y)):
            raise SurroflowError("surrogate outputs contain NaN or Inf")
        return X, Y

    @abstractmethod
    def fit(self, X: np.ndarray, Y: np.ndarray) -> "Surrogate": ...

    @abstractmethod
    def predict(self, X: np.ndarray, return_std: bool = False) -> Any: ...

    @abstractmethod
    def get_state(self) -> dict[str, np.ndarray]:
        """Learned state as named numpy arrays (no objects)."""

    @abstractmethod
    def set_state(self, state: dict[str, np.ndarray]) -> "Surrogate":
        """Restore learned state produced by :meth:`get_state`."""
