"""The simulator interface: what a high-fidelity model declares and how it is run.

A simulator declares its parameters (with ranges and units), its output variables (with their
dimensions, units and long names) and the coordinates of those dimensions, and runs one design
point at a time or a batch at once.  Failures are reported through :class:`SampleFailure`
exceptions (or non-finite output), never by returning zeros.
"""
from __future__ import annotations

import contextlib
import math
from abc import ABC, abstractmethod
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Iterator, Mapping, Sequence

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
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ValueError(f"parameter {self.name}: bounds must be finite, got [{self.low}, {self.high}]")
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


@dataclass
class SettingsRecord:
    """What a simulator's constructor checked while :func:`recording_settings` was active: the
    first :func:`check_setting` call of each key (``kind``, ``value``, ``nullable``, ``allowed``)
    and the ``allowed`` names given to :func:`check_unknown_settings`.  ``python -m surroflow
    simulators`` describes settings from this record, so the checks are the one declaration."""

    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    allowed: list[str] | None = None


_RECORD: ContextVar[SettingsRecord | None] = ContextVar("surroflow_settings_record", default=None)


@contextlib.contextmanager
def recording_settings() -> Iterator[SettingsRecord]:
    """``with recording_settings() as rec: cls()``: record the setting checks made inside."""
    record = SettingsRecord()
    token = _RECORD.set(record)
    try:
        yield record
    finally:
        _RECORD.reset(token)


def _bounds(minimum: float | None, exclusive_minimum: float | None, maximum: float | None) -> str:
    out = [f"{op} {v:g}" for op, v in ((">=", minimum), (">", exclusive_minimum), ("<=", maximum))
           if v is not None]
    return " and ".join(out)


def setting_error(key: str, allowed: str, value: Any) -> SurroflowError:
    """The one message of a bad setting: ``simulator.settings.<key>: expected ..., got ...``."""
    return SurroflowError(f"simulator.settings.{key}: expected {allowed}, got {value!r}")


def check_setting(key: str, value: Any, kind: str, *, minimum: float | None = None,
                  exclusive_minimum: float | None = None, maximum: float | None = None,
                  choices: Sequence[Any] | None = None, nullable: bool = False) -> Any:
    """One typed check of a simulator setting, shared by every simulator's constructor (so
    ``python -m surroflow validate``, which constructs the simulator, and the run apply the
    same check).  ``kind`` is ``"int"`` (a whole number, not a bool; ``2.0`` is refused),
    ``"float"`` (a finite int or float, not a bool or a string), ``"str"`` (non-empty),
    ``"path"`` (a non-empty string) or ``"choice"`` (one of ``choices``).  Returns the value as
    ``int``/``float``/``str`` (``None`` when ``nullable`` and null); raises
    :class:`SurroflowError` naming ``simulator.settings.<key>`` and what is allowed."""
    record = _RECORD.get()
    if record is not None and key not in record.checks:
        record.checks[key] = {"kind": kind, "value": value, "nullable": nullable,
                              "allowed": (f"one of {list(choices or [])}" if kind == "choice"
                                          else _bounds(minimum, exclusive_minimum, maximum) or None)}
    if value is None and nullable:
        return None
    null = " or null" if nullable else ""
    if kind == "choice":
        if choices is None or value not in list(choices):
            raise setting_error(key, f"one of {list(choices or [])}{null}", value)
        return value
    if kind in ("str", "path"):
        if not isinstance(value, str) or not value:
            raise setting_error(key, f"a non-empty string{' (a path)' if kind == 'path' else ''}{null}", value)
        return value
    if kind not in ("int", "float"):
        raise ValueError(f"check_setting: unknown kind {kind!r}")
    bounds = _bounds(minimum, exclusive_minimum, maximum)
    what = ("an integer" if kind == "int" else "a finite number") + (" " + bounds if bounds else "") + null
    if kind == "int":
        ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    else:
        ok = (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
              and math.isfinite(float(value)))
    if ok:
        v = float(value)
        ok = ((minimum is None or v >= minimum) and (exclusive_minimum is None or v > exclusive_minimum)
              and (maximum is None or v <= maximum))
    if not ok:
        raise setting_error(key, what, value)
    return int(value) if kind == "int" else float(value)


def check_unknown_settings(name: str, settings: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """``simulator.settings.<key>: unknown setting`` for the first key not in ``allowed``."""
    allowed = sorted(allowed)
    record = _RECORD.get()
    if record is not None and record.allowed is None:
        record.allowed = list(allowed)
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise SurroflowError(f"simulator.settings.{unknown[0]}: unknown setting of simulator {name!r}; "
                             f"allowed: {allowed}")


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


#: the key of a stochastic simulator's per-run noise seed in the parameters of one run
#: (``design.members``: the design gives each member of a parameter point its own seed); it is
#: not a surrogate input
NOISE_SEED = "noise_seed"


def seed_from_entropy(entropy: Sequence[int]) -> int:
    """A non-negative 63-bit seed hashed from the integers ``entropy`` (``numpy.random.SeedSequence``)."""
    return int(np.random.SeedSequence([int(e) for e in entropy]).generate_state(1, np.uint64)[0] >> np.uint64(1))


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
    #: whether runs at the same parameters differ (internal variability): a stochastic
    #: simulator reads its noise seed from ``params[NOISE_SEED]`` (:meth:`noise_seed`), so a
    #: design may ask for several realisations (``members``) of each parameter point
    stochastic: ClassVar[bool] = False

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
    def complete_parameters(self, params: Mapping[str, float], defaults: Mapping[str, float]) -> dict[str, float]:
        """The full parameter set of one sample: ``params`` over ``defaults``, as floats; an
        unknown name is a :class:`SurroflowError`, a non-finite value a failed sample."""
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            raise SurroflowError(f"simulator {self.name!r} has no parameter {unknown[0]!r}; "
                                 f"allowed: {sorted(defaults)}")
        p = {**defaults, **{k: float(v) for k, v in params.items()}}
        if not all(math.isfinite(v) for v in p.values()):
            raise SampleFailure(f"non-finite parameters {p}", "failed")
        return p

    @staticmethod
    def noise_seed(params: Mapping[str, float]) -> tuple[dict[str, float], int]:
        """``(params without the seed, seed)`` of one run of a stochastic simulator: the
        design's ``noise_seed`` when it has members, else a seed from the exact bit patterns of
        the parameter values (so one run is reproducible either way)."""
        p = dict(params)
        if NOISE_SEED in p:
            return p, int(p.pop(NOISE_SEED))
        return p, seed_from_entropy([int(np.float64(p[k]).view(np.uint64)) for k in sorted(p)])

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

