"""A stochastic energy-balance model: a forced system with internal variability.

The model (a one-dimensional Hasselmann / Budyko-Sellers type climate model on a periodic
"latitude circle" ``x in [0, 2 pi)``) is the stochastic heat equation for the temperature
anomaly ``T(x, t)`` (K) after an abrupt forcing at ``t = 0``::

    C dT = (D T_xx - lambda T + F g(x) + A h(x)) dt + sigma dW(x, t)

* ``C`` heat capacity (``heat_capacity``, W yr m-2 K-1, a mixed ocean layer), ``lambda`` the
  feedback parameter (``feedback``, W m-2 K-1), ``D`` the meridional diffusivity
  (``diffusivity``, W m-2 K-1 per squared radian);
* the forcings are the design parameters: greenhouse forcing ``F`` (``forcing``, W m-2) with the
  pattern ``g(x) = 1 + 0.5 cos x`` and aerosol forcing ``A`` (``aerosol``, W m-2, negative) with
  the localised pattern ``h(x) = exp(2 (cos(x - pi/2) - 1))``;
* ``W`` is a Wiener process independent at each of the ``n_x`` grid points (``noise``,
  ``sigma`` in W m-2 yr^1/2): the weather that makes two runs at the same forcing differ.

Every run starts from the unforced model's stationary distribution (a "control climate"), so
the members of one forcing differ from the first output on.  The *mean* response is linear in
both forcings, exactly: ``E[T](x, t) = F G(x, t) + A H(x, t)``, the setting of pattern scaling.

Solver
    Exact in distribution.  In the orthonormal real Fourier basis of the grid the model is one
    Ornstein-Uhlenbeck process per wavenumber ``k`` with rate ``a_k = (lambda + D k^2) / C``;
    over an output interval ``dt`` each coefficient is advanced by
    ``T_k <- exp(-a_k dt) T_k + (1 - exp(-a_k dt)) f_k / (C a_k) + (sigma / C)
    sqrt((1 - exp(-2 a_k dt)) / (2 a_k)) xi_k`` with ``xi_k`` the orthonormal transform of
    independent standard normal grid values: no time-step error at all.

Reference
    :meth:`StochasticEnergyBalance.mean_response` (the closed-form ensemble mean) and
    :meth:`StochasticEnergyBalance.stationary_std` (the closed-form variability);
    ``tests/unit/test_energy_balance.py`` checks the solver's ensembles against both and its
    noise-free runs against ``scipy.integrate.solve_ivp`` on the same grid.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
from scipy import fft as sp_fft

from .base import Coordinate, OutputVariable, Parameter, Simulator, check_setting, check_unknown_settings


class StochasticEnergyBalance(Simulator):
    """Abrupt-forcing runs of the stochastic energy-balance model (module docstring); output
    ``T(time, x)``.

    Settings (all optional): ``n_x`` (int, 64), ``t_end`` (float, 30 yr), ``n_time`` (int, 31;
    outputs equally spaced from 0 to ``t_end``), ``heat_capacity`` (8 W yr m-2 K-1),
    ``feedback`` (1.2 W m-2 K-1), ``diffusivity`` (0.3 W m-2 K-1 rad-2), ``noise`` (4.0
    W m-2 yr^1/2: a stationary std of 0.28 K at a grid point with n_x = 64 (the noise is
    independent per grid point, so the spread depends on n_x: 0.20 K at 128); 0 makes the model deterministic).

    Parameters: ``forcing`` (W m-2, 2 to 8) and ``aerosol`` (W m-2, -2 to 0).  Stochastic: the
    noise seed of a run is the design member's ``noise_seed`` (:meth:`Simulator.noise_seed`).
    """

    name: ClassVar[str] = "stochastic_ebm"
    time_dim: ClassVar[str | None] = "time"
    stochastic: ClassVar[bool] = True
    #: a batch runs in the generate job's own process (one run takes ~1 ms: starting a dask
    #: cluster would cost more than the runs)
    vectorised: ClassVar[bool] = True
    setting_defaults: ClassVar[Mapping[str, Any]] = {
        "n_x": 64, "t_end": 30.0, "n_time": 31, "heat_capacity": 8.0, "feedback": 1.2, "diffusivity": 0.3,
        "noise": 4.0,
    }
    defaults: ClassVar[Mapping[str, float]] = {"forcing": 4.0, "aerosol": 0.0}

    def __init__(self, **settings: Any) -> None:
        check_unknown_settings(self.name, settings, self.setting_defaults)
        super().__init__(**{**self.setting_defaults, **settings})
        s = self.settings
        self.n_x = check_setting("n_x", s["n_x"], "int", minimum=4)
        self.t_end = check_setting("t_end", s["t_end"], "float", exclusive_minimum=0)
        self.n_time = check_setting("n_time", s["n_time"], "int", minimum=2)
        self.heat_capacity = check_setting("heat_capacity", s["heat_capacity"], "float", exclusive_minimum=0)
        self.feedback = check_setting("feedback", s["feedback"], "float", exclusive_minimum=0)
        self.diffusivity = check_setting("diffusivity", s["diffusivity"], "float", minimum=0)
        self.noise = check_setting("noise", s["noise"], "float", minimum=0)
        self.x = 2.0 * math.pi * np.arange(self.n_x) / self.n_x
        self.times = np.linspace(0.0, self.t_end, self.n_time)
        k = sp_fft.rfftfreq(self.n_x, d=1.0 / self.n_x)            # integer wavenumbers on [0, 2 pi)
        #: relaxation rate of each real Fourier mode (1/yr)
        self.rates = (self.feedback + self.diffusivity * k ** 2) / self.heat_capacity

    # -- declarations
    def parameters(self) -> Sequence[Parameter]:
        return [Parameter("forcing", 2.0, 8.0, "W m-2", "greenhouse forcing (pattern 1 + 0.5 cos x)"),
                Parameter("aerosol", -2.0, 0.0, "W m-2", "aerosol forcing (localised pattern)")]

    def outputs(self) -> Sequence[OutputVariable]:
        return [OutputVariable("T", ("time", "x"), "K", "temperature anomaly")]

    def coordinates(self) -> Mapping[str, Coordinate]:
        return {"x": Coordinate(("x",), self.x, "rad", "position on the periodic circle", {"periodic": 1}),
                "time": Coordinate(("time",), self.times, "yr", "time since the abrupt forcing")}

    def attrs(self) -> dict[str, Any]:
        return {"equation": "C dT = (D T_xx - lambda T + F (1 + 0.5 cos x) + A exp(2 (cos(x - pi/2) - 1))) dt "
                            "+ sigma dW, x in [0, 2 pi) periodic, T(0) from the unforced stationary law",
                "solver": "exact Ornstein-Uhlenbeck update per real Fourier mode (no time-step error)",
                "heat_capacity": self.heat_capacity, "feedback": self.feedback, "diffusivity": self.diffusivity,
                "noise": self.noise}

    # -- the model
    def forcing_field(self, params: Mapping[str, float]) -> np.ndarray:
        """``F g(x) + A h(x)`` (W m-2) on the grid (a member's ``noise_seed`` is ignored)."""
        p = self.complete_parameters(self.noise_seed(params)[0], self.defaults)
        g = 1.0 + 0.5 * np.cos(self.x)
        h = np.exp(2.0 * (np.cos(self.x - 0.5 * math.pi) - 1.0))
        return p["forcing"] * g + p["aerosol"] * h

    def mean_response(self, params: Mapping[str, float]) -> np.ndarray:
        """The closed-form ensemble mean ``E[T](time, x)``: ``(1 - exp(-a_k t)) f_k / (C a_k)``
        per mode (linear in the forcings)."""
        f = sp_fft.rfft(self.forcing_field(params), norm="ortho") / self.heat_capacity
        growth = 1.0 - np.exp(-np.outer(self.times, self.rates))
        return sp_fft.irfft(growth * (f / self.rates)[None, :], self.n_x, axis=1, norm="ortho")

    def stationary_std(self) -> float:
        """The closed-form standard deviation of ``T`` at a grid point in the unforced
        stationary state: ``(sigma / C) sqrt(sum_k m_k / (2 a_k) / n_x)`` (``m_k`` = 1 for the
        mean and Nyquist modes, 2 for the others)."""
        mult = np.full(self.rates.size, 2.0)
        mult[0] = 1.0
        if self.n_x % 2 == 0:
            mult[-1] = 1.0
        return float(self.noise / self.heat_capacity * math.sqrt(np.sum(mult / (2.0 * self.rates)) / self.n_x))

    def _xi(self, rng: np.random.Generator) -> np.ndarray:
        return sp_fft.rfft(rng.standard_normal(self.n_x), norm="ortho")

    def run_sample(self, params: Mapping[str, float]) -> Mapping[str, np.ndarray]:
        p, seed = self.noise_seed(params)
        rng = np.random.default_rng(seed)
        a, s = self.rates, self.noise / self.heat_capacity
        f = sp_fft.rfft(self.forcing_field(p), norm="ortho") / self.heat_capacity
        out = np.empty((self.n_time, self.n_x))
        Tk = s * np.sqrt(1.0 / (2.0 * a)) * self._xi(rng)          # the unforced stationary law
        out[0] = sp_fft.irfft(Tk, self.n_x, norm="ortho")
        for i in range(1, self.n_time):
            dt = self.times[i] - self.times[i - 1]
            decay = np.exp(-a * dt)
            Tk = decay * Tk + (1.0 - decay) * f / a + s * np.sqrt((1.0 - decay ** 2) / (2.0 * a)) * self._xi(rng)
            out[i] = sp_fft.irfft(Tk, self.n_x, norm="ortho")
        return {"T": out}


__all__ = ["StochasticEnergyBalance"]
