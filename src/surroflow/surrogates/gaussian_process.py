"""Gaussian-process surrogate (scikit-learn's GP module, imported with this module: never
inside the timed ``fit``).

Predictions after ``set_state`` are computed by the same code from the same arrays as after
``fit``, so a saved and reloaded model predicts exactly what the fitted one did.

Prediction evaluates the cross kernel directly (:meth:`GaussianProcessSurrogate._cross_kernel`):
sklearn's kernel call builds ``ConstantKernel * RBF + WhiteKernel`` as four full
``(n_query, n_train)`` matrices (the constant, the RBF, their product and the white kernel's
zeros, then the sum), which made a 2,000-row GP 1.7x *slower* per query in batch than in single
calls: the extra matrices of a large block leave the cache and the time goes to memory traffic.
The direct evaluation builds one matrix in place (the same floating-point operations as sklearn
for the RBF kernel, so the same numbers) in blocks of 512 KiB.
"""
from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
from scipy.linalg import LinAlgError, cholesky, solve_triangular
from scipy.spatial.distance import cdist
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Matern, WhiteKernel

from .. import SurroflowError
from .base import Surrogate, minmax, require_state, standard
from .registry import register

logger = logging.getLogger(__name__)

#: Cross-kernel entries per prediction block (64 Ki float64 = 512 KiB: the block stays in cache).
_BLOCK_ENTRIES = 1 << 16


@register("surrogate", "gaussian_process")
class GaussianProcessSurrogate(Surrogate):
    """Gaussian-process regression with one shared anisotropic kernel for all outputs.

    Inputs are scaled to [0, 1] with the min and max of the training data; outputs are centred
    and scaled (see ``normalize_y``).  The kernel is
    ``ConstantKernel * (RBF | Matern(nu)) + WhiteKernel`` with one length scale per input.  The
    outputs are independent GPs that share the kernel hyperparameters, chosen by maximising the
    summed log marginal likelihood
    (:class:`sklearn.gaussian_process.GaussianProcessRegressor` with a 2-D target).

    Cost: the hyperparameter search evaluates the likelihood and its gradient, which costs
    ``O(m^3 + m^2 n_outputs n_inputs)`` per step on ``m`` points, so it runs on a random subset of
    at most ``max_optimize`` rows; the final GP (one Cholesky factorisation, ``O(n^3)``) uses at
    most ``max_train`` rows.  About 2000 rows x 3 inputs x 20 outputs fit in a few seconds.

    Parameters
    ----------
    kernel : ``"rbf"`` or ``"matern"``.
    nu : Matern smoothness (0.5, 1.5, 2.5 or ``inf`` are fast; ignored for ``"rbf"``).
    n_restarts_optimizer : extra optimiser starts from random log-uniform hyperparameters.
    normalize_y : ``False`` (default) centres each output and divides all by one common scale,
        so that outputs with large variance (the leading POD coefficients) dominate the kernel
        choice, as they dominate the error of the reconstructed field; ``True`` standardises each
        output, so small, rough trailing modes weigh as much as the leading ones in the shared
        likelihood (on a 2000-row POD test problem: 70x larger field error).
    alpha : jitter added to the kernel diagonal; raised tenfold (up to 1e-4) if the Cholesky
        factorisation fails, the value used is kept in ``jitter_``.
    random_state : seed (or ``None``) for the row subsets and the optimiser restarts.
    max_train : most rows in the final GP; larger training sets are subsampled at random.
    max_optimize : most rows used to optimise the kernel hyperparameters.

    Learned attributes: ``x_min_``, ``x_scale_``, ``y_mean_``, ``y_scale_``, ``kernel_`` (fitted
    sklearn kernel), ``X_train_`` (scaled training inputs), ``alpha_`` (GP weights,
    ``(n_train, n_outputs)``), ``L_`` (lower Cholesky factor of the training kernel matrix),
    ``output_variance_`` (per-output amplitude of the uncertainty, ``y^T K^-1 y / n`` in scaled
    units: the kriging profile-likelihood estimate for the shared correlation), ``jitter_``,
    ``log_marginal_likelihood_`` (of the optimisation subset), ``n_inputs_``, ``n_outputs_``.

    ``predict(X, return_std=True)`` returns ``(mean, std)``, both ``(n, n_outputs)`` in the
    original units; ``std`` is the predictive standard deviation of a new observation (it
    includes the fitted white-noise level, which is tiny for noise-free data), scaled per output
    by ``output_variance_``; for trailing POD modes it tends to be conservative.
    """

    kind = "gaussian_process"
    supports_std = True

    #: value spec of each hyperparameter, checked before any job (surrogates.registry.check_value)
    hyperparameter_specs = {"kernel": ["rbf", "matern"], "nu": "float>0", "n_restarts_optimizer": "int>=0", "normalize_y": "bool",
                            "alpha": "float>=0", "random_state": "int>=0|None", "max_train": "int>=2",
                            "max_optimize": "int>=2"}

    def __init__(self, kernel: str = "rbf", nu: float = 2.5, n_restarts_optimizer: int = 0,
                 normalize_y: bool = False, alpha: float = 1e-10, random_state: int | None = None,
                 max_train: int = 2000, max_optimize: int = 500) -> None:
        self.kernel = kernel
        self.nu = nu
        self.n_restarts_optimizer = n_restarts_optimizer
        self.normalize_y = normalize_y
        self.alpha = alpha
        self.random_state = random_state
        self.max_train = max_train
        self.max_optimize = max_optimize

    # -- kernel
    def _make_kernel(self, n_inputs: int) -> Any:
        scale = np.full(n_inputs, 0.3)
        bounds = (1e-2, 1e3)  # inputs are in [0, 1]: shorter scales only fit noise
        if self.kernel == "rbf":
            base = RBF(length_scale=scale, length_scale_bounds=bounds)
        elif self.kernel == "matern":
            base = Matern(length_scale=scale, length_scale_bounds=bounds, nu=float(self.nu))
        else:
            raise SurroflowError(f"gaussian_process kernel must be 'rbf' or 'matern', got {self.kernel!r}")
        return (ConstantKernel(1.0, (1e-3, 1e3)) * base
                + WhiteKernel(noise_level=1e-5, noise_level_bounds=(1e-9, 1.0)))

    def _check_params(self) -> None:
        for name in ("max_train", "max_optimize"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 2:
                raise SurroflowError(f"gaussian_process {name} must be an integer >= 2, got {value!r}")
        if int(self.n_restarts_optimizer) < 0:
            raise SurroflowError("gaussian_process n_restarts_optimizer must be >= 0")
        if not float(self.alpha) >= 0:
            raise SurroflowError("gaussian_process alpha must be >= 0")

    # -- fit
    def fit(self, X: np.ndarray, Y: np.ndarray) -> "GaussianProcessSurrogate":
        X, Y = self._check_xy(X, Y)
        self._check_params()
        if X.shape[0] < 2:
            raise SurroflowError("gaussian_process needs at least 2 training rows")
        rng = np.random.default_rng(self.random_state)
        n = X.shape[0]

        x_min, x_scale = minmax(X)
        if self.normalize_y:
            y_mean, y_scale = standard(Y)
        else:
            y_mean = Y.mean(axis=0)
            common = float(np.sqrt(np.mean((Y - y_mean) ** 2)))
            y_scale = np.full(Y.shape[1], common if common > 0 else 1.0)
        Xs = (X - x_min) / x_scale
        Ys = (Y - y_mean) / y_scale

        train_idx = np.sort(rng.choice(n, size=self.max_train, replace=False)) if n > self.max_train else np.arange(n)
        opt_idx = (np.sort(rng.choice(train_idx, size=self.max_optimize, replace=False))
                   if train_idx.size > self.max_optimize else train_idx)
        if train_idx.size < n:
            logger.info("gaussian_process: %d of %d training rows used (max_train)", train_idx.size, n)

        # 1. kernel hyperparameters on a subset (the costly part)
        gpr = GaussianProcessRegressor(kernel=self._make_kernel(X.shape[1]), alpha=float(self.alpha),
                                       n_restarts_optimizer=int(self.n_restarts_optimizer),
                                       normalize_y=False, copy_X_train=True,
                                       random_state=int(rng.integers(2**31 - 1)))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            try:
                gpr.fit(Xs[opt_idx], Ys[opt_idx])
            except (LinAlgError, ValueError) as exc:
                raise SurroflowError(f"gaussian_process kernel optimisation failed ({exc}); "
                                     "try a larger 'alpha' or remove duplicated rows") from None
        for w in caught:
            if issubclass(w.category, ConvergenceWarning):
                logger.info("gaussian_process: %s", w.message)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        kernel = gpr.kernel_

        # 2. the GP itself on the (larger) training subset, kernel fixed
        Xt = Xs[train_idx]
        K = kernel(Xt)
        jitter = float(self.alpha)
        while True:
            try:
                L = cholesky(K + jitter * np.eye(K.shape[0]), lower=True, check_finite=False)
                break
            except LinAlgError:
                jitter = max(10.0 * jitter, 1e-10)
                if jitter > 1e-4:
                    raise SurroflowError("gaussian_process: the training kernel matrix is not positive "
                                         "definite even with jitter 1e-4; remove duplicated rows") from None
        if jitter != float(self.alpha):
            logger.info("gaussian_process: jitter raised from %g to %g for the Cholesky factorisation",
                        self.alpha, jitter)
        alpha = solve_triangular(L.T, solve_triangular(L, Ys[train_idx], lower=True, check_finite=False),
                                 lower=False, check_finite=False)
        # per-output process variance (kriging profile-likelihood estimate y^T K^-1 y / n): the
        # correlation is shared, the amplitude of each output's uncertainty is its own
        output_variance = np.einsum("ij,ij->j", Ys[train_idx], alpha) / train_idx.size

        self.x_min_, self.x_scale_ = x_min, x_scale
        self.y_mean_, self.y_scale_ = y_mean, y_scale
        self.kernel_ = kernel
        self.X_train_ = Xt
        self.L_ = L
        self.alpha_ = alpha
        self.output_variance_ = output_variance
        self.jitter_ = jitter
        self.log_marginal_likelihood_ = float(gpr.log_marginal_likelihood_value_)
        self.n_inputs_, self.n_outputs_ = X.shape[1], Y.shape[1]
        self._prepare_prediction()
        return self

    def _prepare_prediction(self) -> None:
        """Cache what every prediction needs from the fitted kernel ``c * base + white``."""
        k = self.kernel_
        self.constant_ = float(k.k1.k1.constant_value)
        self.base_kernel_ = k.k1.k2
        ls = np.asarray(self.base_kernel_.length_scale, dtype=float)
        # Matern subclasses RBF in sklearn: only the plain RBF takes the in-place path
        self.X_train_ls_ = self.X_train_ / ls if type(self.base_kernel_) is RBF else None

    def _cross_kernel(self, Xs: np.ndarray) -> np.ndarray:
        """``kernel_(Xs, X_train_)`` built as one matrix in place: the white kernel is zero
        between distinct point sets, the constant is one multiplication."""
        if self.X_train_ls_ is not None:      # RBF: exp(-0.5 * sqeuclidean) as sklearn, in place
            K = cdist(Xs / np.asarray(self.base_kernel_.length_scale, dtype=float), self.X_train_ls_, metric="sqeuclidean")
            np.multiply(K, -0.5, out=K)
            np.exp(K, out=K)
        else:
            K = self.base_kernel_(Xs, self.X_train_)
        np.multiply(K, self.constant_, out=K)
        return K

    # -- predict
    def predict(self, X: np.ndarray, return_std: bool = False) -> Any:
        """Mean ``(n, n_outputs)``; with ``return_std`` also the predictive std (same shape)."""
        X = self._check_predict_input(X, "alpha_")
        Xs = (X - self.x_min_) / self.x_scale_
        mean = np.empty((X.shape[0], self.n_outputs_))
        std = np.empty_like(mean) if return_std else None
        rows = max(1, _BLOCK_ENTRIES // self.X_train_.shape[0])
        for start in range(0, X.shape[0], rows):
            block = slice(start, start + rows)
            K_trans = self._cross_kernel(Xs[block])
            np.matmul(K_trans, self.alpha_, out=mean[block])
            if std is not None:
                V = solve_triangular(self.L_, K_trans.T, lower=True, check_finite=False)
                var = self.kernel_.diag(Xs[block]) - np.einsum("ij,ij->j", V, V)
                std[block] = (np.sqrt(np.clip(var, 0.0, None))[:, None]
                              * np.sqrt(self.output_variance_) * self.y_scale_)
        mean = mean * self.y_scale_ + self.y_mean_
        return (mean, std) if return_std else mean

    # -- state
    def get_state(self) -> dict[str, np.ndarray]:
        if not hasattr(self, "alpha_"):
            raise SurroflowError("gaussian_process surrogate is not fitted: nothing to save")
        rows, cols = np.tril_indices(self.L_.shape[0])
        return {
            "x_min": self.x_min_, "x_scale": self.x_scale_,
            "y_mean": self.y_mean_, "y_scale": self.y_scale_,
            "kernel_theta": np.asarray(self.kernel_.theta),  # log-hyperparameters
            "X_train": self.X_train_, "alpha": self.alpha_, "output_variance": self.output_variance_,
            "L_packed": self.L_[rows, cols],  # lower triangle, row-major
            "jitter": np.asarray(self.jitter_),
            "log_marginal_likelihood": np.asarray(self.log_marginal_likelihood_),
        }

    def set_state(self, state: dict[str, np.ndarray]) -> "GaussianProcessSurrogate":
        require_state(state, ("x_min", "x_scale", "y_mean", "y_scale", "kernel_theta", "X_train", "alpha",
                         "output_variance", "L_packed"), self.kind)
        X_train = np.asarray(state["X_train"], dtype=float)
        n, d = X_train.shape
        kernel = self._make_kernel(d)
        theta = np.asarray(state["kernel_theta"], dtype=float)
        if theta.shape != kernel.theta.shape:
            raise SurroflowError(f"gaussian_process state has {theta.size} kernel hyperparameters, the "
                                 f"{self.kernel!r} kernel on {d} inputs needs {kernel.theta.size}")
        packed = np.asarray(state["L_packed"], dtype=float)
        if packed.size != n * (n + 1) // 2:
            raise SurroflowError("gaussian_process state: L_packed does not match X_train")
        L = np.zeros((n, n))
        L[np.tril_indices(n)] = packed
        alpha = np.asarray(state["alpha"], dtype=float)
        self.x_min_ = np.asarray(state["x_min"], dtype=float)
        self.x_scale_ = np.asarray(state["x_scale"], dtype=float)
        self.y_mean_ = np.asarray(state["y_mean"], dtype=float)
        self.y_scale_ = np.asarray(state["y_scale"], dtype=float)
        self.kernel_ = kernel.clone_with_theta(theta)
        self.X_train_ = X_train
        self.L_ = L
        self.alpha_ = alpha
        self.output_variance_ = np.asarray(state["output_variance"], dtype=float)
        self.jitter_ = float(state.get("jitter", self.alpha))
        self.log_marginal_likelihood_ = float(state.get("log_marginal_likelihood", np.nan))
        self.n_inputs_, self.n_outputs_ = d, alpha.shape[1]
        self._prepare_prediction()
        return self


__all__ = ["GaussianProcessSurrogate"]
