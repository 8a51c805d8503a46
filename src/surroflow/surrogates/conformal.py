"""Conformal field bands of a reduced model: split-conformal on a calibration design drawn
independently of the training design, or cross-conformal on the training design itself.

A parametric surrogate predicts a whole field ``u_hat(x, t)`` per design point; its band is
``[u_hat - q s(x, t), u_hat + q s(x, t)]`` and a sample is *covered* when its whole true field
(every variable, point and time) lies inside: simultaneous coverage, one yes/no per sample.

Two constructions share the scale and the scores (steps 4-6 below):

* **split-conformal** (:func:`split_conformal`, used when the study has ``design.n_calibration``
  samples): the *deployed* model predicts a calibration design that it was not trained on and
  that was drawn like the test design (same method, its own seed stream), so calibration and test
  residuals are exchangeable and the band is calibrated, not merely valid.  Those samples are
  part of the training budget: they never enter the bases or the regressor, and the test design
  never enters anything.
* **cross-conformal** (:func:`cross_conformal`, the fallback without a calibration design): K
  refits on the training samples.  It is valid but conservative on a space-filling training
  design: each fold's model has fewer samples than the deployed one, and a held-out point of a
  Sobol design sits in a hole the deployed model does not have (measured on the default Burgers
  study: 100% coverage of 512 test samples at the nominal 95%, against 95-97% split-conformal).

Cross-conformal construction (the CV+ flavour of Barber et al. 2021, "Predictive inference
with the jackknife+", with a normalised max-score as in Diquigiovanni et al. 2022, "Conformal
prediction bands for multivariate functional data"):

1. split the training *samples* (never their time rows) into ``K`` folds (shuffled, seed 0);
2. per fold, refit the same model configuration on the other folds: the POD bases too, with the
   deployed model's rank (the test error of a surrogate is mostly projection error when the
   basis is rich; bases fitted on the held-out samples would hide it), the regressor cloned from
   the deployed one (same hyperparameters, same formulation).  Local bases keep their clustering
   and selector and refit each cluster's POD on its members outside the fold;
3. predict the held-out samples: out-of-fold residuals ``r_i(x, t) = u_i - u_hat_{-fold(i)}``
   (split-conformal: the deployed model's residuals on the calibration samples);
4. scale ``s(x, t)``: the root mean square of the ``n`` out-of-fold residuals at each point,
   floored at :data:`SCALE_FLOOR` times its weighted RMS over the field (per variable): points
   where every residual vanishes (a clamped node) would otherwise divide by zero;
5. score of sample ``i``: ``max |r_i| / s_{-i}`` over all variables, points and times, with
   ``s_{-i}`` the scale from the *other* ``n - 1`` residuals (so a calibration sample is scored
   as a test sample is, against a scale it did not contribute to; scoring it against ``s``
   itself would bias the scores low and the coverage with them);
6. the conformal quantile at level ``1 - alpha`` is the ``ceil((n + 1)(1 - alpha))``-th smallest
   score (:func:`conformal_quantile`); with fewer than :func:`min_samples` samples
   (19 at 95 %) it does not exist and is NaN, with the reason.

The model file keeps ``s``, all ``n`` scores and the method (:meth:`Calibration.to_dataset`),
so the evaluation computes ``q`` at any level without refitting.  The test design never enters.

Why not MAPIE: MAPIE (and other maintained conformal libraries) calibrate scalar or per-output
intervals; a simultaneous band over a field of 10^4-10^5 correlated points, with refitted bases
per fold, is not among its estimators, so this module builds it (a few dozen lines of numpy).
The quantile rank is the standard split-conformal one, so the two constructions differ only in
where the residuals come from.
"""
from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from .. import SurroflowError
from ..reduction.local import LocalPOD
from ..reduction.pod import POD

logger = logging.getLogger(__name__)

#: the nominal level of the stored quantile and of the summary's ``coverage_95``
LEVEL = 0.95
#: floor of the scale ``s``, relative to its weighted RMS over the field (per variable)
SCALE_FLOOR = 1e-2
#: seed of the fold shuffle
FOLD_SEED = 0


def min_samples(level: float = LEVEL) -> int:
    """Smallest number of calibration scores for which the conformal quantile at ``level``
    exists (``ceil((n + 1) level) <= n``): 19 at 0.95, 99 at 0.99."""
    n = 1
    while _rank(n, level) > n:
        n += 1
    return n


def _rank(n: int, level: float) -> int:
    # the 1e-9 keeps (n + 1) * level an integer when it is one in exact arithmetic (20 * 0.95)
    return int(math.ceil((n + 1) * float(level) - 1e-9))


def conformal_quantile(scores: Any, level: float = LEVEL) -> float:
    """The ``ceil((n + 1) level)``-th smallest of the ``n`` finite ``scores``; NaN when that
    rank exceeds ``n`` (too few scores for this level) or there are none."""
    if not 0.0 < float(level) < 1.0:
        raise SurroflowError(f"a conformal level must lie in (0, 1), got {level}")
    s = np.sort(np.asarray(scores, dtype=float).ravel())
    s = s[np.isfinite(s)]
    k = _rank(s.size, level)
    return float(s[k - 1]) if 1 <= k <= s.size else math.nan


#: the two constructions (the ``calibration`` attribute of a model file)
METHODS = ("split_conformal", "cross_conformal")


@dataclass
class Calibration:
    """Conformal calibration of one reduced model (module docstring).

    ``scale[var]``: ``s`` as ``(n_time, n_space)`` rows (``n_time`` 1 for steady problems);
    ``scores``: one per calibration sample (``samples``: their ids, in the calibration design for
    ``split_conformal``, in the training design for ``cross_conformal``); ``n_folds``: ``K`` (0
    for split-conformal); ``seconds``: the calibration's compute time; ``generation_seconds``: the
    high-fidelity seconds of the calibration design (split-conformal; NaN when not measured);
    ``reason``: why there is no usable calibration ('' when there is one)."""

    scale: dict[str, np.ndarray] = field(default_factory=dict)
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    samples: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    n_folds: int = 0
    seconds: float = math.nan
    reason: str = ""
    method: str = "cross_conformal"
    generation_seconds: float = math.nan

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise SurroflowError(f"calibration method {self.method!r} is not allowed; allowed: {list(METHODS)}")

    @property
    def n(self) -> int:
        return int(np.isfinite(self.scores).sum())

    def quantile(self, level: float = LEVEL) -> float:
        """``q`` at ``level`` (NaN without calibration or with too few samples)."""
        if self.reason or self.n == 0:
            return math.nan
        return conformal_quantile(self.scores, level)

    def why_not(self, level: float = LEVEL) -> str:
        """Why :meth:`quantile` is NaN at ``level`` ('' when it is not)."""
        if self.reason:
            return self.reason
        if self.n < min_samples(level):
            return (f"{self.n} calibration samples: a conformal quantile at level {level:g} needs at least "
                    f"{min_samples(level)}")
        return ""

    def halfwidth(self, level: float = LEVEL) -> dict[str, np.ndarray]:
        """Half-widths ``q s`` of the band at ``level``, per variable, rows ``(n_time, n_space)``."""
        q = self.quantile(level)
        return {v: q * s for v, s in self.scale.items()}

    # ------------------------------------------------------------------ storage
    def to_dataset(self, space: Mapping[str, Mapping[str, Any]], time_dim: str | None) -> xr.Dataset:
        """``calibration_scores(calibration_sample)`` and ``calibration_scale__<var>`` on the
        model's ``([time], space...)`` dimensions; settings in ``calibration_*`` attributes."""
        # without a calibration (0 folds, one sample, a failed refit) every sample's score is NaN
        scores = (np.asarray(self.scores, dtype=float) if np.size(self.scores) == np.size(self.samples)
                  else np.full(np.size(self.samples), np.nan))
        data: dict[str, Any] = {
            "calibration_scores": (("calibration_sample",), scores,
                                   {"long_name": f"{self.method.replace('_', '-')} score of each calibration "
                                                 "sample: max over the field of |held-out residual| / "
                                                 "leave-one-out scale", "units": "1"})}
        for v, s in self.scale.items():
            dims, shape = tuple(space[v]["dims"]), tuple(int(k) for k in space[v]["shape"])
            lead = (time_dim,) if time_dim else ()
            arr = np.asarray(s).reshape(*((s.shape[0],) if time_dim else ()), *shape)
            data[f"calibration_scale__{v}"] = (lead + dims, arr,
                                               {"long_name": f"conformal scale of {v}: RMS of the held-out "
                                                             "residuals, floored", "units": str(space[v].get(
                                                                 "attrs", {}).get("units", ""))})
        return xr.Dataset(data, coords={"calibration_sample": np.asarray(self.samples)}, attrs={
            "calibration": self.method, "calibration_folds": int(self.n_folds),
            "calibration_seconds": float(self.seconds), "calibration_reason": self.reason,
            "calibration_generation_seconds": float(self.generation_seconds),
            "calibration_level": LEVEL, "calibration_quantile": self.quantile(LEVEL),
            "calibration_scale_floor": SCALE_FLOOR})

    @classmethod
    def from_dataset(cls, ds: xr.Dataset, variables: Sequence[str]) -> "Calibration | None":
        """The calibration stored in a model file (None when it has none)."""
        method = ds.attrs.get("calibration")
        if method not in METHODS:
            return None
        scale = {}
        for v in variables:
            if f"calibration_scale__{v}" not in ds:     # no calibration was made (see the reason)
                continue
            s = ds[f"calibration_scale__{v}"].values
            time_dim = str(ds.attrs.get("time_dim", "")) or None
            nt = s.shape[0] if time_dim else 1
            scale[v] = np.asarray(s, dtype=float).reshape(nt, -1)
        return cls(scale, np.asarray(ds["calibration_scores"].values, dtype=float),
                   np.asarray(ds["calibration_sample"].values), int(ds.attrs["calibration_folds"]),
                   float(ds.attrs.get("calibration_seconds", math.nan)), str(ds.attrs.get("calibration_reason", "")),
                   str(method), float(ds.attrs.get("calibration_generation_seconds", math.nan)))


# ====================================================================== coverage helpers
def field_scores(residual: Mapping[str, np.ndarray], scale: Mapping[str, np.ndarray]) -> np.ndarray:
    """``max |r| / s`` per sample over all variables and points (``residual[var]``:
    ``(n, n_time, n_space)``, ``scale[var]``: ``(n_time, n_space)``)."""
    out = None
    for v, r in residual.items():
        m = np.max(np.abs(r) / scale[v], axis=(1, 2))
        out = m if out is None else np.maximum(out, m)
    return np.zeros(0) if out is None else out


def _floored(s2: np.ndarray, w: np.ndarray) -> np.ndarray:
    rms = math.sqrt(float(np.sum(s2 * w)) / max(float(np.sum(w)) * s2.shape[0], np.finfo(float).tiny))
    return np.maximum(np.sqrt(np.maximum(s2, 0.0)), SCALE_FLOOR * rms) if rms > 0 else np.ones_like(s2)


def scale_and_scores(residual: Mapping[str, np.ndarray], weights: Mapping[str, np.ndarray]
                     ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Steps 4-5 of the module docstring: the floored scale of all ``n`` residuals and each
    sample's score against the leave-one-out scale of the other ``n - 1``."""
    scale, loo = {}, {}
    for v, r in residual.items():
        n = r.shape[0]
        if n < 2:
            raise SurroflowError(f"a conformal scale needs at least 2 samples, got {n}")
        sq = r ** 2
        tot = sq.sum(axis=0)
        w = np.asarray(weights[v], dtype=float).reshape(1, -1)
        scale[v] = _floored(tot / n, w)
        loo[v] = np.stack([_floored((tot - sq[i]) / (n - 1), w) for i in range(n)])
    scores = None
    for v, r in residual.items():
        m = np.max(np.abs(r) / loo[v], axis=(1, 2))
        scores = m if scores is None else np.maximum(scores, m)
    return scale, np.asarray(scores)


# ====================================================================== folds
def _fold_pod(b: POD, S: np.ndarray) -> POD:
    """A POD of the rows ``S`` with the rank and weights of ``b`` (exact or TSQR backend; a
    full-field identity basis stays the identity, centred on the fold's rows)."""
    if b.method == "identity":
        return POD.identity(S, b.weights_)
    method = b.method if b.method in ("exact", "tsqr", "randomized") else "tsqr"
    rank = int(min(b.n_modes_, S.shape[0]))
    return POD(method=method, rank=rank, energy=None, random_state=b.random_state).fit(S, b.weights_)


def _fold_local(lp: LocalPOD, S: np.ndarray, keep: np.ndarray) -> LocalPOD:
    """``lp`` restricted to the rows ``keep``: same clustering and selector, each cluster's POD
    refitted on its members among them (same rank)."""
    out = copy.copy(lp)
    index = np.full(keep.size, -1)
    index[keep] = np.arange(int(keep.sum()))
    members = [index[m[keep[m]]] for m in lp.members_]
    empty = [c for c, m in enumerate(members) if m.size < 2]
    if empty:
        raise SurroflowError(f"local clusters {empty} keep fewer than 2 snapshots outside a fold")
    out.members_ = members
    out.labels_ = lp.labels_[keep]
    out.pods_ = [_fold_pod(p, S[idx]) for p, idx in zip(lp.pods_, (np.flatnonzero(keep)[m] for m in members))]
    out.n_modes_ = np.array([p.n_modes_ for p in out.pods_])
    return out


def fold_bases(model: Any, S: Mapping[str, np.ndarray], keep: np.ndarray) -> dict[str, Any]:
    """The model's bases refitted on the rows ``keep`` of the full training snapshots ``S``."""
    return {v: (_fold_local(b, S[v], keep) if isinstance(b, LocalPOD) else _fold_pod(b, S[v][keep]))
            for v, b in model.bases.items()}


def _sample_major(model: Any, X: Any, snapshots: Mapping[str, Any], groups: Any, what: str
                  ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, np.ndarray, int]:
    """``X``, the snapshots, the row groups, the samples in row order and the rows per sample,
    checked to be sample-major with the same number of rows (times) per sample."""
    X = np.atleast_2d(np.asarray(X, dtype=float))
    S = {v: np.asarray(snapshots[v], dtype=float) for v in model.variables}
    g = np.asarray(groups).ravel()
    uniq, first = np.unique(g, return_index=True)
    order = uniq[np.argsort(first)]
    nt = X.shape[0] // max(order.size, 1)
    if order.size * nt != X.shape[0] or not np.array_equal(g, np.repeat(order, nt)):
        raise SurroflowError(f"{what} calibration needs sample-major rows with the same number of times per sample")
    return X, S, g, order, nt


def split_conformal(model: Any, X: Any, snapshots: Mapping[str, Any], groups: Any,
                    samples: Any | None = None, generation_seconds: float = math.nan) -> Calibration:
    """Split-conformal calibration of the fitted ``model`` on a calibration design.

    ``X``, ``snapshots``, ``groups``: the calibration rows (sample-major, the training times),
    samples the model was *not* fitted on, drawn independently of the training design;
    ``samples``: their ids to store; ``generation_seconds``: what their high-fidelity runs cost.
    Steps 3-6 of the module docstring with the deployed model's residuals: no refit."""
    t0 = time.perf_counter()
    X, S, _, order, nt = _sample_major(model, X, snapshots, groups, "split-conformal")
    n = order.size
    ids = order if samples is None else np.asarray(samples)
    if n < 2:
        return Calibration(samples=ids, method="split_conformal", generation_seconds=generation_seconds,
                           reason=f"{n} calibration sample: a conformal scale needs at least 2")
    if model.times_ is not None and nt != len(model.times_):
        raise SurroflowError(f"the calibration samples have {nt} times each, the model was trained on "
                             f"{len(model.times_)}: they do not belong to the same study")
    pred = model.predict(X)
    residual = {v: (S[v] - pred[v]).reshape(n, nt, -1) for v in model.variables}
    weights = {v: np.asarray(b.weights_) for v, b in model.bases.items()}
    scale, scores = scale_and_scores(residual, weights)
    cal = Calibration(scale, scores, ids, 0, time.perf_counter() - t0, method="split_conformal",
                      generation_seconds=generation_seconds)
    logger.info("split-conformal calibration on %d samples in %.2f s; q(%.2f) = %.4g%s", n, cal.seconds, LEVEL,
                cal.quantile(LEVEL), f" ({cal.why_not()})" if cal.why_not() else "")
    return cal


def cross_conformal(model: Any, X: Any, snapshots: Mapping[str, Any], groups: Any,
                    n_folds: int, samples: Any | None = None, points: Any | None = None) -> Calibration:
    """Cross-conformal calibration of the fitted ``model`` on its own training rows.

    ``X``, ``snapshots``: the training rows the model was fitted on (sample-major, every sample
    with the same times); ``groups``: the sample of each row (:func:`surroflow.snapshots.snapshot_groups`);
    ``n_folds``: ``K`` (capped at the number of samples; 0 = no calibration, reason recorded);
    ``samples``: the sample ids to store (default: the distinct ``groups``); ``points``: per
    sample (in the order of the distinct ``groups``), the design point it realises
    (``design.members``): folds then hold out whole points, so no member of a held-out point is
    trained on (its forced response would leak into the fold).
    A failure to refit (a local cluster left empty by a fold) is recorded as the reason, not raised.
    """
    from sklearn.model_selection import GroupKFold, KFold
    t0 = time.perf_counter()
    X, S, g, order, nt = _sample_major(model, X, snapshots, groups, "cross-conformal")
    n = order.size
    ids = order if samples is None else np.asarray(samples)
    if n_folds < 1:
        return Calibration(samples=ids, reason="calibration_folds is 0 (no calibration)")
    pts = None if points is None else np.asarray(points)
    k = int(min(n_folds, n if pts is None else np.unique(pts).size))
    if n < 2:
        return Calibration(samples=ids, n_folds=k, reason=f"{n} training sample: nothing to calibrate on")
    if k < 2:
        return Calibration(samples=ids, n_folds=k, reason="the training samples are members of one design point: "
                                                          "no point to hold out")
    residual = {v: np.empty((n, nt, S[v].shape[1])) for v in model.variables}
    try:
        folds = (KFold(n_splits=k, shuffle=True, random_state=FOLD_SEED).split(np.arange(n)) if pts is None
                 else GroupKFold(n_splits=k).split(np.arange(n), groups=pts))
        for fit_s, held_s in folds:
            keep = np.isin(g, order[fit_s])
            fold = model.with_bases(fold_bases(model, S, keep)).fit(X[keep], {v: a[keep] for v, a in S.items()})
            held = ~keep
            pred = fold.predict(X[held])
            for v in model.variables:
                residual[v][held_s] = (S[v][held] - pred[v]).reshape(held_s.size, nt, -1)
    except SurroflowError as exc:
        return Calibration(samples=ids, n_folds=k, seconds=time.perf_counter() - t0,
                           reason=f"a fold could not be refitted: {exc}")
    weights = {v: np.asarray(b.weights_) for v, b in model.bases.items()}
    scale, scores = scale_and_scores(residual, weights)
    cal = Calibration(scale, scores, ids, k, time.perf_counter() - t0)
    logger.info("cross-conformal calibration: %d folds of %d samples in %.2f s; q(%.2f) = %.4g%s", k, n,
                cal.seconds, LEVEL, cal.quantile(LEVEL), f" ({cal.why_not()})" if cal.why_not() else "")
    return cal


__all__ = ["LEVEL", "SCALE_FLOOR", "FOLD_SEED", "METHODS", "Calibration", "conformal_quantile", "min_samples",
           "field_scores", "scale_and_scores", "fold_bases", "split_conformal", "cross_conformal"]
