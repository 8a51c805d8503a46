"""How honest a surrogate's uncertainty is on the held-out test design.

Two kinds of uncertainty are checked, per surrogate:

* the **conformal band** every model file carries (calibrated by ``train_surrogate``,
  :mod:`surroflow.surrogates.conformal`: split-conformal on the study's calibration design, or
  cross-conformal on the training design without one; the test design never enters it):
  test sample ``i`` is covered at level ``p`` when its whole true output (every variable, point
  and time) lies in ``u_hat +- q(p) s``, i.e. when its score ``max |u - u_hat| / s`` is at most
  the conformal quantile ``q(p)`` of the stored calibration scores.  ``calibration_method``
  and ``n_calibration`` say which band it is; ``calibration_seconds`` is its cost (compute, plus
  the high-fidelity runs of a calibration design).  ``coverage_95`` is the fraction
  of covered ok test samples at ``p = 0.95``; ``interval_width_mean`` the mean over test samples
  of the band's relative width ``2 q ||s||_W / ||u_hat||_W`` (weighted norm of the bases, summed
  over times) of the model's first variable (``interval_width_mean_<var>`` for the others);
* a **Gaussian process's own** predictive std (coefficient std mapped through the modes,
  coefficients taken as independent; :meth:`~surroflow.surrogates.reduced.ReducedModel.predict_fields`
  with ``return_std``): ``gp_coverage_95_pointwise`` is the fraction of points (all variables,
  points and times) with ``|u - u_hat| <= 1.96 std``, averaged over test samples;
  ``gp_std_error_ratio`` the median over test samples of ``||std||_W / ||u - u_hat||_W`` (first
  variable): 1 for a std of the size of the error, below 1 for an over-confident one.  The std
  describes the regressor's uncertainty about the reduced coordinates only; the error of the
  truncated basis (the projection error) is outside it, so a GP whose error is mostly projection
  error is over-confident by construction.  ``gp_coverage_95_pointwise_in_basis`` (global bases)
  separates the two: the same pointwise coverage against the projection of the truth onto the
  basis, the target the std does describe.

:data:`LEVELS` are the nominal levels of the calibration figure.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from ..surrogates.conformal import LEVEL, field_scores

logger = logging.getLogger(__name__)

#: nominal levels of the calibration figure (a level needs ``min_samples(level)`` training samples)
LEVELS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def _z(level: float) -> float:
    from scipy.stats import norm
    return float(norm.ppf(0.5 + level / 2.0))


def weighted_norm(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted norm of each sample of ``a`` ``(n, n_time, n_space)`` (sum over times)."""
    return np.sqrt(np.einsum("itj,itj,j->i", a, a, w))


@dataclass
class UncertaintyResult:
    """One surrogate's uncertainty on the test samples (module docstring)."""

    variables: list[str]
    levels: np.ndarray = field(default_factory=lambda: np.asarray(LEVELS))
    #: conformal: per test sample its score, and its relative band width per variable (at 0.95)
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    widths: dict[str, np.ndarray] = field(default_factory=dict)
    quantiles: np.ndarray = field(default_factory=lambda: np.full(len(LEVELS), np.nan))
    calibration_seconds: float = math.nan
    n_calibration: int = 0
    calibration_method: str = ""
    conformal_reason: str = ""
    #: Gaussian process: per test sample the fraction of points inside +-z(level) std, per level
    gp_pointwise: np.ndarray | None = None      # (n_test, n_levels)
    gp_ratio: np.ndarray | None = None          # (n_test,)
    gp_in_basis: np.ndarray | None = None       # (n_test,): coverage of the projected truth at 0.95

    @property
    def conformal_coverage(self) -> np.ndarray:
        """Empirical coverage of the band at each of :attr:`levels` (NaN where ``q`` is)."""
        if self.scores.size == 0:
            return np.full(self.levels.size, np.nan)
        return np.array([np.mean(self.scores <= q) if np.isfinite(q) else np.nan for q in self.quantiles])

    @property
    def gp_coverage(self) -> np.ndarray:
        """Mean pointwise coverage of the GP's own intervals at each of :attr:`levels`."""
        if self.gp_pointwise is None:
            return np.full(self.levels.size, np.nan)
        return self.gp_pointwise.mean(axis=0)

    def _at(self, arr: np.ndarray) -> float:
        k = int(np.flatnonzero(np.isclose(self.levels, LEVEL))[0])
        return float(arr[k])

    def summary(self) -> dict[str, Any]:
        """The summary columns of this surrogate."""
        v0 = self.variables[0]
        width = self.widths.get(v0)
        out: dict[str, Any] = {
            "coverage_95": self._at(self.conformal_coverage),
            "interval_width_mean": float(np.mean(width)) if width is not None and width.size else math.nan,
            "gp_coverage_95_pointwise": self._at(self.gp_coverage),
            "gp_std_error_ratio": float(np.median(self.gp_ratio)) if self.gp_ratio is not None else math.nan,
            "calibration_seconds": self.calibration_seconds,
            "calibration_method": self.calibration_method,
            "n_calibration": self.n_calibration,
            "gp_coverage_95_pointwise_in_basis": (float(np.mean(self.gp_in_basis)) if self.gp_in_basis is not None
                                                  else math.nan),
        }
        for v in self.variables[1:]:
            w = self.widths.get(v)
            out[f"interval_width_mean_{v}"] = float(np.mean(w)) if w is not None and w.size else math.nan
        return out


def evaluate_uncertainty(model: Any, design: np.ndarray, times: np.ndarray | None,
                         truth: Mapping[str, np.ndarray], predictions: Mapping[str, np.ndarray],
                         where: str = "") -> UncertaintyResult:
    """Coverage and width of ``model``'s conformal band, and its GP's own coverage, on the test
    rows: ``truth[var]`` ``(n * n_time, n_space)`` (snapshot rows), ``predictions[var]`` the
    model's ``predict_fields(design, times)``."""
    n = design.shape[0]
    nt = 1 if times is None else len(times)
    variables = list(model.variables)
    w = {v: np.asarray(model.bases[v].weights_, dtype=float) for v in variables}
    u = {v: np.asarray(truth[v], dtype=float).reshape(n, nt, -1) for v in variables}
    uh = {v: np.asarray(predictions[v], dtype=float).reshape(n, nt, -1) for v in variables}
    r = {v: u[v] - uh[v] for v in variables}
    res = UncertaintyResult(variables)
    cal = model.calibration_
    if cal is None:
        res.conformal_reason = "the model file has no calibration (trained before it existed: rerun train_surrogate)"
    else:
        # a calibration design's high-fidelity runs are part of the band's cost
        res.calibration_seconds = cal.seconds + (cal.generation_seconds if cal.method == "split_conformal" else 0.0)
        res.n_calibration, res.calibration_method = cal.n, cal.method
        same_times = (times is None and model.times_ is None) or (
            times is not None and model.times_ is not None and np.array_equal(np.asarray(times, dtype=float),
                                                                                np.asarray(model.times_, dtype=float)))
        res.conformal_reason = cal.why_not(LEVEL) or ("" if same_times else
                                                      "the test times differ from the training times the band "
                                                      "was calibrated on")
        if not cal.reason and same_times:
            res.quantiles = np.array([cal.quantile(p) for p in res.levels])
            res.scores = field_scores(r, cal.scale)
            q = cal.quantile(LEVEL)
            norm_pred = {v: np.maximum(weighted_norm(uh[v], w[v]), np.finfo(float).tiny) for v in variables}
            res.widths = {v: 2.0 * q * float(weighted_norm(cal.scale[v][None], w[v])[0]) / norm_pred[v] for v in variables}
    if res.conformal_reason:
        logger.warning("%s: conformal coverage not computed at %.2f: %s", where, LEVEL, res.conformal_reason)
    if getattr(model, "supports_std", False):
        _, std = model.predict_fields(design, times, return_std=True)
        s = {v: np.asarray(std[v], dtype=float).reshape(n, nt, -1) for v in variables}
        n_points = sum(r[v][0].size for v in variables)
        res.gp_pointwise = np.stack([sum(np.sum(np.abs(r[v]) <= _z(p) * s[v], axis=(1, 2)) for v in variables)
                                     / n_points for p in res.levels], axis=1)
        if not model.local:
            z = _z(LEVEL)
            proj = {v: model.bases[v].project(np.asarray(truth[v], dtype=float)).reshape(n, nt, -1) for v in variables}
            res.gp_in_basis = sum(np.sum(np.abs(proj[v] - uh[v]) <= z * s[v], axis=(1, 2)) for v in variables) / n_points
        v0 = variables[0]
        res.gp_ratio = weighted_norm(s[v0], w[v0]) / np.maximum(weighted_norm(r[v0], w[v0]), np.finfo(float).tiny)
    s95 = res.summary()
    logger.info("%s: conformal band (%s, K=%s, n=%d): q95 %.4g, coverage %.3f, relative width %.3g; GP pointwise "
                "coverage %.3f (%.3f against the truth projected on the basis), std/error %.3g", where,
                res.calibration_method or "none", None if cal is None else cal.n_folds, res.n_calibration,
                res._at(res.quantiles), s95["coverage_95"], s95["interval_width_mean"],
                s95["gp_coverage_95_pointwise"], s95["gp_coverage_95_pointwise_in_basis"], s95["gp_std_error_ratio"])
    return res


def uncertainty_dataset(results: Sequence[UncertaintyResult], samples: np.ndarray,
                        names: Sequence[str]) -> xr.Dataset:
    """Per-sample and per-level arrays of the uncertainty check (part of ``metrics.nc``)."""
    m, n = len(results), len(samples)
    levels = np.asarray(LEVELS)
    score = np.full((m, n), np.nan)
    width = np.full((m, n), np.nan)
    gp = np.full((m, n), np.nan)
    cov = np.full((m, levels.size), np.nan)
    gpc = np.full((m, levels.size), np.nan)
    q = np.full((m, levels.size), np.nan)
    k95 = int(np.flatnonzero(np.isclose(levels, LEVEL))[0])
    for i, res in enumerate(results):
        if res.scores.size:
            score[i] = res.scores
        v0 = res.variables[0]
        if v0 in res.widths:
            width[i] = res.widths[v0]
        if res.gp_pointwise is not None:
            gp[i] = res.gp_pointwise[:, k95]
        cov[i], gpc[i], q[i] = res.conformal_coverage, res.gp_coverage, res.quantiles
    notes = "; ".join(f"{nm}: {r.conformal_reason}" for nm, r in zip(names, results) if r.conformal_reason)
    return xr.Dataset(
        {"conformal_score": (("surrogate", "sample"), score,
                             {"long_name": "max over the output of |error| / conformal scale (covered at level p "
                                           "when <= conformal_quantile at p)", "units": "1"}),
         "interval_width": (("surrogate", "sample"), width,
                            {"long_name": "relative width 2 q95 ||s||_W / ||prediction||_W of the conformal band "
                                          "(first variable)", "units": "1"}),
         "gp_coverage_pointwise": (("surrogate", "sample"), gp,
                                   {"long_name": "fraction of output points within the GP's nominal 95% interval "
                                                 "(+-1.96 std)", "units": "1"}),
         "conformal_quantile": (("surrogate", "level"), q,
                                {"long_name": "conformal quantile of the training scores", "units": "1"}),
         "conformal_coverage": (("surrogate", "level"), cov,
                                {"long_name": "fraction of test samples inside the conformal band", "units": "1"}),
         "gp_coverage": (("surrogate", "level"), gpc,
                         {"long_name": "mean fraction of output points inside the GP's nominal interval",
                          "units": "1"})},
        coords={"level": levels},
        attrs={"conformal_note": notes} if notes else {})


__all__ = ["LEVELS", "UncertaintyResult", "evaluate_uncertainty", "uncertainty_dataset"]
