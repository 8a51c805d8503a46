"""Error indicators: where in the parameter space a reduced model's error is largest, estimated
from the training samples only (the test design never reaches them).

Every indicator answers one question with one interface (:class:`Indicator`): given the round's
:class:`RoundFit` (its training samples, the fitted reduced model and a way to refit it on a
subset) and candidate points, a **score** per candidate that estimates the relative L2 error of
the model there (the same norm as :meth:`surroflow.surrogates.reduced.ReducedModel.error_split`,
all times of a sample, the worst variable).  A new indicator is one small registered class.

* ``gp_std`` -- the predictive standard deviation of a GP on the reduced coefficients,
  reconstructed to a field (:meth:`ReducedModel.predict_fields` with ``return_std``) and
  divided by the predicted field's norm;
* ``committee`` -- the disagreement of ``members`` models of the study's surrogate kind, each
  fitted (bases included) on a random ``subsample`` fraction of the training samples: the RMS
  spread of their fields about the committee mean, relative to its norm;
* ``cross_validation`` -- the K-fold cross-validation error of each training sample (model and
  bases refitted without its fold), interpolated to the candidates by inverse-distance weights
  and multiplied by an exploration factor ``min(1, d / h)`` (``d``: distance to the nearest
  training point, ``h``: the median nearest-neighbour spacing of the training points), so that
  a candidate on top of a sampled point scores 0 and one a spacing away its full error.
  EZyRB's leave-one-out ``optimal_mu`` picks the point farthest from the others in the
  worst-error simplex; this spreads the same information over the whole space;
* ``local_residual`` -- for local bases: the projection residual of a candidate's expected field
  (the regressor on global POD bases of the same runs) on the cluster basis the model selects
  for it, relative to that field's norm.

Distances are taken in the unit cube of the design (log-scaled parameters on their log axis),
so that parameters in different units weigh alike.

:func:`stopping_estimate` is the estimate the stopping rule compares with ``target_error``,
whatever the indicator, from estimates over the candidate pool (uniform, like the test design:
their mean, or the expected largest of ``n_test`` of them, :func:`pool_statistic`, estimates the
mean or the largest test error):

* ``cross_validation``: the cross-validation errors interpolated over the pool.  A held-out
  sample sits in a hole the round's model does not have, so the errors are those of a sparser
  design; leave-one-out (``folds: 0``) refits on all samples but one, K-fold on fewer and
  overestimates more.  The largest one belongs to a sample whose removal leaves a corner to
  extrapolate: measured on burgers_adaptive, 2.5-7x the largest test error once the corners are
  sampled, and 3x *below* it while a corner is not.
* ``gp_std``: the GP's relative predictive std over the pool, calibrated on the training
  samples by :func:`std_calibration`.  The std grows with the distance to the data, so it
  follows the hole of a held-out sample and the error ratio at the held-out samples transfers
  to the full design.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Mapping

import numpy as np

from .. import SurroflowError

if TYPE_CHECKING:   # the config check reads the registry: it imports no model code
    from ..surrogates.reduced import ReducedModel

logger = logging.getLogger(__name__)

_TINY = np.finfo(float).tiny


# ====================================================================== training set and refits
@dataclass
class TrainingSet:
    """The ok training samples of a round, as a reduced model fits them.

    ``X``, ``S``: the snapshot rows (sample-major: every sample's times in a block) and their
    inputs; ``groups``: the sample of each row; ``unit``: ``(n_samples, n_parameters)`` design
    points in the unit cube, one per sample in the order of their first row; ``weights``: the
    inner-product weights per variable (``reduction.weights``)."""

    X: np.ndarray
    S: dict[str, np.ndarray]
    groups: np.ndarray
    unit: np.ndarray
    weights: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        uniq, first = np.unique(self.groups, return_index=True)
        self.samples = uniq[np.argsort(first)]
        if self.samples.size != self.unit.shape[0]:
            raise SurroflowError(f"{self.samples.size} samples in the snapshot rows, {self.unit.shape[0]} design points")

    @property
    def n(self) -> int:
        return int(self.samples.size)

    def rows(self, keep: np.ndarray | None) -> np.ndarray:
        """Row mask of the samples at positions ``keep`` (all when None)."""
        if keep is None:
            return np.ones(self.groups.size, dtype=bool)
        return np.isin(self.groups, self.samples[np.asarray(keep)])


def sample_errors(model: ReducedModel, X: np.ndarray, S: Mapping[str, np.ndarray], groups: np.ndarray) -> np.ndarray:
    """Relative L2 error of each sample (its rows together, the worst variable), in the order of
    the distinct ``groups`` sorted (:meth:`ReducedModel.error_split`)."""
    split = model.error_split(X, S, groups)
    return np.max(np.stack([split[v]["per_group"]["total"] for v in model.variables]), axis=0)


@dataclass
class RoundFit:
    """One round's reduced model and what the indicators need to refit it.

    ``template``: an unfitted :class:`ReducedModel` described on the training data (its bases are
    replaced by fresh PODs of ``reduction`` on every fit); ``folds``: K of the cross-validation
    (capped at the number of samples; 0: leave one out); ``seed``: of the folds and the committee."""

    template: ReducedModel
    data: TrainingSet
    reduction: Mapping[str, Any]
    folds: int = 5
    seed: int = 0
    model: ReducedModel | None = None
    _cv: np.ndarray | None = field(default=None, repr=False)
    _cv_std: np.ndarray | None = field(default=None, repr=False)
    _global: ReducedModel | None = field(default=None, repr=False)

    def fit(self, keep: np.ndarray | None = None, basis: str | None = None) -> ReducedModel:
        """The template fitted (its bases refitted, then the regressor) on the samples at
        positions ``keep``: POD bases, or local ones (``reduction.clustering``) for a local
        template; ``basis="global"`` fits POD bases whatever the template's."""
        from ..reduction.files import make_local_pod, make_pod
        rows = self.data.rows(keep)
        S = {v: self.data.S[v][rows] for v in self.template.variables}
        X = self.data.X[rows]
        if self.template.local and basis != "global":
            red = self.reduction
            bases = {v: make_local_pod(S[v], self.data.weights[v], self.data.groups[rows], X, red["clustering"],
                                       method=red["method"], rank=red.get("rank"), energy=red.get("energy"),
                                       label=v)[0] for v in self.template.variables}
        else:
            bases = {v: make_pod(self.reduction).fit(S[v], self.data.weights[v]) for v in self.template.variables}
        return self.template.with_bases(bases).fit(X, S)

    def fitted(self) -> ReducedModel:
        """The model on all the round's samples (fitted once)."""
        if self.model is None:
            self.model = self.fit()
        return self.model

    def global_model(self) -> ReducedModel:
        """The same regressor on global POD bases of all the round's samples (the fitted model
        itself when its bases are global)."""
        if not self.template.local:
            return self.fitted()
        if self._global is None:
            self._global = self.fit(basis="global")
        return self._global

    def cv_errors(self) -> np.ndarray:
        """K-fold cross-validation error of each training sample (order of ``data.samples``):
        the model, bases included, refitted without the sample's fold."""
        if self._cv is None:
            self._cross_validate()
        return self._cv

    def cv_stds(self) -> np.ndarray:
        """The predictive std of each training sample's fold model at that sample (relative field
        norm, :func:`relative_std`, order of ``data.samples``): the std the cross-validation error
        :meth:`cv_errors` is measured against.  Needs a regressor with a std."""
        if not self.template.supports_std:
            raise SurroflowError(f"the stopping estimate gp_std needs a regressor with a predictive std (kind "
                                 f"gaussian_process); the adaptive surrogate is {self.template.regressor.kind!r}")
        if self._cv_std is None:
            self._cross_validate()
        return self._cv_std

    def _cross_validate(self) -> None:
        from sklearn.model_selection import KFold
        n = self.data.n
        k = n if self.folds == 0 else int(min(self.folds, n))
        if k < 2:
            raise SurroflowError(f"cross-validation needs at least 2 training samples, the round has {n}")
        err = np.empty(n)
        std = np.full(n, np.nan) if self.template.supports_std else None
        for fit_idx, held in KFold(n_splits=k, shuffle=True, random_state=self.seed).split(np.arange(n)):
            model = self.fit(fit_idx)
            rows = self.data.rows(held)
            e = sample_errors(model, self.data.X[rows], {v: a[rows] for v, a in self.data.S.items()},
                              self.data.groups[rows])
            err[held] = _held_order(self.data, held, e)
            if std is not None:
                # the rows mask keeps the data's sample order: the held positions sorted
                mean, sd = model.predict(self.data.X[rows], return_std=True)
                std[np.sort(held)] = relative_std(model, mean, sd, held.size)
        self._cv, self._cv_std = err, std


def _held_order(data: TrainingSet, held: np.ndarray, errors_sorted: np.ndarray) -> np.ndarray:
    """Errors of the held samples (given per sorted sample id) in the order of ``held``."""
    ids = data.samples[held]
    return errors_sorted[np.searchsorted(np.sort(ids), ids)]


# ====================================================================== geometry
def spacing(points: np.ndarray) -> float:
    """Median distance from each point to its nearest other point (unit cube)."""
    from scipy.spatial import cKDTree
    if points.shape[0] < 2:
        return 1.0
    d, _ = cKDTree(points).query(points, k=2)
    return float(np.median(d[:, 1])) or 1.0


def idw(points: np.ndarray, values: np.ndarray, queries: np.ndarray, power: float = 2.0,
        neighbours: int = 8) -> np.ndarray:
    """Inverse-distance-weighted interpolation of ``values`` at ``points`` to ``queries`` (the
    ``neighbours`` nearest; exact at a point)."""
    from scipy.spatial import cKDTree
    k = int(min(neighbours, points.shape[0]))
    d, i = cKDTree(points).query(queries, k=k)
    d, i = d.reshape(len(queries), k), i.reshape(len(queries), k)
    w = 1.0 / np.maximum(d, 1e-12) ** power
    return np.sum(w * values[i], axis=1) / np.sum(w, axis=1)


def nearest_distance(points: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Distance from each query to the nearest of ``points``."""
    from scipy.spatial import cKDTree
    return cKDTree(points).query(queries, k=1)[0]


# ====================================================================== indicators
INDICATORS: dict[str, type["Indicator"]] = {}


def register(cls: type["Indicator"]) -> type["Indicator"]:
    INDICATORS[cls.name] = cls
    return cls


class Indicator:
    """Scores candidate points by the error they are estimated to have (relative L2, worst
    variable).  ``candidates_x``: the points in parameter units, ``candidates_unit`` in the unit
    cube."""
    from scipy.spatial import cKDTree

    name: ClassVar[str] = ""
    #: settings of the indicator and their defaults (``design.adaptive.indicator_params``)
    defaults: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise SurroflowError(f"indicator {self.name}: unknown settings {unknown}; allowed: "
                                 f"{sorted(self.defaults) or 'none'}")
        self.params = {**self.defaults, **params}

    def scores(self, fit: RoundFit, candidates_x: np.ndarray, candidates_unit: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _field_norms(model: ReducedModel, fields: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """Weighted L2 norm of each of ``n`` samples' fields (all its times, sample-major), per variable."""
    out = {}
    for v in model.variables:
        a = fields[v].reshape(n, -1, model.bases[v].weights_.size)
        out[v] = np.sqrt(np.einsum("nts,nts,s->n", a, a, model.bases[v].weights_))
    return out


def relative_std(model: ReducedModel, mean: Mapping[str, np.ndarray], std: Mapping[str, np.ndarray],
                 n: int) -> np.ndarray:
    """Field norm of the predictive std over that of the predicted field, per sample (``n``
    samples, sample-major), the worst variable: the std as a relative L2 error."""
    m, s = _field_norms(model, mean, n), _field_norms(model, std, n)
    return np.max(np.stack([s[v] / np.maximum(m[v], _TINY) for v in model.variables]), axis=0)


@register
class GPStd(Indicator):
    """Predictive std of the GP regressor, as a field, relative to the predicted field."""

    name = "gp_std"

    def scores(self, fit: RoundFit, candidates_x: np.ndarray, candidates_unit: np.ndarray) -> np.ndarray:
        model = fit.fitted()
        if not model.supports_std:
            raise SurroflowError(f"indicator gp_std needs a regressor with a predictive std (kind gaussian_process); "
                                 f"the adaptive surrogate is {model.regressor.kind!r}")
        mean, std = model.predict_fields(candidates_x, return_std=True)
        return relative_std(model, mean, std, candidates_x.shape[0])


@register
class Committee(Indicator):
    """Spread of a committee of models, each fitted on a random subsample of the training samples."""

    name = "committee"
    defaults = {"members": 8, "subsample": 0.9}

    def scores(self, fit: RoundFit, candidates_x: np.ndarray, candidates_unit: np.ndarray) -> np.ndarray:
        members, frac = int(self.params["members"]), float(self.params["subsample"])
        if members < 2 or not 0 < frac < 1:
            raise SurroflowError(f"indicator committee: members must be >= 2 and subsample in (0, 1); got "
                                 f"{members}, {frac}")
        n = fit.data.n
        size = max(2, int(round(frac * n)))
        rng = np.random.default_rng(fit.seed)
        preds = [fit.fit(np.sort(rng.choice(n, size, replace=False))).predict_fields(candidates_x)
                 for _ in range(members)]
        model = fit.fitted()
        out = []
        for v in model.variables:
            stack = np.stack([p[v].reshape(candidates_x.shape[0], -1) for p in preds])
            mean = stack.mean(axis=0)
            w = np.tile(model.bases[v].weights_, stack.shape[2] // model.bases[v].weights_.size)
            spread = np.sqrt(np.mean(np.einsum("bns,s->bn", (stack - mean) ** 2, w), axis=0))
            out.append(spread / np.maximum(np.sqrt(np.einsum("ns,ns,s->n", mean, mean, w)), _TINY))
        return np.max(np.stack(out), axis=0)


@register
class CrossValidation(Indicator):
    """K-fold cross-validation errors interpolated to the candidates, times an exploration factor."""

    name = "cross_validation"
    defaults = {"power": 2.0}

    def scores(self, fit: RoundFit, candidates_x: np.ndarray, candidates_unit: np.ndarray) -> np.ndarray:
        pts = fit.data.unit
        e = idw(pts, fit.cv_errors(), candidates_unit, float(self.params["power"]))
        return e * np.minimum(1.0, nearest_distance(pts, candidates_unit) / spacing(pts))


@register
class LocalResidual(Indicator):
    """Local bases: how badly the cluster basis the model selects for a candidate represents the
    field expected there.  The expected field is the prediction of the same regressor on global
    POD bases of the same runs (it mixes the modes of every regime); each of its snapshots is
    projected on the local basis the model's selector picks (the nearest centroid of that
    predicted state, or the classifier on the inputs), and the score is the residual's field
    norm relative to the predicted field's (all times, the worst variable).  A candidate between
    regimes, whose field no cluster holds, scores high; one inside a well-sampled cluster ~0."""

    name = "local_residual"

    def scores(self, fit: RoundFit, candidates_x: np.ndarray, candidates_unit: np.ndarray) -> np.ndarray:
        from .. import snapshots as snap
        model = fit.fitted()
        if not model.local:
            raise SurroflowError("indicator local_residual needs a surrogate with basis local; the adaptive "
                                 f"surrogate has basis {model.basis!r}")
        expected = fit.global_model().predict_fields(candidates_x)
        n = candidates_x.shape[0]
        inputs = snap.surrogate_inputs(candidates_x, model.times_)
        out = []
        for v in model.variables:
            lp = model.bases[v]
            rows = expected[v].reshape(inputs.shape[0], -1)
            labels = model.select(inputs, states=rows)
            residual = lp.projection_errors(rows)[np.arange(rows.shape[0]), labels]
            norm = np.einsum("ij,ij,j->i", rows, rows, lp.weights_)
            out.append(np.sqrt(residual.reshape(n, -1).sum(axis=1) / np.maximum(norm.reshape(n, -1).sum(axis=1),
                                                                                 _TINY)))
        return np.max(np.stack(out), axis=0)


def make_indicator(name: str, params: Mapping[str, Any] | None = None) -> Indicator:
    if name not in INDICATORS:
        raise SurroflowError(f"design.adaptive.indicator: {name!r} is not an indicator; allowed: {sorted(INDICATORS)}")
    return INDICATORS[name](**dict(params or {}))


#: how the per-sample errors of a design are summarised (``design.adaptive.metric``)
METRICS = {"mean": np.mean, "max": np.max}


def pool_statistic(values: np.ndarray, metric: str, n_design: int | None = None) -> float:
    """The test metric from per-candidate error estimates over a uniform pool: their mean, or for
    ``max`` the expected largest of ``n_design`` of them drawn at random (the largest error of a
    test design of that size; ``None``: the largest of the pool).  The largest of a bigger pool
    is larger: 1024 candidates against 64 test runs put the gp_std estimate at 1.8-4.1x the
    largest test error over the rounds of burgers_adaptive, the expected largest of 64 at
    1.0-2.3x.  ``E[max] = sum_j v_(j) ((j/N)^m - ((j-1)/N)^m)`` over the sorted values."""
    v = np.asarray(values, dtype=float).ravel()
    if metric not in METRICS:
        raise SurroflowError(f"design.adaptive.metric: {metric!r} is not allowed; allowed: {sorted(METRICS)}")
    if metric == "mean" or n_design is None:
        return float(METRICS[metric](v))
    v = np.sort(v)
    j = np.arange(1, v.size + 1) / v.size
    return float(np.sum(v * (j ** int(n_design) - (j - 1.0 / v.size) ** int(n_design))))


#: how the stopping rule estimates the test error (``design.adaptive.estimate``)
ESTIMATES = ("cross_validation", "gp_std")


def std_calibration(fit: RoundFit) -> float:
    """The factor that turns the GP's predictive std into an error estimate: the median over the
    training samples of the cross-validation error over the fold model's std at the held-out
    sample (:meth:`RoundFit.cv_stds`).  Both are taken in the same hole of the design, so the
    ratio does not carry the hole's bias that the raw cross-validation error does."""
    ratio = fit.cv_errors() / np.maximum(fit.cv_stds(), _TINY)
    return float(np.median(ratio))


def stopping_estimate(fit: RoundFit, candidates_x: np.ndarray, candidates_unit: np.ndarray, metric: str = "mean",
                      method: str = "cross_validation", n_design: int | None = None) -> tuple[float, float]:
    """``(estimate, calibration)``: the test error (``metric``: mean or largest relative L2 error
    over a uniform design of ``n_design`` points, :func:`pool_statistic`) the round's model is
    estimated to have from its estimates over the (uniform) candidate pool, and the std
    calibration factor (NaN for ``cross_validation``).

    ``method`` ``cross_validation``: the cross-validation errors interpolated to the pool;
    ``gp_std``: the fitted model's relative predictive std at the pool times :func:`std_calibration`."""
    if method == "cross_validation":
        return pool_statistic(idw(fit.data.unit, fit.cv_errors(), candidates_unit), metric, n_design), math.nan
    if method == "gp_std":
        c = std_calibration(fit)
        return pool_statistic(c * GPStd().scores(fit, candidates_x, candidates_unit), metric, n_design), c
    raise SurroflowError(f"design.adaptive.estimate: {method!r} is not allowed; allowed: {list(ESTIMATES)}")


# ====================================================================== batch selection
def select_batch(scores: np.ndarray, candidates_unit: np.ndarray, train_unit: np.ndarray, k: int,
                 length: float | None = None) -> np.ndarray:
    """Indices of ``k`` candidates: greedily the highest score, each pick damping the scores of
    its neighbours by ``1 - exp(-(d / length)^2)`` (``length``: the training points' median
    spacing), so that a batch does not pile up on one peak of the indicator."""
    s = np.asarray(scores, dtype=float).copy()
    if k > s.size:
        raise SurroflowError(f"{k} points asked of {s.size} candidates; raise design.adaptive.candidates")
    ell = spacing(train_unit) if length is None else float(length)
    chosen: list[int] = []
    for _ in range(k):
        i = int(np.argmax(s))
        chosen.append(i)
        d = np.linalg.norm(candidates_unit - candidates_unit[i], axis=1)
        s *= 1.0 - np.exp(-(d / ell) ** 2)
        s[chosen] = -np.inf
    return np.asarray(chosen, dtype=int)


__all__ = ["METRICS", "ESTIMATES", "INDICATORS", "Indicator", "GPStd", "Committee", "CrossValidation", "LocalResidual", "RoundFit", "TrainingSet",
           "make_indicator", "stopping_estimate", "pool_statistic", "std_calibration", "relative_std", "select_batch", "sample_errors", "idw", "spacing",
           "nearest_distance", "register"]
