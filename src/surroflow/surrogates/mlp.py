"""A multilayer perceptron surrogate in PyTorch, with the scikit-learn-style surrogate API.

:class:`MLPSurrogate` maps ``X`` ``(n, n_inputs)`` to ``Y`` ``(n, n_outputs)`` with a fully
connected network on standardised inputs and outputs.  Training is seeded and deterministic on
CPU (same ``random_state`` and thread count give bitwise-identical weights), runs on CPU by
default and on CUDA only when asked for.  The learned state is the network's ``state_dict`` as
numpy arrays (the input/output scalers are buffers of the network, so the ``state_dict`` alone
reproduces predictions); loading never unpickles anything.

Example
-------
>>> model = MLPSurrogate(hidden=[64, 64], random_state=0).fit(X, Y)
>>> Y_hat = model.predict(X_new)
>>> model.save_state_dict("mlp.pt")                      # torch.save of a dict of tensors
>>> same = MLPSurrogate(hidden=[64, 64]).load_state_dict("mlp.pt")   # weights_only=True
"""
from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .. import SurroflowError
from .base import Surrogate
from .registry import register
from .torch_utils import ACTIVATIONS as _ACTIVATIONS
from .torch_utils import build_mlp, resolve_device, seeded

_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}
_HISTORY = ("train_loss", "val_loss", "best_epoch")
#: Rows per block when predicting (dense networks; an FNO's rows are whole fields, ``channels``
#: values per grid point each: 128-row blocks stay in cache; on the Burgers FNO's 128 test
#: points, one core, a batched query costs 6.7 ms per point at 128, 10.3 ms at 512, against
#: 11 ms for a one-point query)
_PREDICT_BLOCK = 65536
_FNO_PREDICT_BLOCK = 128


ARCHITECTURES = ("dense", "fno")


def _build(n_inputs: int, n_outputs: int, hidden: Sequence[int], activation: str, architecture: str,
           modes: int, channels: int, n_layers: int) -> nn.Module:
    """The network of :class:`MLPSurrogate`: ``dense`` (an MLP of ``hidden`` widths) or ``fno``
    (:class:`~surroflow.surrogates.fno.ParametricFNO1d`: the ``n_outputs`` are the values of one
    field on a periodic 1-D grid)."""
    if architecture == "dense":
        return build_mlp(n_inputs, n_outputs, hidden, activation, "mlp")
    if architecture == "fno":
        from .fno import ParametricFNO1d
        return ParametricFNO1d(n_inputs, n_outputs, modes, channels, n_layers, activation, "mlp (architecture fno)")
    raise SurroflowError(f"mlp architecture must be one of {list(ARCHITECTURES)}, got {architecture!r}")


class _Net(nn.Module):
    """Scaled network: ``y = y_mean + y_std * net((x - x_mean) / x_std)``; scalers are buffers."""

    def __init__(self, n_inputs: int, n_outputs: int, hidden: Sequence[int], activation: str,
                 architecture: str = "dense", modes: int = 16, channels: int = 32, n_layers: int = 4) -> None:
        super().__init__()
        self.net = _build(n_inputs, n_outputs, hidden, activation, architecture, modes, channels, n_layers)
        self.register_buffer("x_mean", torch.zeros(n_inputs))
        self.register_buffer("x_std", torch.ones(n_inputs))
        self.register_buffer("y_mean", torch.zeros(n_outputs))
        self.register_buffer("y_std", torch.ones(n_outputs))

    def forward_scaled(self, xs: torch.Tensor) -> torch.Tensor:
        """Network on standardised inputs, giving standardised outputs (used for training)."""
        return self.net(xs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.x_mean) / self.x_std) * self.y_std + self.y_mean


def _to_netcdf_name(key: str) -> str:
    return key.replace(".", "__")


def _from_netcdf_name(name: str) -> str:
    return name.replace("__", ".")


@register("surrogate", "mlp")
class MLPSurrogate(Surrogate):
    """Fully connected network trained with Adam (or full-batch L-BFGS) and early stopping.

    Parameters
    ----------
    hidden : widths of the hidden layers (default ``[64, 64]``).
    activation : ``"tanh"``, ``"gelu"``, ``"relu"`` or ``"silu"`` (smooth ones suit smooth maps).
    learning_rate : initial Adam learning rate; halved when the monitored loss stalls for
        ``max(patience // 4, 5)`` epochs (``ReduceLROnPlateau``), down to 1e-3 of its start.
        Not used by L-BFGS (unit step with a strong-Wolfe line search).
    weight_decay : AdamW weight decay; with L-BFGS an L2 penalty ``weight_decay/2 * |w|^2``
        (0 disables it).
    max_epochs : most epochs: passes over the training rows (Adam) or L-BFGS iterations.
    batch_size : rows per Adam step (the whole set if larger than it); L-BFGS is full batch.
    validation_fraction : share of the rows held out (seeded split) to monitor the loss; the
        weights with the best validation loss are kept.  0 monitors the training loss.
    patience : epochs without improvement of the monitored loss before training stops.
    device : ``"cpu"`` (default), ``"cuda"`` (an error if CUDA is absent) or ``"auto"`` (CUDA if
        present).  A model fitted on CUDA and loaded where CUDA is absent predicts on CPU.
    random_state : seed for the initial weights, the validation split and the batch order
        (``None``: a fresh random seed).
    dtype : ``"float32"`` (default) or ``"float64"``.
    optimizer : ``"adam"`` (default; mini-batches, any data size) or ``"lbfgs"`` (full batch,
        one quasi-Newton iteration per epoch: usually more accurate on small smooth problems,
        up to a few thousand rows).
    architecture : ``"dense"`` (default: a fully connected network of ``hidden`` widths) or
        ``"fno"``: a Fourier neural operator from the inputs to a field on a periodic 1-D grid
        (:class:`~surroflow.surrogates.fno.ParametricFNO1d`: the inputs are constant channels
        over the grid, ``n_layers`` Fourier layers of ``channels`` channels keep ``modes``
        modes); its outputs must be the grid values of one field, i.e. a full-field model
        (``basis: none``) of a one-variable study on a 1-D periodic grid, pointwise formulation.
    modes, channels, n_layers : the Fourier layers of ``architecture: fno`` (ignored by ``dense``).
    normalize_y : ``True`` standardises each output, so the loss weighs all outputs equally;
        ``False`` (default) centres each output and divides all by one common scale, so the
        loss is the squared error of the reconstructed field when the outputs are coefficients
        in an orthonormal (POD) basis and the small, hard-to-learn trailing modes do not take
        the network's capacity.

    Learned attributes: ``net_`` (the torch module, scalers included), ``device_``,
    ``train_loss_`` and ``val_loss_`` (per-epoch mean squared errors of the scaled outputs;
    ``val_loss_`` is NaN without a validation set), ``best_epoch_``, ``n_inputs_``,
    ``n_outputs_``.

    The number of CPU threads torch uses is the caller's business (``torch.set_num_threads``):
    on a shared node, one or two threads are fastest for networks of this size.
    """

    kind = "mlp"
    #: formulation auto keeps the MLP pointwise: with one row per sample (64 on the Burgers study
    #: instead of 3,264) the default epoch budget is 26x fewer Adam steps, 0.32% test error
    #: against 0.086% (bench/RESULTS_queries.md); formulation 'trajectory' remains available
    auto_trajectory = False
    supports_std = False

    #: value spec of each hyperparameter, checked before any job (surrogates.registry.check_value)
    hyperparameter_specs = {"hidden": "ints>=1", "activation": ["gelu", "relu", "silu", "tanh"], "learning_rate": "float>0",
                            "weight_decay": "float>=0", "max_epochs": "int>=1", "batch_size": "int>=1",
                            "validation_fraction": "float[0,1)", "patience": "int>=1", "device": ["cpu", "cuda", "auto"],
                            "random_state": "int>=0|None", "dtype": ["float32", "float64"], "optimizer": ["adam", "lbfgs"],
                            "normalize_y": "bool", "architecture": ["dense", "fno"], "modes": "int>=1",
                            "channels": "int>=1", "n_layers": "int>=1"}

    def __init__(self, hidden: Sequence[int] = (64, 64), activation: str = "tanh",
                 learning_rate: float = 3e-3, weight_decay: float = 0.0, max_epochs: int = 1000,
                 batch_size: int = 128, validation_fraction: float = 0.1, patience: int = 100,
                 device: str = "cpu", random_state: int | None = None, dtype: str = "float32",
                 optimizer: str = "adam", normalize_y: bool = False, architecture: str = "dense",
                 modes: int = 16, channels: int = 32, n_layers: int = 4) -> None:
        self.hidden = hidden
        self.activation = activation
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.dtype = dtype
        self.optimizer = optimizer
        self.normalize_y = normalize_y
        self.architecture = architecture
        self.modes = modes
        self.channels = channels
        self.n_layers = n_layers

    # -- validation helpers
    def _check_params(self) -> None:
        if self.activation not in _ACTIVATIONS:
            raise SurroflowError(f"mlp activation must be one of {sorted(_ACTIVATIONS)}, got {self.activation!r}")
        if self.dtype not in _DTYPES:
            raise SurroflowError(f"mlp dtype must be one of {sorted(_DTYPES)}, got {self.dtype!r}")
        if not isinstance(self.hidden, (list, tuple)) or not all(
                isinstance(h, (int, np.integer)) and h >= 1 for h in self.hidden):
            raise SurroflowError(f"mlp hidden must be a list of positive integers, got {self.hidden!r}")
        for name in ("max_epochs", "batch_size", "patience"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise SurroflowError(f"mlp {name} must be a positive integer, got {value!r}")
        if not 0.0 <= float(self.validation_fraction) < 1.0:
            raise SurroflowError(f"mlp validation_fraction must be in [0, 1), got {self.validation_fraction!r}")
        if self.optimizer not in ("adam", "lbfgs"):
            raise SurroflowError(f"mlp optimizer must be 'adam' or 'lbfgs', got {self.optimizer!r}")
        if not float(self.learning_rate) > 0 or not float(self.weight_decay) >= 0:
            raise SurroflowError("mlp learning_rate must be > 0 and weight_decay >= 0")
        if self.architecture not in ARCHITECTURES:
            raise SurroflowError(f"mlp architecture must be one of {list(ARCHITECTURES)}, got {self.architecture!r}")

    def _net(self, n_inputs: int, n_outputs: int) -> _Net:
        return _Net(n_inputs, n_outputs, [int(h) for h in self.hidden], self.activation, self.architecture,
                    int(self.modes), int(self.channels), int(self.n_layers))

    def _resolve_device(self, strict: bool = True) -> torch.device:
        """The device to run on; ``strict=False`` (loading) falls back to CPU when CUDA is absent."""
        return resolve_device(self.device, "mlp", strict)

    # -- fit
    def fit(self, X: np.ndarray, Y: np.ndarray) -> "MLPSurrogate":
        X, Y = self._check_xy(X, Y)
        self._check_params()
        device = self._resolve_device()
        dtype = _DTYPES[self.dtype]
        n = X.shape[0]
        rng = np.random.default_rng(self.random_state)
        seed = int(rng.integers(2**62))

        # seeded split: validation rows drawn without replacement
        n_val = int(math.ceil(float(self.validation_fraction) * n)) if self.validation_fraction > 0 else 0
        if n - n_val < 1:
            raise SurroflowError(f"mlp needs at least 1 training row after the validation split (n={n})")
        perm = rng.permutation(n)
        val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])

        x_mean, x_std = X[train_idx].mean(axis=0), X[train_idx].std(axis=0)
        x_std = np.where(x_std > 0, x_std, 1.0)
        y_mean = Y[train_idx].mean(axis=0)
        if self.normalize_y:
            y_std = Y[train_idx].std(axis=0)
            y_std = np.where(y_std > 0, y_std, 1.0)
        else:  # one common scale: the loss weighs outputs by their variance (POD energy)
            common = float(np.sqrt(np.mean((Y[train_idx] - y_mean) ** 2)))
            y_std = np.full(Y.shape[1], common if common > 0 else 1.0)

        # weights initialised from a private generator: the global torch RNG is left untouched
        with seeded(seed):
            net = self._net(X.shape[1], Y.shape[1]).to(dtype=dtype)
        with torch.no_grad():
            for name, arr in (("x_mean", x_mean), ("x_std", x_std), ("y_mean", y_mean), ("y_std", y_std)):
                getattr(net, name).copy_(torch.as_tensor(arr, dtype=dtype))
        net = net.to(device)

        def scaled(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            xs = torch.as_tensor((X[idx] - x_mean) / x_std, dtype=dtype, device=device)
            ys = torch.as_tensor((Y[idx] - y_mean) / y_std, dtype=dtype, device=device)
            return xs, ys

        x_tr, y_tr = scaled(train_idx)
        x_va, y_va = scaled(val_idx) if n_val else (None, None)
        n_tr = train_idx.size
        batch = min(int(self.batch_size), n_tr)
        shuffle = torch.Generator(device="cpu").manual_seed(seed + 1)

        lbfgs = self.optimizer == "lbfgs"
        if lbfgs:
            # one iteration per epoch; max_eval bounds the line search (its default, 1.25 *
            # max_iter, would leave the line search no evaluation at all)
            opt: torch.optim.Optimizer = torch.optim.LBFGS(
                net.parameters(), lr=1.0, max_iter=1, max_eval=25, history_size=50,
                line_search_fn="strong_wolfe", tolerance_grad=0.0, tolerance_change=0.0)
        elif self.weight_decay > 0:
            opt = torch.optim.AdamW(net.parameters(), lr=float(self.learning_rate),
                                    weight_decay=float(self.weight_decay))
        else:
            opt = torch.optim.Adam(net.parameters(), lr=float(self.learning_rate))
        sched = (None if lbfgs else torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, factor=0.5, patience=max(int(self.patience) // 4, 5), min_lr=float(self.learning_rate) * 1e-3))
        mse = nn.MSELoss()
        decay = float(self.weight_decay)

        def closure() -> torch.Tensor:  # full-batch objective for L-BFGS
            opt.zero_grad(set_to_none=True)
            loss = mse(net.forward_scaled(x_tr), y_tr)
            if decay > 0:
                loss = loss + 0.5 * decay * sum((p ** 2).sum() for p in net.parameters())
            loss.backward()
            return loss

        train_hist: list[float] = []
        val_hist: list[float] = []
        best, best_epoch, best_state, stale = math.inf, 0, copy.deepcopy(net.state_dict()), 0
        for epoch in range(int(self.max_epochs)):
            net.train()
            if lbfgs:
                total = opt.step(closure).detach() * n_tr  # loss before the step
            else:
                order = torch.randperm(n_tr, generator=shuffle).to(device)
                total = torch.zeros((), dtype=dtype, device=device)
                for start in range(0, n_tr, batch):
                    idx = order[start:start + batch]
                    opt.zero_grad(set_to_none=True)
                    loss = mse(net.forward_scaled(x_tr[idx]), y_tr[idx])
                    loss.backward()
                    opt.step()
                    total += loss.detach() * idx.numel()
            train_loss = float(total) / n_tr
            if not math.isfinite(train_loss):
                raise SurroflowError(f"mlp training diverged at epoch {epoch} (loss {train_loss}); "
                                     "lower learning_rate")
            train_hist.append(train_loss)
            if x_va is not None:
                net.eval()
                with torch.no_grad():
                    monitored = float(mse(net.forward_scaled(x_va), y_va))
                val_hist.append(monitored)
            else:
                monitored = train_loss
                val_hist.append(math.nan)
            if sched is not None:
                sched.step(monitored)
            if monitored < best:
                best, best_epoch, stale = monitored, epoch, 0
                best_state = copy.deepcopy(net.state_dict())
            else:
                stale += 1
                if stale >= self.patience:
                    break
        net.load_state_dict(best_state)
        net.eval()

        self.net_ = net
        self.device_ = str(device)
        self.train_loss_ = np.asarray(train_hist)
        self.val_loss_ = np.asarray(val_hist)
        self.best_epoch_ = best_epoch
        self.n_inputs_, self.n_outputs_ = X.shape[1], Y.shape[1]
        return self

    # -- predict
    def predict(self, X: np.ndarray, return_std: bool = False) -> Any:
        """Predicted outputs ``(n, n_outputs)`` as float64 numpy (no ``return_std``: raises)."""
        if return_std:
            raise SurroflowError("surrogate kind 'mlp' gives no uncertainty: call predict(X) without "
                                 "return_std (use kind 'gaussian_process' for a predictive std)")
        X = self._check_predict_input(X, "net_")
        dtype = _DTYPES[self.dtype]
        out = np.empty((X.shape[0], self.n_outputs_))
        rows = _FNO_PREDICT_BLOCK if self.architecture == "fno" else _PREDICT_BLOCK
        with torch.inference_mode():
            for start in range(0, X.shape[0], rows):
                block = slice(start, start + rows)
                x = torch.as_tensor(X[block], dtype=dtype, device=self.device_)
                out[block] = self.net_(x).cpu().numpy()
        return out

    # -- state
    def state_dict(self) -> dict[str, torch.Tensor]:
        """The network's ``state_dict`` on CPU (weights and scalers) plus the training history."""
        if not hasattr(self, "net_"):
            raise SurroflowError("mlp surrogate is not fitted: nothing to save")
        sd = {k: v.detach().cpu().clone() for k, v in self.net_.state_dict().items()}
        sd["train_loss"] = torch.as_tensor(self.train_loss_)
        sd["val_loss"] = torch.as_tensor(self.val_loss_)
        sd["best_epoch"] = torch.as_tensor(self.best_epoch_)
        return sd

    def get_state(self) -> dict[str, np.ndarray]:
        """``state_dict`` arrays with '.' in the keys replaced by '__' (valid NetCDF names)."""
        return {_to_netcdf_name(k): v.numpy() for k, v in self.state_dict().items()}

    def set_state(self, state: dict[str, Any]) -> "MLPSurrogate":
        """Rebuild the network from arrays (or tensors) keyed as in :meth:`get_state` or
        :meth:`state_dict`; loads them with ``load_state_dict`` (strict), no unpickling."""
        self._check_params()
        sd = {_from_netcdf_name(str(k)): v for k, v in state.items()}
        if "x_mean" not in sd or "y_mean" not in sd:
            raise SurroflowError(f"mlp state lacks the scalers 'x_mean' and 'y_mean'; got {sorted(sd)}")
        dtype = _DTYPES[self.dtype]
        n_inputs, n_outputs = (int(np.prod(np.shape(sd[k]))) for k in ("x_mean", "y_mean"))
        net = self._net(n_inputs, n_outputs).to(dtype=dtype)
        tensors = {k: torch.as_tensor(np.asarray(v), dtype=dtype) for k, v in sd.items() if k not in _HISTORY}
        try:
            net.load_state_dict(tensors, strict=True)
        except RuntimeError as exc:
            raise SurroflowError(f"mlp state does not match the hyperparameters architecture={self.architecture!r}, "
                                 f"hidden={list(self.hidden)}, dtype={self.dtype!r}: {exc}") from None
        device = self._resolve_device(strict=False)
        self.net_ = net.to(device).eval()
        self.device_ = str(device)
        self.train_loss_ = np.asarray(sd.get("train_loss", np.empty(0)), dtype=float)
        self.val_loss_ = np.asarray(sd.get("val_loss", np.empty(0)), dtype=float)
        self.best_epoch_ = int(np.asarray(sd.get("best_epoch", -1)))
        self.n_inputs_, self.n_outputs_ = n_inputs, n_outputs
        return self

    def save_state_dict(self, path: str | os.PathLike[str]) -> Path:
        """Save :meth:`state_dict` (tensors only) with :func:`torch.save` to a ``.pt`` file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), path)
        return path

    def load_state_dict(self, path: str | os.PathLike[str]) -> "MLPSurrogate":
        """Load a file written by :meth:`save_state_dict` with ``torch.load(weights_only=True)``;
        the hyperparameters (``hidden``, ``activation``, ``dtype``) must match those it was fitted with."""
        try:
            sd = torch.load(Path(path), map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise SurroflowError(f"{path}: file not found") from None
        except Exception as exc:  # unpickling refused or a damaged file
            raise SurroflowError(f"{path}: not a tensor-only state_dict ({type(exc).__name__}: {exc})") from None
        if not isinstance(sd, dict):
            raise SurroflowError(f"{path}: expected a dict of tensors, got {type(sd).__name__}")
        return self.set_state(sd)


__all__ = ["MLPSurrogate"]
