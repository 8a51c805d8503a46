"""Advection-diffusion of a Gaussian pulse on a periodic domain, with its exact solution.

The model is ``u_t + c u_x = nu u_xx`` on ``x in [0, L)`` (periodic) for ``0 <= t <= t_end``,
started from a Gaussian pulse of standard deviation ``width`` centred at ``x0`` with height
``amplitude``.  The pulse travels at speed ``c``, wraps around the domain and spreads:
its variance grows as ``width^2 + 2 nu t`` and its height falls accordingly.  With
``nu`` between 1e-4 and 1e-3 m2/s the Péclet number ``c L / nu`` is 500 to 15000: strongly
advection-dominated, with the slow Kolmogorov n-width decay of translating structures that makes
a single global linear basis expensive (the showcase for local bases).

Solver
    Fourier pseudo-spectral in space, exact integration in time: each Fourier coefficient of
    the trigonometric interpolant of the initial pulse is multiplied by
    ``exp((-i c k - nu k^2) t)``.  This is the exact solution of the semi-discrete problem, so
    the only error is the truncation of the pulse's Fourier series, ``~exp(-(pi n width / L)^2
    / 2)``: spectral convergence in ``n_grid`` and none in time.

Reference
    :func:`exact_solution` sums the periodic images of the spreading Gaussian (closed form),
    independent of the solver; ``tests/unit/test_advection.py`` checks the two against each
    other to ~1e-13 and measures the spectral convergence.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
from scipy import fft as sp_fft

from .. import SurroflowError
from .base import (Coordinate, OutputVariable, Parameter, SampleFailure, Simulator, check_setting,
                   check_unknown_settings)


def exact_solution(x: Any, t: float, velocity: float, nu: float, amplitude: float = 1.0, *,
                   width: float = 0.02, x0: float = 0.25, length: float = 1.0) -> np.ndarray:
    """Closed-form ``u(x, t)``: the sum over periodic images of the spreading Gaussian.

    ``u = amplitude * width / s(t) * sum_k exp(-(x - x0 - c t - k L)^2 / (2 s(t)^2))`` with
    ``s(t)^2 = width^2 + 2 nu t``.  Images farther than 40 standard deviations are dropped
    (their terms are below 1e-300).
    """
    x = np.asarray(x, dtype=float)
    s = math.sqrt(width ** 2 + 2.0 * nu * t)
    centre = (x0 + velocity * t) % length
    n_img = int(math.ceil(40.0 * s / length)) + 1
    out = np.zeros_like(x)
    for k in range(-n_img, n_img + 1):
        out += np.exp(-0.5 * ((x - centre - k * length) / s) ** 2)
    return amplitude * (width / s) * out


def solve_spectral(velocity: float, nu: float, amplitude: float, times: np.ndarray, n_grid: int, *,
                   width: float = 0.02, x0: float = 0.25, length: float = 1.0) -> np.ndarray:
    """``u(times, x_j)`` on ``x_j = j L / n_grid`` by exact time integration in Fourier space."""
    x = length * np.arange(n_grid) / n_grid
    u0 = exact_solution(x, 0.0, velocity, nu, amplitude, width=width, x0=x0, length=length)
    v0 = sp_fft.rfft(u0)
    k = 2.0 * math.pi * sp_fft.rfftfreq(n_grid, d=length / n_grid)
    symbol = -1j * velocity * k - nu * k ** 2
    t = np.asarray(times, dtype=float)[:, None]
    return sp_fft.irfft(v0[None, :] * np.exp(symbol[None, :] * t), n_grid, axis=1)


def _bad(key: str, allowed: str, value: Any) -> SurroflowError:
    return SurroflowError(f"simulator.settings.{key}: {allowed}, got {value!r}")


def _positive(key: str, value: Any) -> float:
    return check_setting(key, value, "float", exclusive_minimum=0)


def _integer(key: str, value: Any, minimum: int) -> int:
    return check_setting(key, value, "int", minimum=minimum)


class AdvectionDiffusion1D(Simulator):
    """Gaussian pulse advected at ``velocity`` and diffused by ``nu``; output ``u(time, x)``.

    Settings (all optional):

    ``n_x`` (int, 256)
        Output grid points ``x_j = L j / n_x``.
    ``n_grid`` (int or None)
        Solver grid points, a multiple of ``n_x`` (default ``n_x``); sampling a Fourier solution
        at a subset of its nodes is exact.
    ``t_end`` (float, 1.0 s), ``n_time`` (int, 51)
        Output times, equally spaced from 0 to ``t_end`` inclusive.
    ``length`` (float, 1.0 m), ``width`` (float, 0.02 m), ``x0`` (float, 0.25 m)
        Domain length, initial standard deviation and initial centre of the pulse.

    Parameters: ``velocity`` (m/s), ``nu`` (m2/s, log-uniform), ``amplitude`` (1); a design
    that does not vary one gets its value from :attr:`defaults`.
    """

    name: ClassVar[str] = "advection_diffusion"
    time_dim: ClassVar[str | None] = "time"
    setting_defaults: ClassVar[Mapping[str, Any]] = {
        "n_x": 256, "n_grid": None, "t_end": 1.0, "n_time": 51, "length": 1.0, "width": 0.02, "x0": 0.25,
    }
    defaults: ClassVar[Mapping[str, float]] = {"velocity": 1.0, "nu": 3e-4, "amplitude": 1.0}

    def __init__(self, **settings: Any) -> None:
        check_unknown_settings(self.name, settings, self.setting_defaults)
        super().__init__(**{**self.setting_defaults, **settings})
        s = self.settings
        self.n_x = _integer("n_x", s["n_x"], 8)
        self.n_grid = self.n_x if s["n_grid"] is None else _integer("n_grid", s["n_grid"], self.n_x)
        if self.n_grid % self.n_x:
            raise _bad("n_grid", f"expected a multiple of n_x = {self.n_x} (or null)", s["n_grid"])
        self.t_end = _positive("t_end", s["t_end"])
        self.n_time = _integer("n_time", s["n_time"], 2)
        self.length = _positive("length", s["length"])
        self.width = _positive("width", s["width"])
        self.x0 = check_setting("x0", s["x0"], "float")
        resolved = math.exp(-0.5 * (math.pi * self.n_grid * self.width / self.length) ** 2)
        if resolved > 1e-10:
            raise _bad("n_grid", f"too coarse for width {self.width:g}: the pulse's Fourier series "
                                 f"is truncated at {resolved:.1e} (need n_grid >= "
                                 f"{math.ceil(6.8 * self.length / (math.pi * self.width))})", self.n_grid)

    def parameters(self) -> Sequence[Parameter]:
        return [
            Parameter("velocity", 0.5, 1.5, "m s-1", "advection velocity"),
            Parameter("nu", 1e-4, 1e-3, "m2 s-1", "diffusivity", log_scale=True),
            Parameter("amplitude", 0.5, 1.5, "1", "initial pulse height"),
        ]

    def outputs(self) -> Sequence[OutputVariable]:
        return [OutputVariable("u", ("time", "x"), "1", "transported scalar")]

    def coordinates(self) -> Mapping[str, Coordinate]:
        return {
            "x": Coordinate(("x",), self.length * np.arange(self.n_x) / self.n_x, "m", "position",
                            {"periodic": 1}),
            "time": Coordinate(("time",), np.linspace(0.0, self.t_end, self.n_time), "s", "time"),
        }

    def attrs(self) -> dict[str, Any]:
        return {
            "equation": "u_t + velocity u_x = nu u_xx on [0, L) periodic; u(x, 0) = amplitude "
                        "exp(-(x - x0)^2 / (2 width^2)) (periodic images)",
            "solver": "Fourier pseudo-spectral, exact time integration",
            "solver_n_grid": self.n_grid,
            "pulse_width": self.width, "pulse_x0": self.x0, "domain_length": self.length,
        }

    def resolve(self, params: Mapping[str, float]) -> dict[str, float]:
        p = self.complete_parameters(params, self.defaults)
        if p["nu"] < 0:
            raise SampleFailure(f"nu must be >= 0, got {p['nu']}", "failed")
        return p

    def run_sample(self, params: Mapping[str, float]) -> Mapping[str, np.ndarray]:
        p = self.resolve(params)
        times = np.linspace(0.0, self.t_end, self.n_time)
        u = solve_spectral(p["velocity"], p["nu"], p["amplitude"], times, self.n_grid,
                           width=self.width, x0=self.x0, length=self.length)
        return {"u": np.ascontiguousarray(u[:, :: self.n_grid // self.n_x])}

    def exact(self, params: Mapping[str, float]) -> np.ndarray:
        """The closed-form solution on the output grid and times (for verification)."""
        p = self.resolve(params)
        x = self.coordinates()["x"].values
        return np.stack([exact_solution(x, t, p["velocity"], p["nu"], p["amplitude"], width=self.width,
                                        x0=self.x0, length=self.length)
                         for t in np.linspace(0.0, self.t_end, self.n_time)])


__all__ = ["AdvectionDiffusion1D", "exact_solution", "solve_spectral"]
