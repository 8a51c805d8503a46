"""Reservoir-style forecasters on delay embeddings: next-generation reservoir computing (NG-RC)
and random-feature ridge regression."""
from __future__ import annotations

import numpy as np

from .. import SurroflowError
from ..surrogates.registry import register
from .base import (Forecaster, check_trajectories, n_polynomial_features, normal_equations, polynomial_features,
                   ridge_solve, solve_ridge)


class _DelayMixin:
    n_delays: int
    delay_stride: int

    @property
    def n_history_(self) -> int:
        return (int(self.n_delays) - 1) * int(self.delay_stride) + 1

    def _delay_windows(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Delay-embedded inputs ``(m, n_delays*d)``, current states and next states ``(m, d)``."""
        h = self.n_history_
        s = int(self.delay_stride)
        n, T, d = Z.shape
        lags = [Z[:, h - 1 - j * s:T - 1 - j * s] for j in range(int(self.n_delays))]
        lin = np.concatenate(lags, axis=2).reshape(-1, d * int(self.n_delays))
        cur = Z[:, h - 1:T - 1].reshape(-1, d)
        nxt = Z[:, h:].reshape(-1, d)
        return lin, cur, nxt

    def _delay_vector(self, zhist: np.ndarray) -> np.ndarray:
        s = int(self.delay_stride)
        return np.concatenate([zhist[:, -1 - j * s] for j in range(int(self.n_delays))], axis=1)


@register("forecaster", "ngrc")
class NGRC(_DelayMixin, Forecaster):
    """Next-generation reservoir computing (Gauthier et al. 2021): nonlinear vector autoregression.

    Features: a constant, ``n_delays`` delayed states (stride ``delay_stride``) and their unique
    monomials up to degree ``poly_order``; ridge regression (``alpha``) on the increment
    ``z_{k+1} - z_k``.
    """

    kind = "ngrc"

    #: value spec of each hyperparameter, checked before any job (surrogates.registry.check_value)
    hyperparameter_specs = {"n_delays": "int>=1", "delay_stride": "int>=1", "poly_order": "int>=1", "alpha": "float>=0",
                            "scaling": ["component", "global"]}

    def __init__(self, n_delays: int = 2, delay_stride: int = 1, poly_order: int = 2,
                 alpha: float = 1e-6, scaling: str = "component") -> None:
        self.scaling = scaling
        self.n_delays = n_delays
        self.delay_stride = delay_stride
        self.poly_order = poly_order
        self.alpha = alpha

    def _features(self, lin):
        return np.column_stack([np.ones(len(lin)), lin, polynomial_features(lin, int(self.poly_order))])

    def _fit(self, X):
        if int(self.n_delays) < 1 or int(self.delay_stride) < 1 or int(self.poly_order) < 1:
            raise SurroflowError("ngrc: n_delays, delay_stride and poly_order must be >= 1")
        n_feat = 1 + X.shape[2] * int(self.n_delays) + n_polynomial_features(X.shape[2] * int(self.n_delays),
                                                                             int(self.poly_order))
        if n_feat > 20000:
            raise SurroflowError(f"ngrc: {n_feat} features is too many; reduce the state (state: pod), "
                                 "n_delays or poly_order")
        lin, cur, nxt = self._delay_windows(self._z(X))
        pen = np.full(n_feat, float(self.alpha))
        pen[0] = 1e-12  # the constant is (almost) unpenalised

        def blocks(chunk=4096):
            for i in range(0, len(lin), chunk):
                yield self._features(lin[i:i + chunk]), nxt[i:i + chunk] - cur[i:i + chunk]

        self.coef_ = ridge_solve(blocks, pen)

    def _step_z(self, zhist):
        return zhist[:, -1] + self._features(self._delay_vector(zhist)) @ self.coef_

    def _get_state(self):
        return {"coef_": self.coef_}


@register("forecaster", "rff")
class RandomFeatures(_DelayMixin, Forecaster):
    """Random-feature ridge regression (random feature maps, Gottwald & Reich 2021).

    ``phi(z) = activation(W z + b)`` with ``W ~ U(-weight_scale, weight_scale)`` and
    ``b ~ U(-bias_scale, bias_scale)`` drawn once from ``random_state`` (stored, so the model is
    reproducible), plus a linear part; ridge regression (``alpha``) on the increment.

    Online learning (:meth:`partial_fit`): the model keeps the normal equations of the ridge
    problem (``gram_ = sum w_k phi_k phi_k^T``, ``rhs_ = sum w_k phi_k dz_k^T``, ``weight_ = sum
    w_k``) and re-solves them after each chunk of data, one step of a trajectory or many.  With
    ``forgetting = g < 1`` every row's weight is multiplied by ``g`` per later row (exponentially
    weighted recursive least squares: the memory is about ``1 / (1 - g)`` steps; ``0.5 <= g <= 1``), so the model
    follows a system whose parameters drift; ``g = 1`` forgets nothing, and chunks then give the
    coefficients of one :meth:`fit` on all of them.  The standardisation is fixed by the first
    data the model sees (``fit`` or the first ``partial_fit``).
    """

    kind = "rff"

    #: value spec of each hyperparameter, checked before any job (surrogates.registry.check_value)
    hyperparameter_specs = {"n_features": "int>=1", "activation": ["tanh", "cos"], "weight_scale": "float>0",
                            "bias_scale": "float>=0", "alpha": "float>=0", "n_delays": "int>=1",
                            "delay_stride": "int>=1", "random_state": "int>=0|None", "scaling": ["component", "global"],
                            "forgetting": "float[0.5,1]"}

    def __init__(self, n_features: int = 1000, activation: str = "tanh", weight_scale: float = 0.4,
                 bias_scale: float = 0.4, alpha: float = 1e-6, n_delays: int = 1, delay_stride: int = 1,
                 random_state: int | None = 0, scaling: str = "component", forgetting: float = 1.0) -> None:
        self.forgetting = forgetting
        self.scaling = scaling
        self.n_features = n_features
        self.activation = activation
        self.weight_scale = weight_scale
        self.bias_scale = bias_scale
        self.alpha = alpha
        self.n_delays = n_delays
        self.delay_stride = delay_stride
        self.random_state = random_state

    def _phi(self, lin):
        pre = lin @ self.W_.T + self.b_
        act = np.tanh(pre) if self.activation == "tanh" else np.cos(pre)
        return np.column_stack([np.ones(len(lin)), lin, act])

    def _draw_features(self, n_state: int) -> None:
        if self.activation not in ("tanh", "cos"):
            raise SurroflowError(f"rff: activation={self.activation!r} is not allowed; allowed: ['tanh', 'cos']")
        if not 0.5 <= float(self.forgetting) <= 1:
            raise SurroflowError(f"rff: forgetting={self.forgetting!r} is not allowed; expected 0.5 <= forgetting <= 1")
        rng = np.random.default_rng(self.random_state)
        p = n_state * int(self.n_delays)
        self.W_ = rng.uniform(-self.weight_scale, self.weight_scale, (int(self.n_features), p))
        self.b_ = rng.uniform(-self.bias_scale, self.bias_scale, int(self.n_features))
        n_feat = 1 + p + int(self.n_features)
        self.gram_, self.rhs_ = np.zeros((n_feat, n_feat)), np.zeros((n_feat, n_state))
        self.weight_ = np.zeros(())

    def _accumulate(self, X: np.ndarray) -> None:
        """Add the rows of the trajectories ``X`` to the normal equations (forgetting applied
        row by row along time; trajectories of one chunk are taken side by side), then solve."""
        lin, cur, nxt = self._delay_windows(self._z(X))
        n_traj, n_rows = X.shape[0], X.shape[1] - self.n_history_
        if n_rows < 1:
            raise SurroflowError(f"rff: a chunk of {X.shape[1]} states holds no step for a model with "
                                 f"{self.n_history_} history states")
        g = float(self.forgetting)
        w = np.tile(g ** np.arange(n_rows - 1, -1, -1.0), n_traj)      # row k of n: g^(n-1-k)
        root = np.sqrt(w)[:, None]

        def blocks(chunk=4096):             # rows scaled by sqrt(w): D^T D = sum w phi phi^T
            for i in range(0, len(lin), chunk):
                r = root[i:i + chunk]
                yield self._phi(lin[i:i + chunk]) * r, (nxt[i:i + chunk] - cur[i:i + chunk]) * r

        G, B, _ = normal_equations(blocks)
        decay = g ** n_rows
        self.gram_ = self.gram_ * decay + G
        self.rhs_ = self.rhs_ * decay + B
        self.weight_ = self.weight_ * decay + w.sum()
        self.coef_ = solve_ridge(self.gram_, self.rhs_, float(self.weight_),
                                 np.full(self.gram_.shape[0], float(self.alpha)))

    def _fit(self, X):
        self._draw_features(X.shape[2])
        self._accumulate(X)

    def partial_fit(self, trajectories, dt: float = 1.0) -> "RandomFeatures":
        """Learn from more data (``(n_traj, n_time, n_state)``, ``n_time > n_history_``), keeping
        what was learnt before (weighted by ``forgetting``); the first call fixes the scaling and
        draws the features, as :meth:`fit` does."""
        X = check_trajectories(trajectories)
        if not hasattr(self, "W_"):
            self._set_scaling(X, dt)
            self._draw_features(X.shape[2])
        elif not hasattr(self, "gram_"):
            raise SurroflowError("rff: this model was saved without its normal equations (before online "
                                 "learning existed); fit it again to continue learning")
        elif X.shape[2] != self.n_state_:
            raise SurroflowError(f"rff: partial_fit got {X.shape[2]} state components, the model has {self.n_state_}")
        elif not abs(float(dt) - self.dt_) <= 1e-9 * self.dt_:
            raise SurroflowError(f"rff: partial_fit got dt={dt}, the model was fitted at dt={self.dt_}")
        self._accumulate(X)
        return self

    def _step_z(self, zhist):
        return zhist[:, -1] + self._phi(self._delay_vector(zhist)) @ self.coef_

    def _get_state(self):
        return {"W_": self.W_, "b_": self.b_, "coef_": self.coef_, "gram_": self.gram_, "rhs_": self.rhs_,
                "weight_": self.weight_}


__all__ = ["NGRC", "RandomFeatures"]
