"""Common machinery of the chaotic systems: settings, ensemble integration, sampling, attrs.

Every system integrates a whole ensemble of initial conditions at once (one vectorised
integration along a leading ``ensemble`` axis, never one ODE solve per trajectory), discards a
transient and keeps ``n_steps`` states sampled every ``dt_sample`` time units.

The varied "parameter" of every system is ``ic`` in [0, 1]: its IEEE bit pattern seeds a random
initial condition (so distinct design points give distinct, unrelated trajectories); after the
transient, trajectories lie on the attractor.  System constants are fixed ``settings``.

Each system also provides the tangent (linearised) dynamics of its *discrete* time stepper
(:meth:`ChaoticSystem.tangent_step`) and the published leading Lyapunov exponent of its
standard settings (:meth:`ChaoticSystem.published_exponent`, a fact of the system).  Computing
an exponent is :mod:`surroflow.dynamics`' job (``lyapunov_spectrum``, ``lyapunov_attrs``); the
generate stage attaches the Lyapunov time to the data.  Time is in the model's own
(dimensionless) time units.
"""
from __future__ import annotations

import sys
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from ... import SurroflowError
from ..base import (Coordinate, OutputVariable, Parameter, SampleFailure, Simulator, check_setting,
                    check_unknown_settings)

#: A state whose absolute value exceeds this is treated as diverged (besides NaN/Inf).
BLOWUP = 1e8
#: ``integrate(compiled="auto")`` uses the compiled kernel from this much work on
#: (trajectories x state dimension x integration steps; see :meth:`ChaoticSystem.integrate`)
COMPILED_MIN_WORK = 2_000_000


def seed_from_ic(ic: float, salt: int) -> np.random.Generator:
    """A generator seeded by the exact bit pattern of ``ic`` (distinct floats, distinct seeds)."""
    bits = int(np.float64(ic).view(np.uint64))
    return np.random.default_rng(np.random.SeedSequence([bits & 0xFFFFFFFF, bits >> 32, salt]))


class Setting:
    """A validated, typed setting with a default."""

    def __init__(self, default: Any, kind: type, positive: bool = True, doc: str = "",
                 nullable: bool = False) -> None:
        self.default, self.kind, self.positive, self.doc, self.nullable = default, kind, positive, doc, nullable


class ChaoticSystem(Simulator):
    """Common machinery: settings, ensemble integration, sampling, divergence flags, attrs."""

    tasks: ClassVar[tuple[str, ...]] = ("forecast",)
    time_dim: ClassVar[str | None] = "time"
    #: tells the generate stage to call :meth:`run_batch` with a whole batch at once
    vectorised: ClassVar[bool] = True
    #: name of the output variable (the forecast state)
    variable: ClassVar[str] = "state"
    variable_long_name: ClassVar[str] = "state vector"
    space_dim: ClassVar[str] = "component"
    SETTINGS: ClassVar[dict[str, "Setting"]] = {}
    #: published leading exponents: {settings tuple: (lambda_1, reference)}
    PUBLISHED: ClassVar[dict[tuple, tuple[float, str]]] = {}
    PHYSICS_KEYS: ClassVar[tuple[str, ...]] = ()
    SALT: ClassVar[int] = 0

    def __init__(self, **settings: Any) -> None:
        common = {
            "dt_sample": Setting(None, float, doc="sampling interval of the kept states"),
            "n_steps": Setting(1000, int, doc="number of states kept per trajectory"),
            "transient": Setting(None, float, positive=False, doc="time discarded before sampling"),
            "lyapunov_exponent": Setting(None, float, doc="override of lambda_1 used for the Lyapunov time",
                                          nullable=True),
            "observation_noise": Setting(0.0, float, positive=False,
                                         doc="observation noise std, relative to each component's standard "
                                             "deviation along its trajectory (0: exact states)"),
            "observe_every": Setting(1, int, doc="observe every k-th state component (partial observation)"),
            "observe_random": Setting(None, int, nullable=True,
                                      doc="observe this many components chosen at random (observation_seed)"),
            "observation_seed": Setting(0, int, positive=False, doc="seed of the observed random subset"),
        }
        spec = {**self.SETTINGS, **common}
        check_unknown_settings(self.name, settings, spec)
        values: dict[str, Any] = {}
        for key, s in spec.items():
            v = settings.get(key, s.default)
            if v is None and not s.nullable:
                v = self._derived_default(key, values)
            values[key] = check_setting(key, v, "int" if s.kind is int else "float", nullable=s.nullable,
                                        **({"exclusive_minimum": 0} if s.positive else {"minimum": 0}))
        ratio = values["dt_sample"] / values["dt"]
        if abs(ratio - round(ratio)) > 1e-9 * max(1.0, ratio) or round(ratio) < 1:
            raise SurroflowError(f"simulator.settings.dt_sample: dt_sample={values['dt_sample']} must be "
                                 f"a positive integer multiple of dt={values['dt']}")
        super().__init__(**values)
        self.stride = int(round(ratio))
        self.n_transient = int(round(values["transient"] / values["dt"]))
        self._check_physics()
        self._check_observation()

    # -- observation ---------------------------------------------------------------------
    def _check_observation(self) -> None:
        every, subset = int(self.settings["observe_every"]), self.settings["observe_random"]
        if subset is not None and every != 1:
            raise SurroflowError("simulator.settings: observe_every and observe_random are exclusive; set one")
        if subset is not None and not 1 <= int(subset) <= self.dim:
            raise SurroflowError(f"simulator.settings.observe_random: expected 1..{self.dim} observed components "
                                 f"(the state has {self.dim}), got {subset}")
        if every > self.dim:
            raise SurroflowError(f"simulator.settings.observe_every: expected 1..{self.dim}, got {every}")

    @property
    def observed_index(self) -> np.ndarray:
        """The state components the data hold (all of them unless observation is partial)."""
        subset = self.settings["observe_random"]
        if subset is not None:
            rng = np.random.default_rng(int(self.settings["observation_seed"]))
            return np.sort(rng.choice(self.dim, int(subset), replace=False))
        return np.arange(0, self.dim, int(self.settings["observe_every"]))

    @property
    def observes_everything(self) -> bool:
        return float(self.settings["observation_noise"]) == 0.0 and len(self.observed_index) == self.dim

    def observe(self, traj: np.ndarray, params: Sequence[Mapping[str, float]]) -> np.ndarray:
        """The observed data of trajectories ``(n, n_steps, dim)``: the observed components, plus
        Gaussian noise of ``observation_noise`` times each component's standard deviation along
        its own trajectory, seeded per sample (by the bit pattern of ``ic``), so a sample's
        noise does not depend on its batch."""
        obs = traj[:, :, self.observed_index]
        level = float(self.settings["observation_noise"])
        if level > 0:
            obs = obs.copy()
            for i, p in enumerate(params):
                if np.all(np.isfinite(obs[i])):
                    rng = seed_from_ic(float(p["ic"]), self.SALT + 7919)
                    obs[i] += level * obs[i].std(axis=0) * rng.standard_normal(obs[i].shape)
        return obs

    # -- settings helpers --------------------------------------------------------------
    def _derived_default(self, key: str, values: Mapping[str, Any]) -> Any:
        if key == "dt_sample":
            return values["dt"]
        if key == "transient":
            return self.DEFAULT_TRANSIENT
        raise SurroflowError(f"simulator {self.name!r}: setting {key!r} has no default")

    DEFAULT_TRANSIENT: ClassVar[float] = 20.0

    def _check_physics(self) -> None:
        """Extra checks of the settings (overridden)."""

    def __getattr__(self, key: str) -> Any:  # settings as attributes: self.sigma, self.dt ...
        settings = self.__dict__.get("settings")
        if settings is not None and key in settings:
            return settings[key]
        raise AttributeError(key)

    # -- declarations ----------------------------------------------------------------
    @property
    def dim(self) -> int:
        raise NotImplementedError

    def parameters(self) -> Sequence[Parameter]:
        return [Parameter("ic", 0.0, 1.0, "1", "seed of the random initial condition (bit pattern)")]

    def outputs(self) -> Sequence[OutputVariable]:
        return [OutputVariable(self.variable, ("time", self.space_dim), "1", self.variable_long_name)]

    def coordinates(self) -> Mapping[str, Coordinate]:
        t = np.arange(self.n_steps) * self.dt_sample
        return {
            "time": Coordinate(("time",), t, "1", "time after the transient (model time units)"),
            self.space_dim: self._observed_coordinate(),
        }

    def _space_coordinate(self) -> Coordinate:
        return Coordinate((self.space_dim,), np.arange(self.dim), "1", "component index")

    def _observed_coordinate(self) -> Coordinate:
        c = self._space_coordinate()
        if len(self.observed_index) == self.dim:
            return c
        return Coordinate(c.dims, np.asarray(c.values)[self.observed_index], c.units, c.long_name,
                          {**dict(c.extra_attrs), "observed_of": int(self.dim)})

    def published_exponent(self) -> tuple[float, str] | None:
        """The known leading Lyapunov exponent and its source, or ``None``.

        The ``lyapunov_exponent`` setting when given, else the published value for these
        settings (:attr:`PUBLISHED`); :func:`surroflow.dynamics.lyapunov_attrs` computes it
        when neither is known.
        """
        if self.settings.get("lyapunov_exponent") is not None:
            return float(self.settings["lyapunov_exponent"]), "setting lyapunov_exponent"
        key = tuple(round(float(self.settings[k]), 10) for k in self.PHYSICS_KEYS)
        return self.PUBLISHED.get(key)

    def equation_terms(self) -> dict[str, dict[str, float]] | None:
        """The true right-hand side as ``{variable: {term: coefficient}}``, terms written as
        products of variable names (``"x z"``, ``"x^2"``, ``"1"``), or ``None`` where the system
        does not state it in this form; read by the equation tables of the sparse-regression
        models (a fact of the system, like :meth:`published_exponent`)."""
        return None

    def attrs(self) -> dict[str, Any]:
        """The system's own attributes (the Lyapunov ones come from :mod:`surroflow.dynamics`)."""
        out: dict[str, Any] = {
            "forecast_variable": self.variable,
            "dt_sample": float(self.dt_sample),
            "dt_integration": float(self.dt),
            "transient": float(self.transient),
            "time_units": "model time units (dimensionless)",
        }
        for k in self.PHYSICS_KEYS:
            out[f"system_{k}"] = self.settings[k]
        if not self.observes_everything:
            out["observation_noise"] = float(self.settings["observation_noise"])
            out["observed_components"] = f"{len(self.observed_index)} of {self.dim}"
        return out

    # -- dynamics (overridden) -------------------------------------------------------
    def random_states(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` random initial states ``(n, dim)`` (off the attractor; integrate a transient)."""
        raise NotImplementedError

    def initial_states(self, params: Sequence[Mapping[str, float]]) -> np.ndarray:
        return np.concatenate([self.random_states(1, seed_from_ic(float(p["ic"]), self.SALT))
                               for p in params], axis=0)

    def step(self, x: np.ndarray, dt: float | None = None) -> np.ndarray:
        """One time step of the whole ensemble ``x`` ``(n, dim)``."""
        raise NotImplementedError

    def tangent_step(self, x: np.ndarray, V: np.ndarray, dt: float | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """One step of state ``x`` ``(n, dim)`` and tangent vectors ``V`` ``(n, dim, p)``:
        the exact linearisation of :meth:`step` applied to ``V``."""
        raise NotImplementedError

    # -- integration -----------------------------------------------------------------
    def compiled_kernel(self) -> tuple[Any, tuple] | None:
        """``(kernel, constants)`` of this system's compiled integrator (:mod:`.compiled`), or
        ``None`` (overridden by the systems that have one; the numpy path runs otherwise)."""
        return None

    def integrate(self, x0: np.ndarray, n_steps: int | None = None, n_transient: int | None = None,
                  stride: int | None = None, compiled: bool | str = "auto") -> np.ndarray:
        """Integrate the ensemble ``x0`` ``(n, dim)``; return ``(n, n_steps, dim)`` samples.

        The first kept state is the one after ``n_transient`` integration steps; rows that
        become non-finite or exceed :data:`BLOWUP` are NaN from then on (no warnings).

        ``compiled=True`` sends the whole ensemble through the system's compiled kernel
        (:meth:`compiled_kernel`, :mod:`.compiled`) in one call when there is one; ``False``
        takes one vectorised numpy :meth:`step` of the whole ensemble per time step.  Both give
        the same numbers.  ``"auto"`` (the default) compiles only when it pays: when the work
        (trajectories x dimension x steps) is at least :data:`COMPILED_MIN_WORK`, or when the
        kernels are already loaded in this process.  Below that the numpy path finishes before
        numba would have started: importing numba and loading the cached kernels takes longer
        than the numpy path of the default Lorenz-63 study job (16 trajectories x 5,500 steps;
        both measured in fresh processes by ``bench/bench_generation_dysts.py``).
        """
        n_steps = self.n_steps if n_steps is None else int(n_steps)
        n_transient = self.n_transient if n_transient is None else int(n_transient)
        stride = self.stride if stride is None else int(stride)
        x = np.array(x0, dtype=float, copy=True)
        out = np.empty((x.shape[0], n_steps, x.shape[1]))
        if compiled == "auto":
            work = x.shape[0] * x.shape[1] * (n_transient + (n_steps - 1) * stride)
            compiled = work >= COMPILED_MIN_WORK or "surroflow.simulators.chaos.compiled" in sys.modules
        found = self.compiled_kernel() if compiled and n_steps > 0 else None
        if found is not None and found[0] is not None:
            fn, constants = found
            fn(np.ascontiguousarray(x), *constants, n_transient, stride, n_steps, BLOWUP, out)
            return out
        with np.errstate(all="ignore"):
            for _ in range(n_transient):
                x = self.step(x)
            x = self._flag(x)
            out[:, 0] = x
            n = 0
            for k in range(1, n_steps):
                for _ in range(stride):
                    x = self.step_at(x, n * float(self.dt))
                    n += 1
                x = self._flag(x)
                out[:, k] = x
        return out

    def step_at(self, x: np.ndarray, t: float) -> np.ndarray:
        """One step of the kept trajectory from time ``t`` after its first state (:meth:`step`;
        a system whose parameters change in time overrides it, e.g. Lorenz-63's drift)."""
        return self.step(x)

    @staticmethod
    def _flag(x: np.ndarray) -> np.ndarray:
        bad = ~np.all(np.isfinite(x) & (np.abs(x) < BLOWUP), axis=1)
        if bad.any():
            x = x.copy()
            x[bad] = np.nan
        return x

    def run_batch(self, params: Sequence[Mapping[str, float]]) -> list[Mapping[str, np.ndarray] | SampleFailure]:
        if len(params) == 0:
            return []
        traj = self.observe(self.integrate(self.initial_states(params)), params)
        out: list[Mapping[str, np.ndarray] | SampleFailure] = []
        times = np.arange(self.n_steps) * self.dt_sample
        for i in range(traj.shape[0]):
            finite = np.all(np.isfinite(traj[i]), axis=1)
            if not finite.all():
                k = int(np.argmin(finite))
                out.append(SampleFailure(
                    f"state non-finite or |x| > {BLOWUP:g} at t={times[k]:g} after the transient "
                    f"(dt={self.dt:g} may be too large)", "diverged"))
            else:
                out.append({self.variable: traj[i]})
        return out

    def run_sample(self, params: Mapping[str, float]) -> Mapping[str, np.ndarray]:
        res = self.run_batch([params])[0]
        if isinstance(res, SampleFailure):
            raise res
        return res


def rk4(f, x: np.ndarray, dt: float) -> np.ndarray:
    k1 = f(x)
    k2 = f(x + 0.5 * dt * k1)
    k3 = f(x + 0.5 * dt * k2)
    k4 = f(x + dt * k3)
    return x + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def rk4_tangent(f, jvp, x: np.ndarray, V: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """RK4 on the system and its variational equation: the exact Jacobian of the RK4 map."""
    k1, K1 = f(x), jvp(x, V)
    x2, V2 = x + 0.5 * dt * k1, V + 0.5 * dt * K1
    k2, K2 = f(x2), jvp(x2, V2)
    x3, V3 = x + 0.5 * dt * k2, V + 0.5 * dt * K2
    k3, K3 = f(x3), jvp(x3, V3)
    x4, V4 = x + dt * k3, V + dt * K3
    k4, K4 = f(x4), jvp(x4, V4)
    return (x + (dt / 6.0) * (k1 + 2 * k2 + 2 * k3 + k4),
            V + (dt / 6.0) * (K1 + 2 * K2 + 2 * K3 + K4))


__all__ = ["BLOWUP", "COMPILED_MIN_WORK", "ChaoticSystem", "Setting", "rk4", "rk4_tangent", "seed_from_ic"]
