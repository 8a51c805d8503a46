"""Registry of high-fidelity simulators.

Built-in simulators are registered lazily by ``"module:Class"`` so that importing the registry
does not import torch, meshio or a solver adapter.  Users register their own with
:func:`register` (a :class:`Simulator` subclass) or :func:`register_function` (a plain Python
function), or name ``python:package.module:Class`` in the config (imported and run: a config is
code, see docs/security.md; refused in safe mode, :mod:`surroflow.safety`).

Layout: ``base.py`` (the interface), one module per simulator family (``burgers``,
``advection``, ``calculix``, ``files``, ``chaos/`` with one file per system), ``process.py``
(the process runner behind external programs) and ``external.py`` (the ``external``
simulator).  Result-file readers live in :mod:`surroflow.readers`.  Simulators import nothing
from the layers above them (reduction, dynamics, surrogates, evaluation, stages).
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

from .. import SurroflowError
from ..safety import safe_mode_enabled
from .base import Coordinate, OutputVariable, Parameter, SampleFailure, Simulator, SimulatorUnavailable

_BUILTIN: dict[str, str] = {
    "burgers": "surroflow.simulators.burgers:Burgers1D",
    "advection_diffusion": "surroflow.simulators.advection:AdvectionDiffusion1D",
    "ishigami": "surroflow.simulators.ishigami:Ishigami",
    "lorenz63": "surroflow.simulators.chaos.lorenz63:Lorenz63",
    "lorenz96": "surroflow.simulators.chaos.lorenz96:Lorenz96",
    "kuramoto_sivashinsky": "surroflow.simulators.chaos.kuramoto_sivashinsky:KuramotoSivashinsky",
    "calculix_plate": "surroflow.simulators.calculix:CalculixPlate",
    "external": "surroflow.simulators.external:ExternalCommand",
    "files": "surroflow.simulators.files:FilesSource",
    "flaky_burgers": "surroflow.simulators.testing:FlakyBurgers",
}
_REGISTRY: dict[str, type[Simulator]] = {}


def register(cls: type[Simulator]) -> type[Simulator]:
    """Register a simulator class under ``cls.name`` (usable as a decorator)."""
    if not cls.name:
        raise ValueError(f"{cls.__qualname__} has no 'name'")
    _REGISTRY[cls.name] = cls
    return cls


def _load(spec: str) -> type[Simulator]:
    module, _, attr = spec.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if not (isinstance(cls, type) and issubclass(cls, Simulator)):
        raise TypeError(f"{spec} is not a surroflow Simulator subclass")
    return cls


def available() -> list[str]:
    return sorted(set(_BUILTIN) | set(_REGISTRY))


def simulator_class(name: str) -> type[Simulator]:
    """The class of ``name``: registered, built in, or ``python:module:Class`` (imported; in
    safe mode a :class:`SurroflowError`).  Unknown names raise ``KeyError``."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in _BUILTIN:
        return _load(_BUILTIN[name])
    if name.startswith("python:"):
        if safe_mode_enabled():
            raise SurroflowError(f"simulator {name!r} imports code; safe mode allows only registered "
                                 f"simulators: {available()}")
        return _load(name[len("python:"):])
    raise KeyError(f"unknown simulator {name!r}; allowed: {available()} or 'python:module:Class'")


def get_simulator(name: str, **settings: Any) -> Simulator:
    """Instantiate the simulator ``name`` with its fixed ``settings``."""
    return simulator_class(name)(**settings)


def register_function(name: str, fn: Callable[..., dict], parameters: list[Parameter],
                      outputs: list[OutputVariable], coordinates: dict[str, Coordinate],
                      time_dim: str | None = "time") -> type[Simulator]:
    """Wrap a plain function ``fn(**params) -> {variable: array}`` as a registered simulator."""

    class _FunctionSimulator(Simulator):
        def parameters(self):  # type: ignore[override]
            return parameters

        def outputs(self):  # type: ignore[override]
            return outputs

        def coordinates(self):  # type: ignore[override]
            return coordinates

        def run_sample(self, params):  # type: ignore[override]
            return fn(**params, **self.settings)

    _FunctionSimulator.name = name
    _FunctionSimulator.time_dim = time_dim
    _FunctionSimulator.__qualname__ = f"FunctionSimulator[{name}]"
    return register(_FunctionSimulator)


__all__ = ["SimulatorUnavailable", "Coordinate", "OutputVariable", "Parameter", "SampleFailure", "Simulator",
           "register", "register_function", "get_simulator", "simulator_class", "available"]
