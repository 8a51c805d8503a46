"""Radial-basis-function interpolation surrogate (SciPy's ``RBFInterpolator``)."""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.interpolate import RBFInterpolator
from scipy.linalg import LinAlgError

from .. import SurroflowError
from .base import Surrogate, input_scaler, require_state
from .registry import register

#: Cross-kernel entries per prediction block (64 Ki float64 = 512 KiB): SciPy builds the
#: ``(rows, n_train)`` kernel matrix of each block, which stays in cache at this size, so a large
#: batch costs no more per row than a small one (with 4,096-row blocks a 3,000-row interpolator
#: was slower per query in batch than in single calls).
_BLOCK_ENTRIES = 1 << 16


@register("surrogate", "rbf")
class RBFSurrogate(Surrogate):
    """Radial-basis-function interpolation (:class:`scipy.interpolate.RBFInterpolator`).

    Inputs are scaled (``input_scaling``: ``"minmax"`` to [0, 1], ``"standard"`` or ``"none"``)
    before the interpolator sees them, so that parameters and time with different units weigh
    alike.  ``smoothing=0`` interpolates the training data exactly; a small positive value
    regularises noisy or (near-)duplicated rows.  ``neighbors=None`` solves one dense system
    (``O(n^3)``, fine up to a few thousand rows); an integer uses only that many nearest
    training points per prediction (local RBF, needed for large sets).  ``epsilon`` is the shape
    parameter (required by the scale-dependent kernels ``gaussian``, ``multiquadric``, ...);
    ``degree`` the degree of the added polynomial (``None``: SciPy's default for the kernel).

    The learned state is the scaled training inputs and the outputs; :meth:`set_state` refits
    the interpolator from them, which is deterministic.
    """

    kind = "rbf"

    #: value spec of each hyperparameter, checked before any job (surrogates.registry.check_value)
    hyperparameter_specs = {"kernel": ["thin_plate_spline", "cubic", "quintic", "linear", "gaussian", "multiquadric",
                                       "inverse_multiquadric", "inverse_quadratic"],
                            "smoothing": "float>=0", "neighbors": "int>=1|None", "epsilon": "float>0|None",
                            "degree": "int>=-1|None", "input_scaling": ["minmax", "standard", "none"]}

    def __init__(self, kernel: str = "thin_plate_spline", smoothing: float = 0.0,
                 neighbors: int | None = None, epsilon: float | None = None, degree: int | None = None,
                 input_scaling: str = "minmax") -> None:
        self.kernel = kernel
        self.smoothing = smoothing
        self.neighbors = neighbors
        self.epsilon = epsilon
        self.degree = degree
        self.input_scaling = input_scaling

    def _build(self, Xs: np.ndarray, Y: np.ndarray) -> Any:
        neighbors = None if self.neighbors is None else min(int(self.neighbors), Xs.shape[0])
        try:
            return RBFInterpolator(Xs, Y, neighbors=neighbors, smoothing=float(self.smoothing),
                                   kernel=self.kernel, epsilon=self.epsilon, degree=self.degree)
        except (ValueError, LinAlgError) as exc:
            hint = ("; duplicated rows or too few points for the polynomial make the system singular: "
                    "set 'smoothing' > 0 or remove duplicates" if "singular" in str(exc).lower() else "")
            raise SurroflowError(f"rbf surrogate ({self.kernel!r}): {str(exc).rstrip('.')}{hint}") from None

    def fit(self, X: np.ndarray, Y: np.ndarray) -> "RBFSurrogate":
        X, Y = self._check_xy(X, Y)
        shift, scale = input_scaler(X, self.input_scaling)
        Xs = (X - shift) / scale
        self.interpolator_ = self._build(Xs, Y)
        self.x_shift_, self.x_scale_ = shift, scale
        self.X_train_, self.Y_train_ = Xs, Y
        self.n_inputs_, self.n_outputs_ = X.shape[1], Y.shape[1]
        return self

    def predict(self, X: np.ndarray, return_std: bool = False) -> Any:
        if return_std:
            self._no_std()
        X = self._check_predict_input(X, "interpolator_")
        Xs = (X - self.x_shift_) / self.x_scale_
        out = np.empty((X.shape[0], self.n_outputs_))
        rows = max(64, _BLOCK_ENTRIES // self.X_train_.shape[0])
        for start in range(0, X.shape[0], rows):
            block = slice(start, start + rows)
            out[block] = self.interpolator_(Xs[block])
        return out

    def get_state(self) -> dict[str, np.ndarray]:
        if not hasattr(self, "interpolator_"):
            raise SurroflowError("rbf surrogate is not fitted: nothing to save")
        return {"x_shift": self.x_shift_, "x_scale": self.x_scale_,
                "X_train": self.X_train_, "Y_train": self.Y_train_}

    def set_state(self, state: dict[str, np.ndarray]) -> "RBFSurrogate":
        require_state(state, ("x_shift", "x_scale", "X_train", "Y_train"), self.kind)
        Xs = np.asarray(state["X_train"], dtype=float)
        Y = np.asarray(state["Y_train"], dtype=float)
        self.interpolator_ = self._build(Xs, Y)
        self.x_shift_ = np.asarray(state["x_shift"], dtype=float)
        self.x_scale_ = np.asarray(state["x_scale"], dtype=float)
        self.X_train_, self.Y_train_ = Xs, Y
        self.n_inputs_, self.n_outputs_ = Xs.shape[1], Y.shape[1]
        return self


__all__ = ["RBFSurrogate"]
