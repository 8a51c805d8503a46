"""Neural forecasters in PyTorch: a residual stepper (``mlp_stepper``) and a neural ODE
(``node``), trained with a multi-step rollout loss.

Networks, seeding and the device policy come from :mod:`surroflow.surrogates.torch_utils`
(``cuda`` without CUDA is an error when fitting; a model loaded without CUDA predicts on CPU).
Torch is imported with this module, which the registry imports only for these kinds.
Training logs a line every 10% of the iterations at INFO (count, rate, ETA, loss:
:class:`surroflow.logging_utils.Progress`); it reads the loss already computed, so the
training is the same with and without it.
"""
from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from .. import SurroflowError
from ..logging_utils import Progress
from ..surrogates.registry import register
from ..surrogates.torch_utils import activation, build_mlp, resolve_device, seeded
from .base import BLOWUP, Forecaster

log = logging.getLogger("surroflow.forecast.neural")


def build_stepper_net(kind: str, d: int, hidden: Sequence[int], act: str, architecture: str,
                      channels: int, kernel_size: int, n_layers: int, modes: int = 16) -> nn.Module:
    """The network of a torch stepper: ``dense`` (an MLP on the whole state), ``conv`` (periodic
    1-D CNN), ``local`` (one MLP shared by every grid point) or ``fno`` (a Fourier neural
    operator, :mod:`surroflow.surrogates.fno`: ``n_layers`` Fourier layers of ``channels``
    channels and ``modes`` modes); the output layer starts small."""
    Act = activation(act, kind)
    if architecture == "dense":
        return build_mlp(d, d, hidden, act, kind, last_layer_scale=0.1)
    if architecture == "fno":
        from ..surrogates.fno import FNO1d
        if d // 2 + 1 < int(modes):
            raise SurroflowError(f"{kind}: a state of {d} points has {d // 2 + 1} Fourier modes, fewer than "
                                 f"modes={modes}")
        return FNO1d(int(modes), int(channels), int(n_layers), act, kind, last_layer_scale=0.1)
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
    raise SurroflowError(f"{kind}: architecture={architecture!r} is not allowed; allowed: "
                         "['dense', 'conv', 'local', 'fno']")


class _Validation:
    """Early stopping on held-out trajectories: the ``K``-step rollout loss on fixed windows
    (up to 256, drawn once), the best weights kept in memory and restored at the end."""

    def __init__(self, model: "_TorchStepper", net: nn.Module, Zval: np.ndarray, K: int, scale: Any,
                 dev: torch.device, dtype: Any, rng: np.random.Generator) -> None:
        n, T, _ = Zval.shape
        n_win = int(min(256, n * (T - K)))
        ti, si = rng.integers(0, n, n_win), rng.integers(0, T - K, n_win)
        win = np.stack([Zval[i, s:s + K + 1] for i, s in zip(ti, si)])
        self.win = torch.as_tensor(win, device=dev, dtype=dtype)
        self.model, self.net, self.K, self.scale = model, net, K, scale
        self.best, self.best_it, self.best_state, self.bad = np.inf, 0, None, 0
        self.history: list[tuple[int, float]] = []

    def loss(self) -> float:
        with torch.no_grad():
            z, tot = self.win[:, 0], 0.0
            for k in range(1, self.K + 1):
                z = self.model._forward(self.net, z, self.scale)
                tot += float(torch.mean((z - self.win[:, k]) ** 2))
        v = tot / self.K
        return v if np.isfinite(v) else np.inf

    def check(self, it: int) -> int:
        """Record the validation loss after ``it`` iterations; evaluations without improvement."""
        v = self.loss()
        self.history.append((it, v))
        if v < self.best:
            self.best, self.best_it, self.bad = v, it, 0
            self.best_state = {k: t.detach().clone() for k, t in self.net.state_dict().items()}
        else:
            self.bad += 1
        return self.bad

    def restore(self) -> None:
        if self.best_state is not None:
            self.net.load_state_dict(self.best_state)


class _TorchStepper(Forecaster):
    """Shared training loop: multi-step rollout loss with a curriculum, Adam, cosine decay."""

    uses_torch = True

    def _init_common(self, hidden, activation, architecture, channels, kernel_size, n_layers, lr,
                     weight_decay, n_iterations, batch_size, rollout_steps, noise, random_state, device, scaling,
                     augment, val_fraction=0.0, patience=5, eval_every=100, curriculum=0.6,
                     curriculum_power=1.0, lr_schedule="cosine"):
        self.curriculum = curriculum
        self.curriculum_power = curriculum_power
        self.lr_schedule = lr_schedule
        self.val_fraction = val_fraction
        self.patience = patience
        self.eval_every = eval_every
        self.scaling = scaling
        self.augment = augment
        self.hidden = hidden
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

    def _device(self, strict: bool = True) -> torch.device:
        """Fitting: ``cuda`` without CUDA is an error; predicting (``strict=False``) falls back to CPU."""
        return resolve_device(self.device, self.kind, strict)

    def _make_net(self, d):
        return build_stepper_net(self.kind, d, [int(h) for h in (self.hidden or [])], self.activation,
                                 self.architecture, self.channels, self.kernel_size, self.n_layers,
                                 int(getattr(self, "modes", 16)))

    def _forward(self, net, z, scale):
        raise NotImplementedError

    AUGMENTS = ("none", "shift", "shift_reflect")
    LR_SCHEDULES = ("cosine", "onecycle")

    def fit(self, trajectories, dt=1.0):
        if self.augment not in self.AUGMENTS:
            raise SurroflowError(f"{self.kind}: augment={self.augment!r} is not allowed; allowed: {list(self.AUGMENTS)}")
        if self.lr_schedule not in self.LR_SCHEDULES:
            raise SurroflowError(f"{self.kind}: lr_schedule={self.lr_schedule!r} is not allowed; "
                                 f"allowed: {list(self.LR_SCHEDULES)}")
        if not 0 <= float(self.curriculum) <= 1 or not float(self.curriculum_power) > 0:
            raise SurroflowError(f"{self.kind}: curriculum must be in [0, 1] and curriculum_power > 0; "
                                 f"got {self.curriculum} and {self.curriculum_power}")
        super().fit(trajectories, dt)
        return self

    def _fit(self, X):
        dev = self._device()
        ctx = seeded(int(self.random_state), dev) if self.random_state is not None else nullcontext()
        with ctx:
            self._train(X, dev)

    def _train(self, X, dev):
        if self.augment != "none":
            # symmetric fields on a periodic grid: one mean and one scale for every point, so a
            # shifted (or reflected) state is standardised like the original
            self.mean_ = np.full_like(self.mean_, X.mean())
            self.scale_ = np.full_like(self.scale_, X.std())
        rng = np.random.default_rng(self.random_state)
        Z = self._z(X)
        Zval = None
        if float(self.val_fraction) > 0:
            if not float(self.val_fraction) < 1 or Z.shape[0] < 2:
                raise SurroflowError(f"{self.kind}: val_fraction must be in [0, 1) and needs >= 2 training "
                                     f"trajectories; got {self.val_fraction} with {Z.shape[0]}")
            n_val = int(min(Z.shape[0] - 1, max(1, round(float(self.val_fraction) * Z.shape[0]))))
            perm = rng.permutation(Z.shape[0])
            Zval, Z = Z[np.sort(perm[:n_val])], Z[np.sort(perm[n_val:])]
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
        if self.lr_schedule == "onecycle":
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=float(self.lr), total_steps=max(1, n_it),
                                                        pct_start=0.1, div_factor=10.0, final_div_factor=10.0)
        else:
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, n_it), eta_min=0.01 * float(self.lr))
        ramp = max(1.0, float(self.curriculum) * n_it)
        losses = np.empty(n_it)
        val = _Validation(self, net, Zval, K, scale, dev, dtype, rng) if Zval is not None else None
        # a line every 10% of the iterations (INFO; it reads the loss already computed, nothing else)
        progress = Progress(n_it, f"{self.kind} training", unit="iterations", logger=log, every_s=None)
        for it in range(n_it):
            # curriculum: the unroll length grows from 1 to K over the first `curriculum` fraction
            # of the iterations (as (it / ramp) ** curriculum_power: > 1 lingers at short unrolls)
            k_now = int(min(K, 1 + (K - 1) * min(1.0, it / ramp) ** float(self.curriculum_power)))
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
            progress.update(1, f"loss {losses[it]:.3g}")
            # early stopping: once the curriculum has reached K steps, every `eval_every` iterations
            if val is not None and k_now == K and ((it + 1) % int(self.eval_every) == 0 or it + 1 == n_it):
                if val.check(it + 1) >= int(self.patience):
                    losses = losses[:it + 1]
                    log.info("%s training: stopped early after %d of %d iterations (best validation loss "
                             "%.3g at %d)", self.kind, it + 1, n_it, val.best, val.best_it)
                    break
        self.loss_history_ = losses
        self.n_iterations_run_ = int(losses.size)
        if val is not None:
            val.restore()
            self.val_loss_history_ = np.asarray(val.history, dtype=float).reshape(-1, 2)
            self.best_iteration_ = int(val.best_it)
        self.net_ = net.to("cpu").eval()

    def _step_z(self, zhist):
        return self._rollout_z(zhist, 1)[:, 0]

    def _rollout_z(self, zhist, n_steps):
        dev = self._device(strict=False)
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
        extra = {k: np.asarray(getattr(self, k)) for k in ("val_loss_history_", "best_iteration_")
                 if hasattr(self, k)}
        return {"increment_scale_": self.increment_scale_, "loss_history_": self.loss_history_, **extra, **sd}

    def _set_state(self, state):
        self.increment_scale_ = np.asarray(state["increment_scale_"], dtype=float)
        self.loss_history_ = np.asarray(state.get("loss_history_", np.empty(0)))
        if "val_loss_history_" in state:
            self.val_loss_history_ = np.asarray(state["val_loss_history_"], dtype=float).reshape(-1, 2)
        if "best_iteration_" in state:
            self.best_iteration_ = int(np.asarray(state["best_iteration_"]))
        net = self._make_net(self.n_state_)
        sd = {k[len("net__"):-1].replace("__", "."): torch.as_tensor(np.asarray(v, dtype=np.float32))
              for k, v in state.items() if k.startswith("net__")}
        net.load_state_dict(sd, strict=True)
        self.net_ = net.eval()


@register("forecaster", "mlp_stepper")
class MLPStepper(_TorchStepper):
    """Residual network stepper ``z_{k+1} = z_k + s ⊙ net(z_k)`` (``s``: increment scale).

    ``architecture = "dense"`` is an MLP with ``hidden`` widths; ``"conv"`` a translation-
    equivariant periodic 1-D CNN (``n_layers`` layers of ``channels`` channels, odd
    ``kernel_size``) for fields on periodic grids (full state only); ``"fno"`` a Fourier neural
    operator (``n_layers`` Fourier layers of ``channels`` channels keeping ``modes`` modes,
    :mod:`surroflow.surrogates.fno`; periodic grids, full state).  Trained with the mean
    squared error of ``rollout_steps``-step unrolls (curriculum from 1 step), Gaussian input
    ``noise`` (standardised units), AdamW and a cosine-annealed learning rate.  ``augment``
    (``shift`` or ``shift_reflect``) trains on randomly circularly shifted (and reflected,
    ``u(x) -> -u(-x)``) windows: the symmetries of a field on a periodic grid such as
    Kuramoto–Sivashinsky (full state only; one mean and scale for all points).
    ``val_fraction > 0`` holds out that fraction of the training trajectories and stops early:
    once the curriculum has reached ``rollout_steps``, the held-out ``rollout_steps``-step loss is
    evaluated every ``eval_every`` iterations, training stops after ``patience`` evaluations
    without improvement, and the best weights are restored (``best_iteration_``,
    ``val_loss_history_``, ``n_iterations_run_``).  The unroll length grows from 1 to
    ``rollout_steps`` over the first ``curriculum`` fraction of the iterations as
    ``(it / ramp) ** curriculum_power`` (> 1 lingers at short unrolls); ``lr_schedule`` is
    ``cosine`` (decay to 1% of ``lr``) or ``onecycle`` (warm-up to ``lr``, then decay).
    """

    kind = "mlp_stepper"

    #: value spec of each hyperparameter, checked before any job (surrogates.registry.check_value)
    hyperparameter_specs = {"hidden": "ints>=1", "activation": ["gelu", "relu", "silu", "tanh"],
                            "architecture": ["dense", "conv", "local", "fno"], "modes": "int>=1", "channels": "int>=1", "kernel_size": "int>=1", "n_layers": "int>=1", "lr": "float>0",
                            "weight_decay": "float>=0", "n_iterations": "int>=1", "batch_size": "int>=1",
                            "rollout_steps": "int>=1", "noise": "float>=0", "random_state": "int>=0|None",
                            "device": ["cpu", "cuda", "auto"], "scaling": ["component", "global"], "augment": ["none", "shift", "shift_reflect"],
                            "val_fraction": "float>=0", "patience": "int>=1", "eval_every": "int>=1",
                            "curriculum": "float>=0", "curriculum_power": "float>0",
                            "lr_schedule": ["cosine", "onecycle"]}

    def __init__(self, hidden: Sequence[int] = (128, 128), activation: str = "gelu",
                 architecture: str = "dense", channels: int = 32, kernel_size: int = 5, n_layers: int = 4,
                 lr: float = 2e-3, weight_decay: float = 0.0, n_iterations: int = 3000,
                 batch_size: int = 128, rollout_steps: int = 10, noise: float = 0.0,
                 random_state: int | None = 0, device: str = "cpu", scaling: str = "component",
                 augment: str = "none", val_fraction: float = 0.0, patience: int = 5,
                 eval_every: int = 100, curriculum: float = 0.6, curriculum_power: float = 1.0,
                 lr_schedule: str = "cosine", modes: int = 16) -> None:
        self.modes = modes
        self._init_common(hidden, activation, architecture, channels, kernel_size, n_layers, lr,
                          weight_decay, n_iterations, batch_size, rollout_steps, noise, random_state, device,
                          scaling, augment, val_fraction, patience, eval_every, curriculum, curriculum_power,
                          lr_schedule)

    def _forward(self, net, z, scale):
        return z + scale * net(z)


@register("forecaster", "node")
class NeuralODE(_TorchStepper):
    """Neural ODE ``dz/dt = (s/dt) ⊙ net(z)`` integrated by ``substeps`` RK4 steps per sample
    interval (discretise-then-optimise: the loss is differentiated through the RK4 steps).
    Same network and training options as :class:`MLPStepper` (early stopping included)."""

    kind = "node"

    #: value spec of each hyperparameter, checked before any job (surrogates.registry.check_value)
    hyperparameter_specs = {"hidden": "ints>=1", "activation": ["gelu", "relu", "silu", "tanh"],
                            "architecture": ["dense", "conv", "local", "fno"], "modes": "int>=1", "channels": "int>=1", "kernel_size": "int>=1", "n_layers": "int>=1", "lr": "float>0",
                            "weight_decay": "float>=0", "n_iterations": "int>=1", "batch_size": "int>=1",
                            "rollout_steps": "int>=1", "noise": "float>=0", "substeps": "int>=1", "random_state": "int>=0|None",
                            "device": ["cpu", "cuda", "auto"], "scaling": ["component", "global"], "augment": ["none", "shift", "shift_reflect"],
                            "val_fraction": "float>=0", "patience": "int>=1", "eval_every": "int>=1",
                            "curriculum": "float>=0", "curriculum_power": "float>0",
                            "lr_schedule": ["cosine", "onecycle"]}

    def __init__(self, hidden: Sequence[int] = (128, 128), activation: str = "gelu",
                 architecture: str = "dense", channels: int = 32, kernel_size: int = 5, n_layers: int = 4,
                 lr: float = 2e-3, weight_decay: float = 0.0, n_iterations: int = 3000,
                 batch_size: int = 128, rollout_steps: int = 10, noise: float = 0.0, substeps: int = 1,
                 random_state: int | None = 0, device: str = "cpu", scaling: str = "component",
                 augment: str = "none", val_fraction: float = 0.0, patience: int = 5,
                 eval_every: int = 100, curriculum: float = 0.6, curriculum_power: float = 1.0,
                 lr_schedule: str = "cosine", modes: int = 16) -> None:
        self.modes = modes
        self._init_common(hidden, activation, architecture, channels, kernel_size, n_layers, lr,
                          weight_decay, n_iterations, batch_size, rollout_steps, noise, random_state, device,
                          scaling, augment, val_fraction, patience, eval_every, curriculum, curriculum_power,
                          lr_schedule)
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


__all__ = ["MLPStepper", "NeuralODE", "build_stepper_net"]
