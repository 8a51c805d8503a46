"""Linear and quadratic forecasters: DMD and operator inference."""
from __future__ import annotations

import numpy as np

from .. import SurroflowError
from ..reduction.pod import POD
from ..surrogates.registry import register
from .base import Forecaster, n_polynomial_features, polynomial_features, ridge_solve, rk4_flow


@register("forecaster", "dmd")
class DMD(Forecaster):
    """Linear (optionally affine) discrete-time map ``z_{k+1} = A z_k + b`` (DMD, ridge-regularised).

    ``rank`` truncates the map to the leading principal directions of the data (exact DMD);
    ``eigenvalues_`` are the discrete-time DMD eigenvalues.
    """

    kind = "dmd"

    #: value spec of each hyperparameter, checked before any job (surrogates.registry.check_value)
    hyperparameter_specs = {"rank": "int>=1|None", "alpha": "float>=0", "affine": "bool", "scaling": ["component", "global"]}

    def __init__(self, rank: int | None = None, alpha: float = 1e-8, affine: bool = True,
                 scaling: str = "component") -> None:
        self.scaling = scaling
        self.rank = rank
        self.alpha = alpha
        self.affine = affine

    def _fit(self, X):
        Z = self._z(X)
        d = Z.shape[2]
        Zf = Z.reshape(-1, d)
        r = d if self.rank is None else int(min(self.rank, d))
        self.basis_ = POD(method="exact", rank=r, energy=None).fit(Zf).modes_  # (r, d), orthonormal
        P = Z @ self.basis_.T
        Xin, Yout = P[:, :-1].reshape(-1, r), P[:, 1:].reshape(-1, r)
        if self.affine:
            Xin = np.column_stack([np.ones(len(Xin)), Xin])
        pen = np.full(Xin.shape[1], float(self.alpha))
        W = ridge_solve(lambda: iter([(Xin, Yout)]), pen)
        self.coef_ = W  # (1?+r, r)
        A = W[1:].T if self.affine else W.T
        self.eigenvalues_real_ = np.linalg.eigvals(A).real
        self.eigenvalues_imag_ = np.linalg.eigvals(A).imag

    def _step_z(self, zhist):
        p = zhist[:, -1] @ self.basis_.T
        if self.affine:
            p = np.column_stack([np.ones(len(p)), p])
        return (p @ self.coef_) @ self.basis_

    def _get_state(self):
        return {"basis_": self.basis_, "coef_": self.coef_,
                "eigenvalues_real_": self.eigenvalues_real_, "eigenvalues_imag_": self.eigenvalues_imag_}


@register("forecaster", "opinf")
class OpInf(Forecaster):
    """Quadratic operator inference: ``f(z) = c + A z + H (z ⊗ z)`` (unique products).

    ``time = "discrete"`` learns ``z_{k+1} - z_k = f(z_k)``; ``time = "continuous"`` learns
    ``dz/dt = f(z)`` from fourth-order central differences and integrates it with ``substeps``
    RK4 steps per sample interval.  Tikhonov penalties ``reg_linear`` (on ``c`` and ``A``) and
    ``reg_quadratic`` (on ``H``), relative to the mean squared feature scale.
    """

    kind = "opinf"

    #: value spec of each hyperparameter, checked before any job (surrogates.registry.check_value)
    hyperparameter_specs = {"time": ["discrete", "continuous"], "reg_linear": "float>=0", "reg_quadratic": "float>=0",
                            "substeps": "int>=1", "scaling": ["component", "global"]}

    def __init__(self, time: str = "discrete", reg_linear: float = 1e-8, reg_quadratic: float = 1e-6,
                 substeps: int = 1, scaling: str = "component") -> None:
        self.scaling = scaling
        self.time = time
        self.reg_linear = reg_linear
        self.reg_quadratic = reg_quadratic
        self.substeps = substeps

    def _features(self, z: np.ndarray) -> np.ndarray:
        return np.column_stack([np.ones(len(z)), z, polynomial_features(z, 2)])

    def _fit(self, X):
        if self.time not in ("discrete", "continuous"):
            raise SurroflowError(f"opinf: time={self.time!r} is not allowed; allowed: ['discrete', 'continuous']")
        Z = self._z(X)
        d = Z.shape[2]
        if self.time == "discrete":
            Zin, R = Z[:, :-1], Z[:, 1:] - Z[:, :-1]
        else:
            if Z.shape[1] < 5:
                raise SurroflowError("opinf continuous needs >= 5 time steps per trajectory")
            R = (-Z[:, 4:] + 8 * Z[:, 3:-1] - 8 * Z[:, 1:-3] + Z[:, :-4]) / (12 * self.dt_)
            Zin = Z[:, 2:-2]
        Zin, R = Zin.reshape(-1, d), R.reshape(-1, d)
        nq = n_polynomial_features(d, 2)
        pen = np.concatenate([[self.reg_linear], np.full(d, self.reg_linear), np.full(nq, self.reg_quadratic)])

        def blocks(chunk=4096):
            for i in range(0, len(Zin), chunk):
                yield self._features(Zin[i:i + chunk]), R[i:i + chunk]

        self.coef_ = ridge_solve(blocks, pen)

    def _f(self, z):
        return self._features(z) @ self.coef_

    def _step_z(self, zhist):
        z = zhist[:, -1]
        if self.time == "discrete":
            return z + self._f(z)
        return rk4_flow(self._f, z, self.dt_, int(self.substeps))

    def _get_state(self):
        return {"coef_": self.coef_}


__all__ = ["DMD", "OpInf"]
