"""Stage ``train_forecaster``: fit one forecast model on the ok training trajectories.

Input ``train`` (the training generate dataset of a chaotic system), output ``model``: the
forecaster's state (:mod:`surroflow.surrogates.state`) with the attributes ``model_name``,
``model_kind`` (the configured kind), ``state`` (``full`` or ``pod``), ``rank``, ``variable``,
``dt_sample``, ``lyapunov_time``, ``fit_seconds`` (the fit alone), ``n_train_trajectories``,
``n_train_steps``, ``n_excluded_samples`` and ``one_step_train_error``.

``ctx.section`` holds ``forecast`` (without ``models``) and ``model: {name: {kind, params,
state}}``; ``state: inherit`` takes ``forecast.state``; baselines always step the full state.
A ``random_state`` the params leave unset gets ``forecast.seed``.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Mapping

import numpy as np
from threadpoolctl import threadpool_limits

from .. import SurroflowError
from .. import snapshots as snap
from ..forecast import BASELINES, Forecaster
from ..io import write_dataset
from ..surrogates.registry import estimator_class, make_estimator
from ..surrogates.state import to_dataset
from . import StageContext
from .train_surrogate import open_generate

logger = logging.getLogger(__name__)

STATES = ("full", "pod")


def build_forecaster(kind: str, params: Mapping[str, Any], state: str, rank: int, seed: int,
                     where: str = "forecaster") -> Forecaster:
    """The configured model; ``state = "pod"`` wraps it in a POD basis (baselines stay full)."""
    if state not in STATES:
        raise SurroflowError(f"{where}.state={state!r} is not allowed; allowed: {list(STATES)}")
    model = make_estimator(kind, params, "forecaster", seed=seed, where=f"{where}.params")
    if state == "pod" and kind not in BASELINES:
        return make_estimator("reduced", {"inner_kind": kind, "inner_params": model.get_params(deep=False),
                                          "rank": int(rank)}, "forecaster", seed=None)
    return model


def one_step_error(model: Forecaster, X: np.ndarray) -> float:
    """Relative RMS one-step error on up to 50 windows of every training trajectory."""
    h = model.n_history_
    ts = np.unique(np.linspace(h - 1, X.shape[1] - 2, min(50, X.shape[1] - h)).astype(int))
    hist = np.stack([X[:, t - h + 1:t + 1] for t in ts], axis=1).reshape(-1, h, X.shape[2])
    tgt = X[:, ts + 1].reshape(-1, X.shape[2])
    with np.errstate(all="ignore"):
        return float(np.sqrt(np.mean((model.predict_step(hist) - tgt) ** 2) / np.mean(X ** 2)))


def run(inputs: Mapping[str, Any], outputs: Mapping[str, str], ctx: StageContext) -> None:
    name = ctx.wildcards["model"]
    fc = ctx.section["forecast"]
    cfg = ctx.section["model"][name]
    kind = cfg["kind"]
    state = "full" if kind in BASELINES else (fc["state"] if cfg["state"] == "inherit" else cfg["state"])
    where = f"studies.{ctx.study}.forecast.models.{name}"
    ctx.check_inputs(inputs)
    with threadpool_limits(ctx.threads):
        model = build_forecaster(kind, cfg["params"], state, fc["rank"], fc["seed"], where)
        if getattr(estimator_class(kind, "forecaster"), "uses_torch", False):
            from ..surrogates.torch_utils import set_threads
            set_threads(ctx.threads)
        ds = open_generate(inputs["train"])
        var = snap.forecast_variable(ds, fc["variable"])
        n_excluded = snap.n_flagged(ds)
        if n_excluded:
            logger.warning("%s: %d of %d samples excluded (status not ok)", inputs["train"], n_excluded,
                           ds.sizes["sample"])
        X = snap.trajectories(ds, var, where=str(inputs["train"]))
        dt = snap.sample_interval(ds)
        lt = snap.lyapunov_time(ds, where=str(inputs["train"]))
        logger.info("%s (%s, %s state): %d trajectories x %d steps x %d components, dt=%g, Lyapunov time %.4g",
                    name, kind, state, X.shape[0], X.shape[1], X.shape[2], dt, lt)
        t0 = time.perf_counter()
        model.fit(X, dt=dt)
        fit_seconds = time.perf_counter() - t0
        err = one_step_error(model, X)
    logger.info("%s: fitted in %.2f s; one-step relative RMS training error %.3e", name, fit_seconds, err)
    attrs = ctx.provenance(inputs, outputs["model"], model_name=name, model_kind=kind, state=state, rank=int(fc["rank"]), variable=var,
                           dt_sample=dt, lyapunov_time=lt, fit_seconds=fit_seconds,
                           n_train_trajectories=int(X.shape[0]), n_train_steps=int(X.shape[1]),
                           n_excluded_samples=int(n_excluded), one_step_train_error=err)
    write_dataset(to_dataset(model, attrs), outputs["model"])


__all__ = ["run", "build_forecaster", "one_step_error"]
