"""Sparse identification of nonlinear dynamics (SINDy), fitted by PySINDy.

The model is a continuous-time vector field ``dz/dt = Θ(z) Ξᵀ``: ``Θ`` a library of candidate
terms (monomials up to ``degree``, Fourier terms ``sin(k z_i)``, ``cos(k z_i)``, or both) and
``Ξ`` sparse coefficients found by PySINDy's sequentially thresholded least squares (STLSQ,
Brunton, Proctor & Kutz 2016).  Time derivatives come from PySINDy's differentiation methods
(finite differences of a chosen order, Savitzky–Golay-smoothed differences for noisy data) or
from the weak (integral) formulation (``WeakPDELibrary``: no pointwise derivative at all,
robust to noise; Messenger & Bortz 2021).  Forecasts integrate the identified field with
classical RK4 (``substeps`` per sample interval).

Stored without pickles: the coefficient matrix and the names of the library's terms
(``feature_names_``).  The terms are evaluated from their names (``"1"``, ``"x0 x2"``,
``"x1^2"``, ``"sin(2 x0)"``), so a loaded model needs no PySINDy object; at fit time this
evaluation is checked against PySINDy's own library on the training data.

``scaling`` defaults to ``"none"``: the equations are in the data's own variables and units
(readable, comparable with the true equations); ``"component"`` or ``"global"`` standardise
first (then the equations are in standardised variables).
"""
from __future__ import annotations

import logging
import re
import warnings
from typing import Mapping, Sequence

import numpy as np

from .. import SurroflowError
from ..surrogates.registry import register
from .base import Forecaster, rk4_flow

logger = logging.getLogger(__name__)

LIBRARIES = ("polynomial", "fourier", "polynomial+fourier")
DIFFERENTIATION = ("finite_difference", "smoothed_finite_difference", "weak")

_TRIG = re.compile(r"(sin|cos)\((\d+) x(\d+)\)$")
_POWER = re.compile(r"x(\d+)(?:\^(\d+))?$")


# =============================================================================== terms
class TermSet:
    """Library terms compiled from their PySINDy names, evaluated on ``(n, d)`` states.

    Polynomial terms become a power matrix ``P`` (``Θ_j = Π_i z_i^{P_ji}``); Fourier terms a
    (function, frequency, component) triple.  Names that are neither raise a SurroflowError.
    """

    def __init__(self, names: Sequence[str], n_state: int) -> None:
        self.names = [str(n) for n in names]
        self.n_state = int(n_state)
        poly_cols, powers, trig_cols, trig = [], [], [], []
        for j, name in enumerate(self.names):
            m = _TRIG.match(name)
            if m:
                trig_cols.append(j)
                trig.append((m.group(1), int(m.group(2)), self._component(int(m.group(3)), name)))
                continue
            p = np.zeros(self.n_state, dtype=int)
            if name != "1":
                for factor in name.split(" "):
                    f = _POWER.match(factor)
                    if f is None:
                        raise SurroflowError(f"sindy: cannot read the library term {name!r} (allowed: '1', "
                                             "products of 'x<i>' or 'x<i>^<k>', 'sin(<k> x<i>)', 'cos(<k> x<i>)')")
                    p[self._component(int(f.group(1)), name)] += int(f.group(2) or 1)
            poly_cols.append(j)
            powers.append(p)
        self.poly_cols = np.array(poly_cols, dtype=int)
        self.powers = np.array(powers, dtype=int).reshape(-1, self.n_state)
        self.trig_cols = np.array(trig_cols, dtype=int)
        self.trig = trig

    def _component(self, i: int, name: str) -> int:
        if not 0 <= i < self.n_state:
            raise SurroflowError(f"sindy: library term {name!r} names component {i}, the state has {self.n_state}")
        return i

    def __call__(self, z: np.ndarray) -> np.ndarray:
        out = np.empty((z.shape[0], len(self.names)))
        if len(self.poly_cols):
            # one power table per component up to its largest exponent, then products of lookups
            cols = np.ones((z.shape[0], len(self.poly_cols)))
            for i in range(self.n_state):
                pk = self.powers[:, i]
                top = int(pk.max())
                if top == 0:
                    continue
                table = np.cumprod(np.repeat(z[:, i:i + 1], top, axis=1), axis=1)   # z^1..z^top
                table = np.column_stack([np.ones(z.shape[0]), table])
                cols *= table[:, pk]
            out[:, self.poly_cols] = cols
        for col, (fn, k, i) in zip(self.trig_cols, self.trig):
            out[:, col] = (np.sin if fn == "sin" else np.cos)(k * z[:, i])
        return out

    def renamed(self, variables: Sequence[str]) -> list[str]:
        """The term names with ``x<i>`` replaced by ``variables[i]``."""
        if len(variables) != self.n_state:
            raise SurroflowError(f"sindy: {len(variables)} variable names for a {self.n_state}-component state")
        return [re.sub(r"x(\d+)", lambda m: str(variables[int(m.group(1))]), n) for n in self.names]


# =============================================================================== model
@register("forecaster", "sindy")
class SINDy(Forecaster):
    """Sparse identification of nonlinear dynamics (PySINDy's STLSQ on a term library).

    ``library``: ``polynomial`` (``degree``), ``fourier`` (``n_frequencies``) or both;
    ``threshold``: STLSQ's sparsity threshold on the coefficients (in the units of the fitted
    variables); ``alpha``: its ridge penalty; ``differentiation``: ``finite_difference``
    (accuracy order ``fd_order``), ``smoothed_finite_difference`` (Savitzky–Golay,
    ``smoother_window`` samples, cubic, then differences of order ``fd_order``) or ``weak`` (``weak_test_functions`` subdomains);
    ``substeps``: RK4 steps per sample interval of the forecast.
    """

    kind = "sindy"
    identifies_equations = True
    #: value spec of each hyperparameter, checked before any job (surrogates.registry.check_value)
    hyperparameter_specs = {"library": list(LIBRARIES), "degree": "int>=1", "n_frequencies": "int>=1",
                            "threshold": "float>=0", "alpha": "float>=0", "max_iter": "int>=1",
                            "differentiation": list(DIFFERENTIATION), "fd_order": "int>=1",
                            "smoother_window": "int>=5", "weak_test_functions": "int>=1",
                            "substeps": "int>=1", "scaling": ["none", "component", "global"]}

    def __init__(self, library: str = "polynomial", degree: int = 2, n_frequencies: int = 1,
                 threshold: float = 0.1, alpha: float = 1e-5, max_iter: int = 20,
                 differentiation: str = "finite_difference", fd_order: int = 4, smoother_window: int = 11,
                 weak_test_functions: int = 200, substeps: int = 1, scaling: str = "none") -> None:
        self.library = library
        self.degree = degree
        self.n_frequencies = n_frequencies
        self.threshold = threshold
        self.alpha = alpha
        self.max_iter = max_iter
        self.differentiation = differentiation
        self.fd_order = fd_order
        self.smoother_window = smoother_window
        self.weak_test_functions = weak_test_functions
        self.substeps = substeps
        self.scaling = scaling

    # -- PySINDy objects ---------------------------------------------------------------
    def _function_library(self):
        import pysindy as ps
        if self.library not in LIBRARIES:
            raise SurroflowError(f"sindy: library={self.library!r} is not allowed; allowed: {list(LIBRARIES)}")
        poly = ps.PolynomialLibrary(degree=int(self.degree), include_bias=True)
        fourier = ps.FourierLibrary(n_frequencies=int(self.n_frequencies))
        return {"polynomial": poly, "fourier": fourier, "polynomial+fourier": poly + fourier}[self.library]

    def _pysindy_model(self, n_time: int):
        import pysindy as ps
        optimizer = ps.STLSQ(threshold=float(self.threshold), alpha=float(self.alpha), max_iter=int(self.max_iter))
        if self.differentiation == "weak":
            t = np.arange(n_time) * self.dt_
            lib = ps.WeakPDELibrary(function_library=self._function_library(), spatiotemporal_grid=t,
                                    K=int(self.weak_test_functions), p=4)
            return ps.SINDy(optimizer=optimizer, feature_library=lib), t
        if self.differentiation == "finite_difference":
            diff = ps.FiniteDifference(order=int(self.fd_order))
        elif self.differentiation == "smoothed_finite_difference":
            diff = ps.SmoothedFiniteDifference(smoother_kws={"window_length": int(self.smoother_window),
                                                             "polyorder": 3}, order=int(self.fd_order))
        else:
            raise SurroflowError(f"sindy: differentiation={self.differentiation!r} is not allowed; "
                                 f"allowed: {list(DIFFERENTIATION)}")
        return ps.SINDy(optimizer=optimizer, feature_library=self._function_library(),
                        differentiation_method=diff), self.dt_

    # -- fitting -----------------------------------------------------------------------
    def _fit(self, X):
        Z = self._z(X)
        model, t = self._pysindy_model(Z.shape[1])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit([z for z in Z], t=t)
        for w in {str(w.message) for w in caught}:
            logger.info("sindy: PySINDy: %s", w)
        names = list(model.get_feature_names())
        coef = np.asarray(model.coefficients(), dtype=float)
        if coef.shape != (Z.shape[2], len(names)):
            raise SurroflowError(f"sindy: PySINDy returned coefficients of shape {coef.shape} for "
                                 f"{len(names)} terms and {Z.shape[2]} components")
        terms = TermSet(names, Z.shape[2])
        sample = Z.reshape(-1, Z.shape[2])[:: max(1, Z.shape[0] * Z.shape[1] // 500)]
        reference = np.asarray(self._function_library().fit(sample).transform(sample))
        if not np.allclose(terms(sample), reference, rtol=1e-10, atol=1e-10):
            raise SurroflowError("sindy: the library terms evaluated from their names differ from PySINDy's")
        self.coef_ = coef
        self.feature_names_ = np.array(names)
        self._terms = terms

    # -- the identified vector field -------------------------------------------------------
    @property
    def terms(self) -> TermSet:
        if getattr(self, "_terms", None) is None:
            self._check_fitted()
            self._terms = TermSet([str(n) for n in np.atleast_1d(self.feature_names_)], self.n_state_)
        return self._terms

    def vector_field(self, z: np.ndarray) -> np.ndarray:
        """``dz/dt`` of the identified model at the (fitted-variable) states ``z`` ``(n, d)``."""
        return self.terms(z) @ self.coef_.T

    def _step_z(self, zhist):
        return rk4_flow(self.vector_field, zhist[:, -1], self.dt_, int(self.substeps))

    # -- reading the equations -----------------------------------------------------------
    def equation_terms(self, variables: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
        """``{variable: {term: coefficient}}`` of the non-zero coefficients (``x<i>`` replaced
        by ``variables[i]`` when given)."""
        self._check_fitted()
        names = list(variables) if variables is not None else [f"x{i}" for i in range(self.n_state_)]
        terms = self.terms.renamed(names)
        return {names[i]: {terms[j]: float(c) for j, c in enumerate(self.coef_[i]) if c != 0.0}
                for i in range(self.n_state_)}

    @property
    def n_active_terms_(self) -> int:
        return int(np.count_nonzero(self.coef_))

    def _get_state(self):
        return {"coef_": self.coef_, "feature_names_": self.feature_names_}

    def _set_state(self, state: Mapping[str, np.ndarray]) -> None:
        self.coef_ = np.asarray(state["coef_"], dtype=float).reshape(self.n_state_, -1)
        self.feature_names_ = np.array([str(n) for n in np.atleast_1d(state["feature_names_"])])
        self._terms = None
        if self.coef_.shape[1] != len(self.feature_names_):
            raise SurroflowError(f"sindy state: {self.coef_.shape[1]} coefficients per equation for "
                                 f"{len(self.feature_names_)} term names")


__all__ = ["DIFFERENTIATION", "LIBRARIES", "SINDy", "TermSet"]
