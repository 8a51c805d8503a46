"""Polynomial ridge regression surrogate: a cheap baseline."""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.preprocessing import PolynomialFeatures

from .. import SurroflowError
from .base import Surrogate, minmax, require_state
from .registry import register


@register("surrogate", "linear")
class PolynomialRidgeSurrogate(Surrogate):
    """Polynomial features of total degree ``degree`` with ridge regression: a cheap baseline.

    Inputs are mapped to [-1, 1] (min/max of the training data) before the monomials are
    formed, so that ``alpha`` (the ridge penalty) acts on comparably scaled features.  The
    learned state is the exponents of the monomials (``powers_``, ``(n_features, n_inputs)``),
    the coefficients (``coef_``, ``(n_outputs, n_features)``), the intercept and the input
    scaling; prediction is evaluated directly from those arrays.
    """

    kind = "linear"

    #: value spec of each hyperparameter, checked before any job (surrogates.registry.check_value)
    hyperparameter_specs = {"degree": "int>=0", "alpha": "float>=0"}

    def __init__(self, degree: int = 3, alpha: float = 1e-6) -> None:
        self.degree = degree
        self.alpha = alpha

    @staticmethod
    def _features(Xs: np.ndarray, powers: np.ndarray) -> np.ndarray:
        F = np.ones((Xs.shape[0], powers.shape[0]))
        for j in range(powers.shape[1]):
            for p in np.unique(powers[:, j]):
                if p:
                    F[:, powers[:, j] == p] *= (Xs[:, j] ** int(p))[:, None]
        return F

    def fit(self, X: np.ndarray, Y: np.ndarray) -> "PolynomialRidgeSurrogate":
        X, Y = self._check_xy(X, Y)
        if not isinstance(self.degree, (int, np.integer)) or self.degree < 1:
            raise SurroflowError(f"linear surrogate degree must be an integer >= 1, got {self.degree!r}")
        if not float(self.alpha) >= 0:
            raise SurroflowError(f"linear surrogate alpha must be >= 0, got {self.alpha!r}")
        lo, span = minmax(X)
        shift, scale = lo + span / 2, span / 2
        Xs = (X - shift) / scale
        powers = PolynomialFeatures(int(self.degree), include_bias=False).fit(Xs).powers_.astype(np.int64)
        ridge = Ridge(alpha=float(self.alpha), fit_intercept=True).fit(self._features(Xs, powers), Y)
        self.x_shift_, self.x_scale_ = shift, scale
        self.powers_ = powers
        self.coef_ = np.atleast_2d(ridge.coef_).astype(float)
        self.intercept_ = np.atleast_1d(ridge.intercept_).astype(float)
        self.n_inputs_, self.n_outputs_ = X.shape[1], Y.shape[1]
        return self

    def predict(self, X: np.ndarray, return_std: bool = False) -> Any:
        if return_std:
            self._no_std()
        X = self._check_predict_input(X, "coef_")
        Xs = (X - self.x_shift_) / self.x_scale_
        return self._features(Xs, self.powers_) @ self.coef_.T + self.intercept_

    def get_state(self) -> dict[str, np.ndarray]:
        if not hasattr(self, "coef_"):
            raise SurroflowError("linear surrogate is not fitted: nothing to save")
        return {"x_shift": self.x_shift_, "x_scale": self.x_scale_, "powers": self.powers_,
                "coef": self.coef_, "intercept": self.intercept_}

    def set_state(self, state: dict[str, np.ndarray]) -> "PolynomialRidgeSurrogate":
        require_state(state, ("x_shift", "x_scale", "powers", "coef", "intercept"), self.kind)
        self.x_shift_ = np.asarray(state["x_shift"], dtype=float)
        self.x_scale_ = np.asarray(state["x_scale"], dtype=float)
        self.powers_ = np.asarray(state["powers"], dtype=np.int64)
        self.coef_ = np.asarray(state["coef"], dtype=float)
        self.intercept_ = np.asarray(state["intercept"], dtype=float)
        if self.coef_.shape[1] != self.powers_.shape[0]:
            raise SurroflowError("linear surrogate state: coef and powers disagree")
        self.n_inputs_, self.n_outputs_ = self.powers_.shape[1], self.coef_.shape[0]
        return self


__all__ = ["PolynomialRidgeSurrogate"]
