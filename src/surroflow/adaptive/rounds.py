"""One round of adaptive sampling, independent of files: fit, estimate, decide, select.

Round 0 trains on the first ``initial`` points of the study's one-shot Sobol design (a scrambled
Sobol sequence is extensible: its first ``n`` points are a Sobol design of ``n`` points, so the
adaptive and the one-shot strategies share these runs).  Each round then

1. fits the reduced model (POD bases of ``reduction`` + the adaptive surrogate) on every ok
   training sample so far;
2. estimates its test error without the test set (:func:`~.indicators.stopping_estimate`, ``estimate``);
3. stops when the estimate is at most ``target_error`` (``target_error``), when no run is left in
   ``budget`` (``budget``), or after ``max_rounds`` rounds (``max_rounds``); and otherwise
4. scores the candidate pool (``candidates`` Sobol points of seed ``seed``, the sampled points
   left out) with the indicator and selects ``min(per_round, budget - n_hf)`` points
   (:func:`~.indicators.select_batch`): the next round's design.

``n_hf`` counts every high-fidelity run spent, flagged ones included (a failed run costs what a
good one does); flagged samples are left out of the fits like everywhere else.  So the runs
before round ``r`` and the points it may select follow from the settings alone
(:func:`~.schedule.round_view`): a round sees ``budget`` and ``max_rounds`` only through them, and raising
the budget or the number of rounds of a finished study reruns only the rounds they change (the
last one, which then selects, and those after it).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from .. import SurroflowError
from .. import snapshots as snap
from ..design import scale, unit_design, unscale
from ..simulators.base import Parameter
from ..surrogates.reduced import ReducedModel
from .indicators import RoundFit, TrainingSet, make_indicator, select_batch, stopping_estimate

logger = logging.getLogger(__name__)

#: why a round is the last one
STOP_REASONS = ("target_error", "budget", "max_rounds")
#: offset of the candidate pool's seed from design.adaptive.seed (never the train design's stream)
CANDIDATE_STREAM = 7919


def training_set(ds: xr.Dataset, variables: Sequence[str], weights: str, params: Sequence[Parameter]) -> TrainingSet:
    """The ok samples of the generate dataset ``ds`` as a :class:`TrainingSet`."""
    ok = snap.ok_samples(ds)
    v0 = variables[0]
    X = snap.snapshot_inputs(ok, v0)
    groups = snap.snapshot_groups(ok, v0)
    return TrainingSet(X=X, S={v: snap.snapshot_matrix(ok, v) for v in variables}, groups=groups,
                       unit=unscale(ok["design"].values, params),
                       weights={v: snap.space_weights(ok, v, weights) for v in variables})


def candidate_pool(params: Sequence[Parameter], n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` Sobol candidates ``(values, unit)`` of the parameter box (their own seed stream)."""
    unit = unit_design("sobol", n, len(params), seed + CANDIDATE_STREAM)
    return scale(unit, params), unit


@dataclass
class RoundResult:
    """What a round decided."""

    model: ReducedModel
    estimate: float
    stop: str                 # "" (go on) or one of STOP_REASONS
    scores: np.ndarray        # per candidate (NaN when the round stopped before scoring)
    selected: np.ndarray      # candidate indices chosen for the next round
    cv_errors: np.ndarray     # per training sample
    seconds: dict[str, float]
    calibration: float = float("nan")   # std calibration of the gp_std estimate (NaN otherwise)


def run_round(template: ReducedModel, data: TrainingSet, reduction: Mapping[str, Any], view: Mapping[str, Any],
              candidates_x: np.ndarray, candidates_unit: np.ndarray, spent: np.ndarray | None = None,
              n_test: int | None = None) -> RoundResult:
    """The round of ``view`` (:func:`~.schedule.round_view`) on ``data``, its ``n_hf`` runs (module docstring).
    ``spent``: every point run so far in the unit cube, flagged ones included (default: the ok
    ones of ``data``); none of them is selected again (a failed point would fail again).
    ``n_test``: the size of the test design whose largest error ``metric: max`` estimates
    (:func:`~.indicators.pool_statistic`; None: the largest over the pool)."""
    round_index, k = int(view["round"]), int(view["k"])
    t0 = time.perf_counter()
    fit = RoundFit(template, data, reduction, folds=int(view["folds"]), seed=int(view["seed"]))
    model = fit.fitted()
    t_fit = time.perf_counter()
    estimate, calibration = stopping_estimate(fit, candidates_x, candidates_unit, view["metric"], view["estimate"],
                                              n_test)
    t_est = time.perf_counter()
    stop = ("target_error" if estimate <= float(view["target_error"]) else
            "budget" if k <= 0 else "max_rounds" if view["last"] else "")
    scores = np.full(candidates_x.shape[0], np.nan)
    selected = np.zeros(0, dtype=int)
    if not stop:
        ran = data.unit if spent is None else np.asarray(spent, dtype=float)
        fresh = np.min(np.linalg.norm(candidates_unit[:, None, :] - ran[None, :, :], axis=2), axis=1) > 1e-9
        if int(fresh.sum()) < k:
            raise SurroflowError(f"design.adaptive.candidates: {int(fresh.sum())} candidates are left, the round "
                                 f"needs {k}; raise candidates")
        indicator = make_indicator(view["indicator"], view["indicator_params"])
        scores = indicator.scores(fit, candidates_x, candidates_unit)
        masked = np.where(fresh, scores, -np.inf)
        selected = select_batch(masked, candidates_unit, data.unit, k)
    t_sel = time.perf_counter()
    logger.info("round %d: %d ok samples of %d runs, estimated error %.4g (target %g)%s", round_index, data.n,
                int(view["n_hf"]), estimate, float(view["target_error"]), f"; stops: {stop}" if stop else f"; {k} points selected")
    return RoundResult(model, estimate, stop, scores, selected, fit.cv_errors(),
                       {"fit": t_fit - t0, "estimate": t_est - t_fit, "select": t_sel - t_est}, calibration)


__all__ = ["STOP_REASONS", "RoundResult", "run_round", "training_set", "candidate_pool"]
