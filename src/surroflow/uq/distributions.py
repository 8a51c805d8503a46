"""Input distributions of an uncertainty study: one marginal per parameter (scipy.stats), an
optional Gaussian copula for correlated inputs.

A ``uq.inputs`` entry is ``{distribution: uniform, low, high}``, ``{distribution: normal, mean,
std}``, ``{distribution: lognormal, mu, sigma}`` (of the logarithm), ``{distribution:
truncnormal, mean, std, low, high}`` or ``{distribution: fixed, value}``.  ``uq.correlation`` is
the correlation matrix of the *normal scores* of the random (not fixed) inputs, in the order of
``inputs``: ``Z ~ N(0, R)``, ``U = Phi(Z)``, ``x_j = F_j^-1(U_j)`` (a Gaussian copula; the
marginals are kept exactly, the rank correlation follows ``R``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
from scipy import stats

from .. import SurroflowError

#: the numbers each distribution takes
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "uniform": ("low", "high"),
    "normal": ("mean", "std"),
    "lognormal": ("mu", "sigma"),
    "truncnormal": ("mean", "std", "low", "high"),
    "fixed": ("value",),
}
#: uniforms are kept this far from 0 and 1 before an inverse CDF (normal tails stay finite)
_EPS = 1e-12


def input_problems(inputs: Mapping[str, Mapping[str, Any]], correlation: Any, parameters: Sequence[str],
                   where: str = "uq") -> list[str]:
    """Every problem of ``inputs``/``correlation`` against the model's ``parameters``, one line
    each naming its key (``<where>.inputs.<name>...``)."""
    out: list[str] = []
    missing = [p for p in parameters if p not in inputs]
    unknown = [n for n in inputs if n not in parameters]
    if missing:
        out.append(f"{where}.inputs: no distribution for parameter(s) {missing}; every parameter of the model "
                   f"{list(parameters)} needs one (or {{distribution: fixed, value: v}})")
    if unknown:
        out.append(f"{where}.inputs: {unknown} are not parameters of the model; allowed: {list(parameters)}")
    for name, spec in inputs.items():
        key = f"{where}.inputs.{name}"
        dist = spec.get("distribution")
        if dist not in DISTRIBUTIONS:
            out.append(f"{key}.distribution: {dist!r} is not allowed; allowed: {list(DISTRIBUTIONS)}")
            continue
        need = DISTRIBUTIONS[dist]
        absent = [k for k in need if spec.get(k) is None]
        extra = sorted(k for k in spec if k != "distribution" and k not in need and spec[k] is not None)
        if absent:
            out.append(f"{key}: distribution {dist} needs {list(need)}; missing {absent}")
            continue
        if extra:
            out.append(f"{key}: distribution {dist} takes {list(need)}, not {extra}")
            continue
        v = {k: float(spec[k]) for k in need}
        if not all(np.isfinite(x) for x in v.values()):
            out.append(f"{key}: {v} must be finite numbers")
        elif dist in ("uniform", "truncnormal") and not v["low"] < v["high"]:
            out.append(f"{key}: low ({v['low']:g}) must be < high ({v['high']:g})")
        elif dist in ("normal", "truncnormal") and not v["std"] > 0:
            out.append(f"{key}.std: {v['std']:g} must be > 0")
        elif dist == "lognormal" and not v["sigma"] > 0:
            out.append(f"{key}.sigma: {v['sigma']:g} must be > 0")
    if correlation is not None:
        random = [n for n, s in inputs.items() if s.get("distribution") != "fixed"]
        out += correlation_problems(correlation, random, f"{where}.correlation")
    return out


def correlation_problems(correlation: Any, names: Sequence[str], key: str = "uq.correlation") -> list[str]:
    """A correlation matrix of the normal scores of ``names`` must be square of their size,
    symmetric, with unit diagonal and positive definite: else one sentence saying which."""
    try:
        R = np.asarray(correlation, dtype=float)
    except (TypeError, ValueError):
        return [f"{key}: not a matrix of numbers"]
    n = len(names)
    if R.shape != (n, n):
        return [f"{key}: a {n}x{n} matrix is needed (the random inputs {list(names)}, in the order of inputs); "
                f"got shape {R.shape}"]
    if not np.all(np.isfinite(R)):
        return [f"{key}: entries must be finite"]
    if not np.allclose(R, R.T, atol=1e-12):
        i, j = np.argwhere(~np.isclose(R, R.T, atol=1e-12))[0]
        return [f"{key}: not symmetric (entry [{i}][{j}] = {R[i, j]:g} but [{j}][{i}] = {R[j, i]:g})"]
    if not np.allclose(np.diag(R), 1.0, atol=1e-12):
        return [f"{key}: the diagonal must be 1 (a correlation matrix); got {np.diag(R).tolist()}"]
    if np.any(np.abs(R) > 1):
        return [f"{key}: correlations must lie in [-1, 1]"]
    if np.linalg.eigvalsh(R)[0] <= 1e-10:
        return [f"{key}: not positive definite (smallest eigenvalue {np.linalg.eigvalsh(R)[0]:.3g}); "
                "the correlations contradict each other or two inputs are perfectly correlated"]
    return []


def marginal(spec: Mapping[str, Any]) -> Any:
    """The frozen scipy.stats distribution of one (validated, not fixed) input."""
    d = spec["distribution"]
    if d == "uniform":
        return stats.uniform(loc=float(spec["low"]), scale=float(spec["high"]) - float(spec["low"]))
    if d == "normal":
        return stats.norm(loc=float(spec["mean"]), scale=float(spec["std"]))
    if d == "lognormal":
        return stats.lognorm(s=float(spec["sigma"]), scale=float(np.exp(float(spec["mu"]))))
    if d == "truncnormal":
        m, s = float(spec["mean"]), float(spec["std"])
        return stats.truncnorm((float(spec["low"]) - m) / s, (float(spec["high"]) - m) / s, loc=m, scale=s)
    raise SurroflowError(f"distribution {d!r} has no marginal; allowed: {list(DISTRIBUTIONS)[:-1]}")


@dataclass
class InputModel:
    """The joint input distribution of the model's ``parameters`` (in the model's order)."""

    parameters: list[str]
    specs: dict[str, dict[str, Any]]
    correlation: np.ndarray | None = None
    #: the random (not fixed) inputs in the order of ``uq.inputs`` (the correlation's order)
    order: list[str] = field(default_factory=list)

    @classmethod
    def from_config(cls, inputs: Mapping[str, Mapping[str, Any]], parameters: Sequence[str],
                    correlation: Any = None, where: str = "uq") -> "InputModel":
        problems = input_problems(inputs, correlation, parameters, where)
        if problems:
            raise SurroflowError("; ".join(problems))
        R = None if correlation is None else np.asarray(correlation, dtype=float)
        # the correlation is given in the order of inputs; keep the random inputs in that order
        order = [n for n in inputs if inputs[n]["distribution"] != "fixed"]
        return cls(list(parameters), {n: dict(inputs[n]) for n in parameters}, R, order)

    @property
    def random(self) -> list[str]:
        """The inputs that vary, in the order of ``inputs`` (the correlation's order)."""
        return list(self.order or [n for n in self.parameters if self.specs[n]["distribution"] != "fixed"])

    @property
    def correlated(self) -> bool:
        return self.correlation is not None and not np.allclose(self.correlation, np.eye(len(self.random)))

    def marginals(self) -> dict[str, Any]:
        return {n: marginal(self.specs[n]) for n in self.random}

    def from_uniform(self, U: np.ndarray) -> np.ndarray:
        """``(n, n_parameters)`` inputs from independent uniforms ``U`` ``(n, n_random)`` (columns
        in :attr:`random` order) through each marginal's inverse CDF; fixed inputs filled in."""
        U = np.clip(np.atleast_2d(np.asarray(U, dtype=float)), _EPS, 1 - _EPS)
        X = np.empty((U.shape[0], len(self.parameters)))
        margins = self.marginals()
        for j, n in enumerate(self.parameters):
            if self.specs[n]["distribution"] == "fixed":
                X[:, j] = float(self.specs[n]["value"])
            else:
                X[:, j] = margins[n].ppf(U[:, self.random.index(n)])
        return X

    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """``n`` independent draws of the joint distribution, ``(n, n_parameters)``."""
        rng = np.random.default_rng(rng)
        d = len(self.random)
        if self.correlation is not None and d:
            L = np.linalg.cholesky(self.correlation)
            U = stats.norm.cdf(rng.standard_normal((n, d)) @ L.T)
        else:
            U = rng.random((n, d))
        return self.from_uniform(U)

    def moments(self) -> dict[str, tuple[float, float]]:
        """Exact ``(mean, std)`` of each input (fixed: ``(value, 0)``)."""
        out = {}
        margins = self.marginals()
        for n in self.parameters:
            if n in margins:
                out[n] = (float(margins[n].mean()), float(margins[n].std()))
            else:
                out[n] = (float(self.specs[n]["value"]), 0.0)
        return out

    def describe(self) -> str:
        """One line per input, for attributes and logs."""
        parts = []
        for n in self.parameters:
            s = self.specs[n]
            nums = ", ".join(f"{k}={float(s[k]):g}" for k in DISTRIBUTIONS[s["distribution"]])
            parts.append(f"{n} ~ {s['distribution']}({nums})")
        if self.correlation is not None:
            parts.append(f"normal-score correlation of {self.random}: {np.asarray(self.correlation).tolist()}")
        return "; ".join(parts)


__all__ = ["DISTRIBUTIONS", "InputModel", "input_problems", "correlation_problems", "marginal"]
