"""The Ishigami function: an analytic test case of uncertainty propagation and global sensitivity.

``y = sin x1 + a sin^2 x2 + b x3^4 sin x1`` with ``x1, x2, x3 ~ U(-pi, pi)`` independent
(Ishigami and Homma 1990; defaults ``a = 7``, ``b = 0.1``).  It is strongly non-linear and
non-monotonic, and ``x3`` acts only through its interaction with ``x1`` (first-order index 0,
total index > 0): the standard check of Sobol-index estimators.

Exact moments and indices (:func:`ishigami_reference`), from the one-dimensional integrals
``E[sin^2] = 1/2``, ``E[sin^4] = 3/8``, ``E[x^4] = pi^4/5``, ``E[x^8] = pi^8/9`` over ``U(-pi, pi)``:

* mean ``a/2``; variance ``V = a^2/8 + b pi^4/5 + b^2 pi^8/18 + 1/2``;
* ``V1 = (1 + b pi^4/5)^2 / 2``, ``V2 = a^2/8``, ``V3 = 0``, ``V13 = b^2 pi^8 (1/18 - 1/50)``;
* ``S_i = V_i / V``, ``ST1 = (V1 + V13)/V``, ``ST2 = V2/V``, ``ST3 = V13/V``.

``tests/unit/test_ishigami.py`` checks them against quadrature of the simulator itself.

Output: ``y(point)``, one value (a one-point field, so it flows through the POD and reduced
models like any steady field).  The simulator is vectorised: a batch is one numpy expression.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from .base import Coordinate, OutputVariable, Parameter, SampleFailure, Simulator, check_setting, check_unknown_settings

PARAMETERS = ("x1", "x2", "x3")


def ishigami(x1: Any, x2: Any, x3: Any, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    """``sin x1 + a sin^2 x2 + b x3^4 sin x1`` (elementwise)."""
    x1, x2, x3 = (np.asarray(v, dtype=float) for v in (x1, x2, x3))
    return np.sin(x1) + a * np.sin(x2) ** 2 + b * x3 ** 4 * np.sin(x1)


def ishigami_reference(a: float = 7.0, b: float = 0.1) -> dict[str, Any]:
    """Exact mean, variance, first-order and total Sobol indices (``{"x1": ..., ...}``) for
    independent ``U(-pi, pi)`` inputs."""
    pi4, pi8 = math.pi ** 4, math.pi ** 8
    v1 = 0.5 * (1.0 + b * pi4 / 5.0) ** 2
    v2 = a ** 2 / 8.0
    v13 = b ** 2 * pi8 * (1.0 / 18.0 - 1.0 / 50.0)
    var = a ** 2 / 8.0 + b * pi4 / 5.0 + b ** 2 * pi8 / 18.0 + 0.5
    return {"mean": a / 2.0, "variance": var,
            "first": {"x1": v1 / var, "x2": v2 / var, "x3": 0.0},
            "total": {"x1": (v1 + v13) / var, "x2": v2 / var, "x3": v13 / var}}


class Ishigami(Simulator):
    """The Ishigami function as a steady simulator with one output point.

    Settings: ``a`` (float, 7.0), ``b`` (float, 0.1).  Parameters ``x1``, ``x2``, ``x3`` in
    ``[-pi, pi]``; a design that does not vary one gets 0.
    """

    name: ClassVar[str] = "ishigami"
    time_dim: ClassVar[str | None] = None
    setting_defaults: ClassVar[Mapping[str, Any]] = {"a": 7.0, "b": 0.1}
    defaults: ClassVar[Mapping[str, float]] = {"x1": 0.0, "x2": 0.0, "x3": 0.0}
    vectorised: ClassVar[bool] = True

    def __init__(self, **settings: Any) -> None:
        check_unknown_settings(self.name, settings, self.setting_defaults)
        super().__init__(**{**self.setting_defaults, **settings})
        self.a = check_setting("a", self.settings["a"], "float")
        self.b = check_setting("b", self.settings["b"], "float")

    def parameters(self) -> Sequence[Parameter]:
        return [Parameter(n, -math.pi, math.pi, "1", f"Ishigami input {n}") for n in PARAMETERS]

    def outputs(self) -> Sequence[OutputVariable]:
        return [OutputVariable("y", ("point",), "1", "Ishigami function")]

    def coordinates(self) -> Mapping[str, Coordinate]:
        return {"point": Coordinate(("point",), np.zeros(1), "1", "output point")}

    def attrs(self) -> dict[str, Any]:
        return {"equation": "y = sin x1 + a sin^2 x2 + b x3^4 sin x1", "ishigami_a": self.a, "ishigami_b": self.b}

    def run_sample(self, params: Mapping[str, float]) -> Mapping[str, np.ndarray]:
        p = self.complete_parameters(params, self.defaults)
        return {"y": np.atleast_1d(ishigami(p["x1"], p["x2"], p["x3"], self.a, self.b))}

    def run_batch(self, params: Sequence[Mapping[str, float]]) -> list[Mapping[str, np.ndarray] | SampleFailure]:
        out: list[Mapping[str, np.ndarray] | SampleFailure] = []
        rows: list[int] = []
        resolved = []
        for i, prm in enumerate(params):
            try:
                resolved.append(self.complete_parameters(prm, self.defaults))
                rows.append(i)
                out.append({})
            except SampleFailure as exc:
                out.append(exc)
        if resolved:
            X = np.array([[p[n] for n in PARAMETERS] for p in resolved])
            y = ishigami(X[:, 0], X[:, 1], X[:, 2], self.a, self.b)
            for i, v in zip(rows, y):
                out[i] = {"y": np.array([v])}
        return out


__all__ = ["Ishigami", "ishigami", "ishigami_reference", "PARAMETERS"]
