"""The one torch helper of surrogates and forecasters: network builder, seeding, device policy,
threads.

Device policy (:func:`resolve_device`): ``cpu`` (the default everywhere); ``cuda`` is an error
naming the model when CUDA is absent (never a silent fallback while fitting); ``auto`` takes
CUDA when present.  Loading a model (``strict=False``) falls back to the CPU, so a model
fitted on a GPU predicts anywhere.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from .. import SurroflowError

ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU}
DEVICES = ("cpu", "cuda", "auto")


def resolve_device(device: str, who: str, strict: bool = True) -> torch.device:
    """The torch device for the setting ``device`` of model ``who`` (see the module docstring)."""
    if device == "cpu":
        return torch.device("cpu")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if not strict:
            return torch.device("cpu")
        raise SurroflowError(f"{who}: device 'cuda' was requested but CUDA is not available "
                             f"(torch {torch.__version__}, torch.cuda.is_available() is False); "
                             "use device 'cpu', or 'auto' to take CUDA only when present")
    raise SurroflowError(f"{who}: device={device!r} is not allowed; allowed: {list(DEVICES)}")


def activation(name: str, who: str) -> type[nn.Module]:
    if name not in ACTIVATIONS:
        raise SurroflowError(f"{who}: activation={name!r} is not allowed; allowed: {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def build_mlp(n_inputs: int, n_outputs: int, hidden: Sequence[int], act: str, who: str = "mlp",
              last_layer_scale: float | None = None) -> nn.Sequential:
    """``Linear -> act -> ... -> Linear`` with the ``hidden`` widths (PyTorch's default
    initialisation; ``last_layer_scale`` shrinks the output layer's weights and zeroes its bias,
    so a residual stepper starts near the identity)."""
    Act = activation(act, who)
    layers: list[nn.Module] = []
    width = int(n_inputs)
    for h in hidden:
        layers += [nn.Linear(width, int(h)), Act()]
        width = int(h)
    layers.append(nn.Linear(width, int(n_outputs)))
    net = nn.Sequential(*layers)
    if last_layer_scale is not None:
        with torch.no_grad():
            net[-1].weight.mul_(float(last_layer_scale))
            net[-1].bias.zero_()
    return net


@contextmanager
def seeded(seed: int, device: torch.device | str | None = None) -> Iterator[None]:
    """Run the block with torch's global generator(s) seeded with ``seed`` and restore them
    afterwards: a seeded fit leaves the caller's random streams alone."""
    dev = torch.device(device) if device is not None else torch.device("cpu")
    devices: list[Any] = [dev.index or 0] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        yield


def set_threads(n: int) -> None:
    """Limit torch's intra-op CPU threads (a job's ``threads``)."""
    torch.set_num_threads(max(1, int(n)))


__all__ = ["ACTIVATIONS", "DEVICES", "resolve_device", "activation", "build_mlp", "seeded", "set_threads"]
