"""A compact one-dimensional Fourier neural operator (Li et al. 2021, "Fourier neural operator
for parametric partial differential equations"), for fields on periodic grids.

``FNO1d`` lifts each grid value to ``width`` channels (a pointwise linear map), applies
``n_layers`` Fourier layers ``v <- act(K v + W v)`` (``K``: multiplication of the lowest
``modes`` Fourier modes of every channel by learnt complex ``width x width`` matrices, the rest
truncated; ``W``: a pointwise linear map) and projects back to one value per point through a
pointwise two-layer network.  Every part acts on the whole grid through the FFT or point by
point, so the operator is equivariant to circular shifts and takes any grid size with at least
``2 * modes - 1`` points.

Why not the ``neuraloperator`` package: its 2.0 release hard-requires ``wandb`` (an experiment-
tracking client), ``zencfg``, ``configmypy``, ``tensorly``/``tensorly-torch`` and ``h5py``, for a
layer that is a few lines over ``torch.fft``; the layer here is tested against an explicit
discrete Fourier transform (tests/unit/test_fno.py).  The learnt weights are real tensors (real
and imaginary parts), so the model's ``state_dict`` stores as plain arrays.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .. import SurroflowError
from .torch_utils import activation


class SpectralConv1d(nn.Module):
    """``(n, c_in, N) -> (n, c_out, N)``: the lowest ``modes`` rFFT modes of the input mixed by
    learnt complex matrices ``R_k`` (``c_in x c_out``), the higher ones set to zero."""

    def __init__(self, in_channels: int, out_channels: int, modes: int) -> None:
        super().__init__()
        self.modes = int(modes)
        scale = 1.0 / (in_channels * out_channels)
        self.weight_re = nn.Parameter(scale * torch.rand(in_channels, out_channels, self.modes))
        self.weight_im = nn.Parameter(scale * torch.rand(in_channels, out_channels, self.modes))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        n_points = v.shape[-1]
        k = self.modes
        if n_points // 2 + 1 < k:
            raise SurroflowError(f"fno: a grid of {n_points} points has {n_points // 2 + 1} Fourier modes, "
                                 f"fewer than modes={k}")
        f = torch.fft.rfft(v, dim=-1)
        w = torch.complex(self.weight_re, self.weight_im)
        out = torch.zeros(v.shape[0], w.shape[1], n_points // 2 + 1, dtype=f.dtype, device=v.device)
        out[:, :, :k] = torch.einsum("bik,iok->bok", f[:, :, :k], w)
        return torch.fft.irfft(out, n=n_points, dim=-1)


class FNO1d(nn.Module):
    """``(n, N) -> (n, N)`` (or ``(n, in_channels, N) -> (n, N)``): lift, ``n_layers`` Fourier
    layers of ``width`` channels and ``modes`` modes, project; ``last_layer_scale`` shrinks the
    output layer (a residual stepper then starts near the identity)."""

    def __init__(self, modes: int, width: int, n_layers: int, act: str = "gelu", who: str = "fno",
                 last_layer_scale: float | None = None, in_channels: int = 1) -> None:
        super().__init__()
        if int(modes) < 1 or int(width) < 1 or int(n_layers) < 1 or int(in_channels) < 1:
            raise SurroflowError(f"{who}: modes, width, n_layers and in_channels must be >= 1")
        Act = activation(act, who)
        self.lift = nn.Conv1d(int(in_channels), int(width), 1)
        self.spectral = nn.ModuleList(SpectralConv1d(int(width), int(width), int(modes)) for _ in range(int(n_layers)))
        self.pointwise = nn.ModuleList(nn.Conv1d(int(width), int(width), 1) for _ in range(int(n_layers)))
        self.act = Act()
        self.project = nn.Sequential(nn.Conv1d(int(width), 2 * int(width), 1), Act(), nn.Conv1d(2 * int(width), 1, 1))
        if last_layer_scale is not None:
            with torch.no_grad():
                self.project[-1].weight.mul_(float(last_layer_scale))
                self.project[-1].bias.zero_()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        v = self.lift(z[:, None, :] if z.dim() == 2 else z)
        for i, (K, W) in enumerate(zip(self.spectral, self.pointwise)):
            v = K(v) + W(v)
            if i < len(self.spectral) - 1:
                v = self.act(v)
        return self.project(v)[:, 0, :]


class ParametricFNO1d(nn.Module):
    """``(n, n_inputs) -> (n, N)``: a parameter-to-field operator on a periodic grid of ``N``
    points.  Each input row (parameters and, for transient problems, time) is a set of constant
    channels over the grid, joined by the grid position ``(cos 2 pi j / N, sin 2 pi j / N)``;
    an :class:`FNO1d` maps those ``n_inputs + 2`` channels to the field."""

    def __init__(self, n_inputs: int, n_points: int, modes: int, width: int, n_layers: int,
                 act: str = "gelu", who: str = "fno") -> None:
        super().__init__()
        if int(n_points) // 2 + 1 < int(modes):
            raise SurroflowError(f"{who}: a field of {n_points} points has {int(n_points) // 2 + 1} Fourier modes, "
                                 f"fewer than modes={modes}")
        phase = 2.0 * math.pi * torch.arange(int(n_points)) / int(n_points)
        self.register_buffer("grid", torch.stack([torch.cos(phase), torch.sin(phase)]))
        self.fno = FNO1d(modes, width, n_layers, act, who, in_channels=int(n_inputs) + 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, n_points = x.shape[0], self.grid.shape[1]
        channels = torch.cat([x[:, :, None].expand(n, x.shape[1], n_points),
                              self.grid.to(x.dtype)[None].expand(n, 2, n_points)], dim=1)
        return self.fno(channels)


def n_parameters(net: nn.Module) -> int:
    return int(sum(math.prod(p.shape) for p in net.parameters()))


__all__ = ["SpectralConv1d", "FNO1d", "ParametricFNO1d", "n_parameters"]
