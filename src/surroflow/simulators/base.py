"""The simulator interface: what a high-fidelity model declares and how it is run.

A simulator declares its parameters (with ranges and units), its output variables (with their
dimensions, units and long names) and the coordinates of those dimensions, and runs one design
point at a time or a batch at once.  Failures are reported through :class:`SampleFailure`
exceptions (or non-finite output), never by returning zeros.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from .. import SurroflowError


@dataclass(frozen=True)
class Parameter:
    """A scalar input of a simulator."""

    name: str
    low: float
    high: float
    units: str = "1"
    long_name: str = ""
    log_scale: bool = False  # sample uniformly in log(value)

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise ValueError(f"parameter {self.name}: low ({self.low}) must be < high ({self.high})")
        if self.log_scale and self.low <= 0:
            raise ValueError(f"parameter {self.name}: log_scale needs low > 0")


@dataclass(frozen=True)
class OutputVariable:
    """A field returned per sample; ``dims`` excludes the ``sample`` dimension."""

    name: str
    dims: tuple[str, ...]
    units: str = "1"
    long_name: str = ""


@dataclass(frozen=True)
class Coordinate:
    """A coordinate of an output dimension (e.g. ``x`` or ``time``)."""

    dims: tuple[str, ...]
    values: np.ndarray
    units: str = "1"
    long_name: str = ""
    extra_attrs: Mapping[str, Any] = field(default_factory=dict)


class SimulatorUnavailable(SurroflowError):
    """The simulator cannot run on this machine (e.g. its external program is not installed).

    The workflow skips studies whose simulator raises this, with the message, instead of
    failing; any other settings error stops the run.
    """


class SampleFailure(Exception):
    """Raised by a simulator for one sample; ``status`` is ``failed``, ``diverged`` or ``timeout``."""

    def __init__(self, reason: str, status: str = "failed") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class Simulator(ABC):
    """Base class of every high-fidelity model.

    Subclasses set :attr:`name`, implement :meth:`parameters`, :meth:`outputs`,
    :meth:`coordinates` and :meth:`run_sample` (or override :meth:`run_batch` for a vectorised
    integration).  ``settings`` are the fixed, non-varied settings from the study's config.
    ``time_dim`` names the output dimension along which snapshots are taken as extra surrogate
    inputs (``time`` for transient problems, ``step`` for load steps, ``None`` for steady).
    """

    name: ClassVar[str] = ""
    time_dim: ClassVar[str | None] = "time"
    #: the ``task`` this simulator supports: ``parametric`` (parameters -> fields) or ``forecast``
    tasks: ClassVar[tuple[str, ...]] = ("parametric",)

    def __init__(self, **settings: Any) -> None:
        self.settings = dict(settings)

    # -- declarations -----------------------------------------------------------------
    @abstractmethod
    def parameters(self) -> Sequence[Parameter]:
        """The parameters that a design of experiments may vary."""

    @abstractmethod
    def outputs(self) -> Sequence[OutputVariable]:
        """The output variables of one sample."""

    @abstractmethod
    def coordinates(self) -> Mapping[str, Coordinate]:
        """Coordinates of the output dimensions."""

    def attrs(self) -> dict[str, Any]:
        """Extra global attributes for generated data (e.g. the Lyapunov time)."""
        return {}

    # -- running ----------------------------------------------------------------------
    @abstractmethod
    def run_sample(self, params: Mapping[str, float]) -> Mapping[str, np.ndarray]:
        """Run one design point; return one array per output variable with ``dims`` shape."""

    def run_batch(self, params: Sequence[Mapping[str, float]]) -> list[Mapping[str, np.ndarray] | SampleFailure]:
        """Run several design points; failures are returned in place, not raised."""
        out: list[Mapping[str, np.ndarray] | SampleFailure] = []
        for p in params:
            try:
                out.append(self.run_sample(p))
            except SampleFailure as exc:
                out.append(exc)
        return out

    # -- helpers ----------------------------------------------------------------------
    def parameter(self, name: str) -> Parameter:
        for p in self.parameters():
            if p.name == name:
                return p
        raise KeyError(f"simulator {self.name!r} has no parameter {name!r}; "
                       f"allowed: {[p.name for p in self.parameters()]}")

    def output_shape(self, var: OutputVariable) -> tuple[int, ...]:
        coords = self.coordinates()
        shape = []
        for d in var.dims:
            if d not in coords:
                raise KeyError(f"simulator {self.name!r}: no coordinate for dimension {d!r}")
            shape.append(int(np.asarray(coords[d].values).shape[0]))
        return tuple(shape)


def collect_outputs(raw: Mapping[str, np.ndarray], outputs: Sequence[OutputVariable],
                    shapes: Mapping[str, tuple[int, ...]], where: str) -> dict[str, np.ndarray]:
    """Pick the declared outputs from a reader's arrays, checking shape and finiteness."""
    out: dict[str, np.ndarray] = {}
    for var in outputs:
        if var.name not in raw:
            raise SampleFailure(f"{where}: no variable {var.name!r} in the results; found {sorted(raw)}",
                                "failed")
        a = np.asarray(raw[var.name], dtype=float)
        if a.shape != tuple(shapes[var.name]):
            raise SampleFailure(f"{where}: {var.name} has shape {a.shape}, expected "
                                f"{tuple(shapes[var.name])} {var.dims}", "failed")
        if not np.all(np.isfinite(a)):
            raise SampleFailure(f"{where}: {var.name} has non-finite values", "diverged")
        out[var.name] = a
    return out

