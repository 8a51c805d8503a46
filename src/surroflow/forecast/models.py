"""Forecast surrogates of chaotic dynamics behind one API.

Every forecaster follows scikit-learn's conventions (``__init__`` stores hyperparameters only,
learned attributes end in ``_``, ``random_state`` becomes a generator inside ``fit``):

* ``fit(trajectories, dt=1.0)``: ``trajectories`` is ``(n_traj, n_time, n_state)`` sampled every
  ``dt`` (time steps are never shuffled across trajectories: windows stay inside one trajectory);
* ``predict_step(history)``: ``history`` is ``(n_ic, n_hist, n_state)`` (or ``(n_ic, n_state)``),
  oldest first; returns the next state ``(n_ic, n_state)``;
* ``rollout(initial, n_steps)``: autoregressive forecast of the ``n_steps`` states after the
  last state of ``initial``; returns ``(n_ic, n_steps, n_state)``.  A rollout that becomes
  non-finite or exceeds :data:`BLOWUP` is NaN from then on (never clipped or hidden);
* ``n_history_``: how many past states one step needs (1 for Markovian models);
* ``get_state()`` / ``set_state()``: learned state as plain numpy arrays, stored as NetCDF by
  :func:`forecaster_to_dataset` (torch weights as ``state_dict`` arrays; nothing is pickled).

Kinds (:func:`make_forecaster`): ``persistence`` and ``climatology`` (baselines), ``dmd``
(linear), ``opinf`` (quadratic operator inference, Tikhonov-regularised least squares, discrete
or continuous time), ``ngrc`` (next-generation reservoir computing / nonlinear vector
autoregression), ``rff`` (random-feature ridge regression), ``mlp_stepper`` (residual network,
dense or periodic-convolutional, trained with a multi-step rollout loss) and ``node`` (neural
ODE integrated by RK4, rollout loss).  ``reduced`` wraps any of them in a POD basis.
"""
from __future__ import annotations

import inspect
import json
import math
from itertools import combinations_with_replacement
from typing import Any, Callable, ClassVar, Sequence

import numpy as np
import xarray as xr

from .. import SurroflowError

#: a forecast state with an absolute value above this counts as blown up (NaN from then on)
BLOWUP = 1e10


# =============================================================================== helpers
def check_trajectories(traj: Any) -> np.ndarray:
    arr = np.asarray(traj, dtype=float)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise SurroflowError(f"trajectories must be (n_traj, n_time, n_state), got shape {arr.shape}")
    if arr.shape[1] < 3:
        raise SurroflowError(f"trajectories need at least 3 time steps, got {arr.shape[1]}")
    if not np.all(np.isfinite(arr)):
        raise SurroflowError("trajectories contain NaN or Inf (exclude flagged samples first)")
    return arr


def as_history(initial: Any, n_state: int | None = None) -> np.ndarray:
    h = np.asarray(initial, dtype=float)
    if h.ndim == 2:
        h = h[:, None, :]
    if h.ndim != 3:
        raise SurroflowError(f"initial states must be (n_ic, n_state) or (n_ic, n_hist, n_state), got {h.shape}")
    if n_state is not None and h.shape[2] != n_state:
        raise SurroflowError(f"initial states have {h.shape[2]} components, the model was fitted on {n_state}")
    return h


def _blowup_mask(x: np.ndarray) -> np.ndarray:
    return ~np.all(np.isfinite(x) & (np.abs(x) < BLOWUP), axis=-1)


def polynomial_features(z: np.ndarray, order: int) -> np.ndarray:
    """Unique monomials of degree 2..``order`` of the columns of ``z`` (``(m, p)``)."""
    feats = []
    p = z.shape[1]
    for deg in range(2, order + 1):
        idx = np.array(list(combinations_with_replacement(range(p), deg)))
        term = z[:, idx[:, 0]]
        for c in range(1, deg):
            term = term * z[:, idx[:, c]]
        feats.append(term)
    return np.concatenate(feats, axis=1) if feats else np.empty((z.shape[0], 0))


def n_polynomial_features(p: int, order: int) -> int:
    return sum(math.comb(p + d - 1, d) for d in range(2, order + 1))


def ridge_solve(feature_blocks: Callable[[], Any], penalty: np.ndarray) -> np.ndarray:
    """Tikhonov least squares ``min ||D W - Y||²/m + ||diag(sqrt(penalty)) W||²``.

    ``feature_blocks()`` yields ``(D_block, Y_block)`` row chunks, so the feature matrix is never
    stored whole (normal equations accumulated in chunks; Cholesky, lstsq fallback).
    """
    G = None
    B = None
    m = 0
    for D, Y in feature_blocks():
        if G is None:
            G = np.zeros((D.shape[1], D.shape[1]))
            B = np.zeros((D.shape[1], Y.shape[1]))
        G += D.T @ D
        B += D.T @ Y
        m += D.shape[0]
    if G is None:
        raise SurroflowError("no training rows")
    A = G / m + np.diag(np.asarray(penalty, dtype=float))
    rhs = B / m
    try:
        L = np.linalg.cholesky(A)
        return np.linalg.solve(L.T, np.linalg.solve(L, rhs))
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(A, rhs, rcond=None)[0]


# =============================================================================== base class
class Forecaster:
    """Base class (see the module docstring for the API)."""

    kind: ClassVar[str] = ""
    #: whether the model keeps torch weights (for device handling in the pipeline)
    uses_torch: ClassVar[bool] = False

    # -- hyperparameters ------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        sig = inspect.signature(type(self).__init__)
        return {k: getattr(self, k) for k in sig.parameters if k not in ("self", "args", "kwargs")}

    # -- fitting --------------------------------------------------------------------
    def fit(self, trajectories: Any, dt: float = 1.0) -> "Forecaster":
        X = check_trajectories(trajectories)
        if not dt > 0:
            raise SurroflowError(f"dt must be > 0, got {dt}")
        self.dt_ = float(dt)
        self.n_state_ = int(X.shape[2])
        flat = X.reshape(-1, X.shape[2])
        self.mean_ = flat.mean(axis=0)
        scaling = getattr(self, "scaling", "component")
        if scaling == "component":
            scale = flat.std(axis=0)
        elif scaling == "global":   # one scale for all components (keeps POD energy ordering)
            scale = np.full(flat.shape[1], np.sqrt(np.mean((flat - self.mean_) ** 2)))
        else:
            raise SurroflowError(f"{self.kind}: scaling={scaling!r} is not allowed; allowed: ['component', 'global']")
        self.scale_ = np.where(scale > 1e-12 * max(1.0, float(np.abs(flat).max())), scale, 1.0)
        self._fit(X)
        return self

    def _fit(self, X: np.ndarray) -> None:
        """Learn from standardised-able trajectories ``X`` (subclasses)."""

    @property
    def n_history_(self) -> int:
        return 1

    def _z(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean_) / self.scale_

    def _x(self, z: np.ndarray) -> np.ndarray:
        return z * self.scale_ + self.mean_

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_state_"):
            raise SurroflowError(f"{type(self).__name__} is not fitted; call fit() first")

    # -- prediction -----------------------------------------------------------------
    def predict_step(self, history: Any) -> np.ndarray:
        self._check_fitted()
        h = as_history(history, self.n_state_)
        if h.shape[1] < self.n_history_:
            raise SurroflowError(f"{self.kind}: needs {self.n_history_} history states, got {h.shape[1]}")
        with np.errstate(all="ignore"):
            z = self._z(h[:, -self.n_history_:])
            return self._x(self._step_z(z))

    def _step_z(self, zhist: np.ndarray) -> np.ndarray:
        """Next standardised state from the standardised history ``(n, n_history_, d)``."""
        raise NotImplementedError

    def rollout(self, initial: Any, n_steps: int) -> np.ndarray:
        self._check_fitted()
        h = as_history(initial, self.n_state_)
        if h.shape[1] < self.n_history_:
            raise SurroflowError(f"{self.kind}: needs {self.n_history_} history states, got {h.shape[1]}")
        n_steps = int(n_steps)
        with np.errstate(all="ignore"):
            zhist = self._z(h[:, -self.n_history_:])
            out = self._rollout_z(zhist, n_steps)
            return self._x(out)

    def _rollout_z(self, zhist: np.ndarray, n_steps: int) -> np.ndarray:
        n, d = zhist.shape[0], zhist.shape[2]
        out = np.empty((n, n_steps, d))
        hist = zhist.copy()
        dead = np.zeros(n, dtype=bool)
        for k in range(n_steps):
            z = self._step_z(hist)
            dead |= _blowup_mask(z)
            z[dead] = np.nan
            out[:, k] = z
            if hist.shape[1] > 1:
                hist = np.concatenate([hist[:, 1:], z[:, None]], axis=1)
            else:
                hist = z[:, None]
        return out

    # -- storage --------------------------------------------------------------------
    _BASE_STATE = ("dt_", "n_state_", "mean_", "scale_")

    def get_state(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        state = {k: np.asarray(getattr(self, k)) for k in self._BASE_STATE}
        state.update(self._get_state())
        return state

    def _get_state(self) -> dict[str, np.ndarray]:
        return {}

    def set_state(self, state: dict[str, np.ndarray]) -> "Forecaster":
        self.dt_ = float(state["dt_"])
        self.n_state_ = int(state["n_state_"])
        self.mean_ = np.asarray(state["mean_"], dtype=float)
        self.scale_ = np.asarray(state["scale_"], dtype=float)
        self._set_state({k: v for k, v in state.items() if k not in self._BASE_STATE})
        return self

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        for k, v in state.items():
            setattr(self, k, np.asarray(v))


# =============================================================================== baselines
class Persistence(Forecaster):
    """Tomorrow equals today: the last state, forever."""

    kind = "persistence"

    def __init__(self) -> None:
        pass

    def _step_z(self, zhist):
        return zhist[:, -1].copy()


class Climatology(Forecaster):
    """The training mean state (the best constant forecast in the mean-square sense)."""

    kind = "climatology"

    def __init__(self) -> None:
        pass

    def _step_z(self, zhist):
        return np.zeros((zhist.shape[0], zhist.shape[2]))


# =============================================================================== linear / quadratic
class DMD(Forecaster):
    """Linear (optionally affine) discrete-time map ``z_{k+1} = A z_k + b`` (DMD, ridge-regularised).

    ``rank`` truncates the map to the leading principal directions of the data (exact DMD);
    ``eigenvalues_`` are the discrete-time DMD eigenvalues.
    """

    kind = "dmd"

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
        _, _, vt = np.linalg.svd(Zf - Zf.mean(0), full_matrices=False)
        self.basis_ = vt[:r]  # (r, d)
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


class OpInf(Forecaster):
    """Quadratic operator inference: ``f(z) = c + A z + H (z ⊗ z)`` (unique products).

    ``time = "discrete"`` learns ``z_{k+1} - z_k = f(z_k)``; ``time = "continuous"`` learns
    ``dz/dt = f(z)`` from fourth-order central differences and integrates it with ``substeps``
    RK4 steps per sample interval.  Tikhonov penalties ``reg_linear`` (on ``c`` and ``A``) and
    ``reg_quadratic`` (on ``H``), relative to the mean squared feature scale.
    """

    kind = "opinf"

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
        h = self.dt_ / int(self.substeps)
        for _ in range(int(self.substeps)):
            k1 = self._f(z)
            k2 = self._f(z + 0.5 * h * k1)
            k3 = self._f(z + 0.5 * h * k2)
            k4 = self._f(z + h * k3)
            z = z + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return z

    def _get_state(self):
        return {"coef_": self.coef_}


# =============================================================================== NG-RC / random features
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


class NGRC(_DelayMixin, Forecaster):
    """Next-generation reservoir computing (Gauthier et al. 2021): nonlinear vector autoregression.

    Features: a constant, ``n_delays`` delayed states (stride ``delay_stride``) and their unique
    monomials up to degree ``poly_order``; ridge regression (``alpha``) on the increment
    ``z_{k+1} - z_k``.
    """

    kind = "ngrc"

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


class RandomFeatures(_DelayMixin, Forecaster):
    """Random-feature ridge regression (random feature maps, Gottwald & Reich 2021).

    ``phi(z) = activation(W z + b)`` with ``W ~ U(-weight_scale, weight_scale)`` and
    ``b ~ U(-bias_scale, bias_scale)`` drawn once from ``random_state`` (stored, so the model is
    reproducible), plus a linear part; ridge regression (``alpha``) on the increment.
    """

    kind = "rff"

    def __init__(self, n_features: int = 1000, activation: str = "tanh", weight_scale: float = 0.4,
                 bias_scale: float = 0.4, alpha: float = 1e-6, n_delays: int = 1, delay_stride: int = 1,
                 random_state: int | None = 0, scaling: str = "component") -> None:
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

    def _fit(self, X):
        if self.activation not in ("tanh", "cos"):
            raise SurroflowError(f"rff: activation={self.activation!r} is not allowed; allowed: ['tanh', 'cos']")
        rng = np.random.default_rng(self.random_state)
        p = X.shape[2] * int(self.n_delays)
        self.W_ = rng.uniform(-self.weight_scale, self.weight_scale, (int(self.n_features), p))
        self.b_ = rng.uniform(-self.bias_scale, self.bias_scale, int(self.n_features))
        lin, cur, nxt = self._delay_windows(self._z(X))
        pen = np.full(1 + p + int(self.n_features), float(self.alpha))

        def blocks(chunk=4096):
            for i in range(0, len(lin), chunk):
                yield self._phi(lin[i:i + chunk]), nxt[i:i + chunk] - cur[i:i + chunk]

        self.coef_ = ridge_solve(blocks, pen)

    def _step_z(self, zhist):
        return zhist[:, -1] + self._phi(self._delay_vector(zhist)) @ self.coef_

    def _get_state(self):
        return {"W_": self.W_, "b_": self.b_, "coef_": self.coef_}


# =============================================================================== torch models
def _torch():
    import torch
    return torch


def _build_torch_net(kind: str, d: int, hidden: Sequence[int], activation: str, architecture: str,
                     channels: int, kernel_size: int, n_layers: int):
    torch = _torch()
    nn = torch.nn
    acts = {"gelu": nn.GELU, "tanh": nn.Tanh, "relu": nn.ReLU, "silu": nn.SiLU}
    if activation not in acts:
        raise SurroflowError(f"{kind}: activation={activation!r} is not allowed; allowed: {sorted(acts)}")
    Act = acts[activation]
    if architecture == "dense":
        layers: list[Any] = []
        width = d
        for h in hidden:
            layers += [nn.Linear(width, int(h)), Act()]
            width = int(h)
        layers.append(nn.Linear(width, d))
        net = nn.Sequential(*layers)
        with torch.no_grad():
            net[-1].weight.mul_(0.1)
            net[-1].bias.zero_()
        return net
    if architecture == "conv":
        if kernel_size % 2 != 1:
            raise SurroflowError(f"{kind}: kernel_size must be odd, got {kernel_size}")

        class PeriodicCNN(nn.Module):
            """Translation-equivariant 1-D CNN with circular padding (fields on periodic grids)."""

            def __init__(self) -> None:
                super().__init__()
                convs = []
                c_in = 1
                for _ in range(int(n_layers) - 1):
                    convs += [nn.Conv1d(c_in, int(channels), int(kernel_size), padding=int(kernel_size) // 2,
                                        padding_mode="circular"), Act()]
                    c_in = int(channels)
                convs.append(nn.Conv1d(c_in, 1, int(kernel_size), padding=int(kernel_size) // 2,
                                       padding_mode="circular"))
                self.body = nn.Sequential(*convs)
                with torch.no_grad():
                    self.body[-1].weight.mul_(0.1)
                    self.body[-1].bias.zero_()

            def forward(self, z):
                return self.body(z[:, None, :])[:, 0, :]

        return PeriodicCNN()
    if architecture == "local":
        if kernel_size % 2 != 1 or kernel_size > d:
            raise SurroflowError(f"{kind}: kernel_size must be odd and <= {d}, got {kernel_size}")

        class LocalMLP(nn.Module):
            """One MLP shared by every grid point, fed the periodic stencil of ``kernel_size``
            points around it (translation-equivariant; the parallel/local forecasting idea of
            Pathak et al. 2018 with a single shared model)."""

            def __init__(self) -> None:
                super().__init__()
                half = int(kernel_size) // 2
                idx = (torch.arange(d)[:, None] + torch.arange(-half, half + 1)[None, :]) % d
                self.register_buffer("idx", idx, persistent=False)
                layers: list[Any] = []
                width = int(kernel_size)
                for h in hidden:
                    layers += [nn.Linear(width, int(h)), Act()]
                    width = int(h)
                layers.append(nn.Linear(width, 1))
                self.mlp = nn.Sequential(*layers)
                with torch.no_grad():
                    self.mlp[-1].weight.mul_(0.1)
                    self.mlp[-1].bias.zero_()

            def forward(self, z):
                return self.mlp(z[:, self.idx])[..., 0]

        return LocalMLP()
    raise SurroflowError(f"{kind}: architecture={architecture!r} is not allowed; allowed: ['dense', 'conv', 'local']")


class _TorchStepper(Forecaster):
    """Shared training loop: multi-step rollout loss with a curriculum, Adam, cosine decay."""

    uses_torch = True

    def _init_common(self, hidden, activation, architecture, channels, kernel_size, n_layers, lr,
                     weight_decay, n_iterations, batch_size, rollout_steps, noise, random_state, device, scaling,
                     augment):
        self.scaling = scaling
        self.augment = augment
        self.hidden = list(hidden) if hidden is not None else hidden
        self.activation = activation
        self.architecture = architecture
        self.channels = channels
        self.kernel_size = kernel_size
        self.n_layers = n_layers
        self.lr = lr
        self.weight_decay = weight_decay
        self.n_iterations = n_iterations
        self.batch_size = batch_size
        self.rollout_steps = rollout_steps
        self.noise = noise
        self.random_state = random_state
        self.device = device

    def _device(self):
        torch = _torch()
        if self.device == "cuda" and torch.cuda.is_available():
            return torch.device("cuda")
        if self.device not in ("cpu", "cuda"):
            raise SurroflowError(f"{self.kind}: device={self.device!r} is not allowed; allowed: ['cpu', 'cuda']")
        return torch.device("cpu")

    def _make_net(self, d):
        return _build_torch_net(self.kind, d, self.hidden or [], self.activation, self.architecture,
                                self.channels, self.kernel_size, self.n_layers)

    def _forward(self, net, z, scale):
        raise NotImplementedError

    AUGMENTS = ("none", "shift", "shift_reflect")

    def fit(self, trajectories, dt=1.0):
        if self.augment not in self.AUGMENTS:
            raise SurroflowError(f"{self.kind}: augment={self.augment!r} is not allowed; allowed: {list(self.AUGMENTS)}")
        super().fit(trajectories, dt)
        return self

    def _fit(self, X):
        torch = _torch()
        if self.augment != "none":
            # symmetric fields on a periodic grid: one mean and one scale for every point, so a
            # shifted (or reflected) state is standardised like the original
            self.mean_ = np.full_like(self.mean_, X.mean())
            self.scale_ = np.full_like(self.scale_, X.std())
        if self.random_state is not None:
            torch.manual_seed(int(self.random_state))
        rng = np.random.default_rng(self.random_state)
        dev = self._device()
        Z = self._z(X)
        n_traj, T, d = Z.shape
        K = int(min(self.rollout_steps, T - 1))
        inc = (Z[:, 1:] - Z[:, :-1]).reshape(-1, d)
        self.increment_scale_ = np.maximum(inc.std(axis=0), 1e-8)
        if self.augment != "none":
            self.increment_scale_ = np.full(d, float(np.sqrt(np.mean(self.increment_scale_ ** 2))))
        base_idx = torch.arange(d, device=dev)
        dtype = torch.float32
        net = self._make_net(d)
        net = net.to(device=dev, dtype=dtype)
        Zt = torch.as_tensor(Z, device=dev, dtype=dtype)
        scale = torch.as_tensor(self.increment_scale_, device=dev, dtype=dtype)
        opt = torch.optim.AdamW(net.parameters(), lr=float(self.lr), weight_decay=float(self.weight_decay))
        n_it = int(self.n_iterations)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, n_it), eta_min=0.01 * float(self.lr))
        losses = np.empty(n_it)
        for it in range(n_it):
            # curriculum: the unroll length grows from 1 to K over the first 60% of iterations
            k_now = int(min(K, 1 + (K - 1) * it / max(1, 0.6 * n_it)))
            ti = torch.as_tensor(rng.integers(0, n_traj, int(self.batch_size)), device=dev)
            si = torch.as_tensor(rng.integers(0, T - k_now, int(self.batch_size)), device=dev)
            steps = si[:, None] + torch.arange(k_now + 1, device=dev)[None, :]
            win = Zt[ti[:, None], steps]                        # (B, k+1, d)
            if self.augment != "none":                          # random circular shifts (and reflections)
                shift = torch.as_tensor(rng.integers(0, d, int(self.batch_size)), device=dev)
                idx = (base_idx[None, :] + shift[:, None]) % d
                if self.augment == "shift_reflect":
                    flip = torch.as_tensor(rng.random(int(self.batch_size)) < 0.5, device=dev)
                    idx = torch.where(flip[:, None], (-idx) % d, idx)
                    win = torch.where(flip[:, None, None], -win, win)
                win = torch.gather(win, 2, idx[:, None, :].expand(-1, win.shape[1], -1))
            z = win[:, 0]
            if self.noise:
                z = z + float(self.noise) * torch.randn_like(z)
            loss = torch.zeros((), dtype=z.dtype, device=dev)
            for k in range(1, k_now + 1):
                z = self._forward(net, z, scale)
                loss = loss + torch.mean((z - win[:, k]) ** 2)
            loss = loss / k_now
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            losses[it] = float(loss.detach())
        self.loss_history_ = losses
        self.net_ = net.to("cpu").eval()

    def _step_z(self, zhist):
        return self._rollout_z(zhist, 1)[:, 0]

    def _rollout_z(self, zhist, n_steps):
        torch = _torch()
        dev = self._device()
        net = self.net_.to(dev)
        dtype = next(net.parameters()).dtype
        scale = torch.as_tensor(self.increment_scale_, device=dev, dtype=dtype)
        z = torch.as_tensor(np.ascontiguousarray(zhist[:, -1]), device=dev, dtype=dtype)
        out = torch.empty((z.shape[0], n_steps, z.shape[1]), dtype=z.dtype, device=dev)
        dead = torch.zeros(z.shape[0], dtype=torch.bool, device=dev)
        with torch.no_grad():
            for k in range(n_steps):
                z = self._forward(net, z, scale)
                dead |= ~torch.all(torch.isfinite(z) & (z.abs() < BLOWUP), dim=1)
                z = torch.where(dead[:, None], torch.full_like(z, float("nan")), z)
                out[:, k] = z
        self.net_ = net.to("cpu")
        return out.cpu().numpy().astype(float)

    def _get_state(self):
        sd = {f"net__{k.replace('.', '__')}_": v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}
        return {"increment_scale_": self.increment_scale_, "loss_history_": self.loss_history_, **sd}

    def _set_state(self, state):
        torch = _torch()
        self.increment_scale_ = np.asarray(state["increment_scale_"], dtype=float)
        self.loss_history_ = np.asarray(state.get("loss_history_", np.empty(0)))
        net = self._make_net(self.n_state_)
        sd = {k[len("net__"):-1].replace("__", "."): torch.as_tensor(np.asarray(v, dtype=np.float32))
              for k, v in state.items() if k.startswith("net__")}
        net.load_state_dict(sd, strict=True)
        self.net_ = net.eval()


class MLPStepper(_TorchStepper):
    """Residual network stepper ``z_{k+1} = z_k + s ⊙ net(z_k)`` (``s``: increment scale).

    ``architecture = "dense"`` is an MLP with ``hidden`` widths; ``"conv"`` a translation-
    equivariant periodic 1-D CNN (``n_layers`` layers of ``channels`` channels, odd
    ``kernel_size``) for fields on periodic grids (full state only).  Trained with the mean
    squared error of ``rollout_steps``-step unrolls (curriculum from 1 step), Gaussian input
    ``noise`` (standardised units), AdamW and a cosine-annealed learning rate.  ``augment``
    (``shift`` or ``shift_reflect``) trains on randomly circularly shifted (and reflected,
    ``u(x) -> -u(-x)``) windows: the symmetries of a field on a periodic grid such as
    Kuramoto–Sivashinsky (full state only; one mean and scale for all points).
    """

    kind = "mlp_stepper"

    def __init__(self, hidden: Sequence[int] = (128, 128), activation: str = "gelu",
                 architecture: str = "dense", channels: int = 32, kernel_size: int = 5, n_layers: int = 4,
                 lr: float = 2e-3, weight_decay: float = 0.0, n_iterations: int = 3000,
                 batch_size: int = 128, rollout_steps: int = 10, noise: float = 0.0,
                 random_state: int | None = 0, device: str = "cpu", scaling: str = "component",
                 augment: str = "none") -> None:
        self._init_common(hidden, activation, architecture, channels, kernel_size, n_layers, lr,
                          weight_decay, n_iterations, batch_size, rollout_steps, noise, random_state, device,
                          scaling, augment)

    def _forward(self, net, z, scale):
        return z + scale * net(z)


class NeuralODE(_TorchStepper):
    """Neural ODE ``dz/dt = (s/dt) ⊙ net(z)`` integrated by ``substeps`` RK4 steps per sample
    interval (discretise-then-optimise: the loss is differentiated through the RK4 steps).
    Same network and training options as :class:`MLPStepper`."""

    kind = "node"

    def __init__(self, hidden: Sequence[int] = (128, 128), activation: str = "gelu",
                 architecture: str = "dense", channels: int = 32, kernel_size: int = 5, n_layers: int = 4,
                 lr: float = 2e-3, weight_decay: float = 0.0, n_iterations: int = 3000,
                 batch_size: int = 128, rollout_steps: int = 10, noise: float = 0.0, substeps: int = 1,
                 random_state: int | None = 0, device: str = "cpu", scaling: str = "component",
                 augment: str = "none") -> None:
        self._init_common(hidden, activation, architecture, channels, kernel_size, n_layers, lr,
                          weight_decay, n_iterations, batch_size, rollout_steps, noise, random_state, device,
                          scaling, augment)
        self.substeps = substeps

    def _forward(self, net, z, scale):
        # time in units of the sample interval: dz/dtau = scale * net(z), tau in [0, 1]
        h = 1.0 / int(self.substeps)
        for _ in range(int(self.substeps)):
            k1 = scale * net(z)
            k2 = scale * net(z + 0.5 * h * k1)
            k3 = scale * net(z + 0.5 * h * k2)
            k4 = scale * net(z + h * k3)
            z = z + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return z


# =============================================================================== POD wrapper
class Reduced(Forecaster):
    """A forecaster of ``inner_kind`` acting on the ``rank`` leading POD coefficients.

    The POD (exact SVD, mean-centred, uniform weights) is fitted on all training snapshots;
    forecasts are lifted back to the full state, so they carry the projection error.
    """

    kind = "reduced"

    def __init__(self, inner_kind: str = "ngrc", inner_params: dict[str, Any] | None = None,
                 rank: int = 20) -> None:
        self.inner_kind = inner_kind
        self.inner_params = dict(inner_params or {})
        self.rank = rank

    @property
    def uses_torch(self) -> bool:  # type: ignore[override]
        return forecaster_class(self.inner_kind).uses_torch

    @property
    def n_history_(self) -> int:
        return self.inner_.n_history_ if hasattr(self, "inner_") else 1

    def _fit(self, X):
        from ..reduction import POD
        d = X.shape[2]
        if int(self.rank) < 1:
            raise SurroflowError(f"reduced: rank must be >= 1, got {self.rank}")
        self.pod_ = POD(method="exact", rank=int(min(self.rank, d)), energy=None).fit(X.reshape(-1, d))
        A = self.pod_.transform(X.reshape(-1, d)).reshape(X.shape[0], X.shape[1], -1)
        self.inner_ = make_forecaster(self.inner_kind, **self.inner_params).fit(A, dt=self.dt_)
        resid = X.reshape(-1, d) - self.pod_.inverse_transform(A.reshape(-1, A.shape[2]))
        self.projection_error_ = np.asarray(np.sqrt(np.mean(resid ** 2)) / np.sqrt(np.mean(X ** 2)))

    def predict_step(self, history):
        return self.rollout(history, 1)[:, 0]

    def rollout(self, initial, n_steps):
        self._check_fitted()
        h = as_history(initial, self.n_state_)
        a = self.pod_.transform(h.reshape(-1, h.shape[2])).reshape(h.shape[0], h.shape[1], -1)
        with np.errstate(all="ignore"):
            pa = self.inner_.rollout(a, n_steps)
            return self.pod_.inverse_transform(pa.reshape(-1, pa.shape[2])).reshape(h.shape[0], int(n_steps), -1)

    def _get_state(self):
        st = {"pod_modes_": self.pod_.modes_, "pod_mean_": self.pod_.mean_, "pod_weights_": self.pod_.weights_,
              "pod_singular_values_": self.pod_.singular_values_, "projection_error_": self.projection_error_}
        st.update({f"inner__{k}": v for k, v in self.inner_.get_state().items()})
        return st

    def _set_state(self, state):
        from ..reduction import POD
        pod = POD(method="exact", rank=int(self.rank), energy=None)
        pod.modes_ = np.asarray(state["pod_modes_"], dtype=float)
        pod.mean_ = np.asarray(state["pod_mean_"], dtype=float)
        pod.weights_ = np.asarray(state["pod_weights_"], dtype=float)
        pod.singular_values_ = np.asarray(state["pod_singular_values_"], dtype=float)
        pod.n_modes_ = pod.modes_.shape[0]
        pod.energy_ = np.cumsum(pod.singular_values_ ** 2) / np.sum(pod.singular_values_ ** 2)
        self.pod_ = pod
        self.projection_error_ = np.asarray(state.get("projection_error_", np.nan))
        inner = {k[len("inner__"):]: v for k, v in state.items() if k.startswith("inner__")}
        self.inner_ = make_forecaster(self.inner_kind, **self.inner_params).set_state(inner)


# =============================================================================== registry and storage
_KINDS: dict[str, type[Forecaster]] = {
    "persistence": Persistence,
    "climatology": Climatology,
    "dmd": DMD,
    "opinf": OpInf,
    "ngrc": NGRC,
    "rff": RandomFeatures,
    "mlp_stepper": MLPStepper,
    "node": NeuralODE,
    "reduced": Reduced,
}
#: the baselines every forecast evaluation reports
BASELINES = ("persistence", "climatology")


def kinds() -> list[str]:
    return sorted(_KINDS)


def forecaster_class(kind: str) -> type[Forecaster]:
    if kind not in _KINDS:
        raise SurroflowError(f"unknown forecaster kind {kind!r}; allowed: {kinds()}")
    return _KINDS[kind]


def make_forecaster(kind: str, **params: Any) -> Forecaster:
    """Build a forecaster of ``kind`` with hyperparameters ``params`` (unknown ones named)."""
    cls = forecaster_class(kind)
    sig = inspect.signature(cls.__init__)
    unknown = sorted(set(params) - set(sig.parameters) - {"self"})
    if unknown:
        allowed = sorted(k for k in sig.parameters if k != "self")
        raise SurroflowError(f"forecaster {kind!r}: unknown hyperparameter(s) {unknown}; allowed: {allowed}")
    return cls(**params)


def forecaster_to_dataset(model: Forecaster, attrs: dict[str, Any] | None = None) -> xr.Dataset:
    """The model as a Dataset: each state array a variable, hyperparameters as JSON."""
    data_vars = {}
    for name, arr in model.get_state().items():
        arr = np.asarray(arr)
        if arr.dtype == bool:
            arr = arr.astype("i1")
        dims = tuple(f"{name}_dim{i}" for i in range(arr.ndim))
        data_vars[f"state__{name}"] = (dims, arr)
    return xr.Dataset(data_vars, attrs={"forecaster_kind": model.kind,
                                        "hyperparameters": json.dumps(model.get_params(), default=list),
                                        **(attrs or {})})


def forecaster_from_dataset(ds: xr.Dataset) -> Forecaster:
    kind = ds.attrs.get("forecaster_kind")
    if not kind:
        raise SurroflowError("dataset holds no forecaster (attribute 'forecaster_kind' missing)")
    model = make_forecaster(str(kind), **json.loads(ds.attrs["hyperparameters"]))
    state = {str(k)[len("state__"):]: ds[k].values for k in ds.data_vars if str(k).startswith("state__")}
    return model.set_state(state)


__all__ = ["Forecaster", "Persistence", "Climatology", "DMD", "OpInf", "NGRC", "RandomFeatures",
           "MLPStepper", "NeuralODE", "Reduced", "BASELINES", "make_forecaster", "forecaster_class",
           "kinds", "forecaster_to_dataset", "forecaster_from_dataset", "polynomial_features",
           "ridge_solve", "BLOWUP"]
