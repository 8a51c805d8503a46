"""Online learning against a drifting system: a random-feature world model that keeps learning
(``RandomFeatures.partial_fit``, exponentially weighted normal equations) against the same model
fitted once, judged by their valid prediction time along each test trajectory.

Both models are fitted on the training trajectories up to ``train_until`` (before the drift:
what a batch user has when the model is deployed).  The batch model stays as it is.  The online
model is copied once per test trajectory and reads that trajectory as it unfolds, with
forgetting ``forgetting``: at every forecast start ``s`` (every ``start_every_lyapunov``
Lyapunov times) it learns the states since the previous start, then both models forecast from
the states up to ``s``; the online model has seen exactly those, never a state after ``s``.  The
update weighs each row by its own age, so learning the states since the last start in one call
gives the coefficients of learning them one step at a time (only fewer solves).  The VPT of each forecast is scored
against the test trajectory itself, with the normalised error of :mod:`.forecast_metrics`.

Outputs: ``vpt_over_time.csv`` (``model, start_time, start_lyapunov, parameter, vpt_median,
vpt_q25, vpt_q75, n_forecasts``), ``summary.csv`` (VPT per model and phase: before, during and
after the drift, and all) and the figure ``vpt_over_time`` (PNG + PDF).
"""
from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .. import SurroflowError
from ..forecast import make_forecaster
from ..snapshots import forecast_variable, lyapunov_time, sample_interval, trajectories
from . import forecast_metrics as M
from .data import SplitData
from .summary import write_summary

logger = logging.getLogger(__name__)

CURVE_COLUMNS = ["model", "start_time", "start_lyapunov", "parameter", "vpt_median", "vpt_q25", "vpt_q75",
                 "n_forecasts"]
SUMMARY_COLUMNS = ["model", "phase", "from_time", "to_time", "n_forecasts", "vpt_median", "vpt_q25", "vpt_q75",
                   "vpt_mean", "update_seconds"]
MODELS = ("batch", "online")


@dataclass
class OnlineResult:
    curve: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    vpt: dict[str, np.ndarray]          # model -> (n_traj, n_starts)
    start_time: np.ndarray
    parameter: np.ndarray
    lyapunov_time: float
    phases: list[tuple[str, float, float]]


def drift_phases(attrs: Mapping[str, Any], t_end: float) -> list[tuple[str, float, float]]:
    """``(phase, from, to)`` in time after the first kept state: before, during and after the
    drift the data's attributes state (``drift_start``, ``drift_duration``), then ``all``."""
    phases = []
    if "drift_start" in attrs and "drift_duration" in attrs:
        t0, d = float(attrs["drift_start"]), float(attrs["drift_duration"])
        phases = [("before drift", 0.0, t0), ("during drift", t0, t0 + d), ("after drift", t0 + d, t_end)]
    return phases + [("all", 0.0, t_end)]


def evaluate_online(train: SplitData, test: SplitData, forecast: Mapping[str, Any], online: Mapping[str, Any],
                    model: Mapping[str, Any], parameter_at: Callable[[np.ndarray], np.ndarray] | None = None
                    ) -> OnlineResult:
    """Score the batch and the online model (``model``: ``{kind: rff, params}``) on the test
    trajectories; ``forecast`` is the study's validated forecast section, ``online`` its
    ``forecast.online``; ``parameter_at(t)`` the drifting parameter (for the table and figure)."""
    var = forecast_variable(test.ok, forecast["variable"])
    U_tr = trajectories(train.ok, var, train.path)
    U = trajectories(test.ok, var, test.path)
    dt, lt = sample_interval(test.ok), lyapunov_time(test.ok, test.path)
    n_traj, T, d = U.shape
    until = online.get("train_until")
    if until is None:
        until = float(test.ok.attrs["drift_start"]) if "drift_start" in test.ok.attrs else (U_tr.shape[1] - 1) * dt
    n_fit = min(U_tr.shape[1], int(round(float(until) / dt)) + 1)
    if n_fit < 3:
        raise SurroflowError(f"{train.path}: forecast.online.train_until={until} leaves {n_fit} training states; "
                             "the models need at least 3")
    params = dict(model.get("params") or {})
    t0 = time.perf_counter()
    batch = make_forecaster(str(model["kind"]), **params).fit(U_tr[:, :n_fit], dt=dt)
    fit_s = time.perf_counter() - t0
    if not hasattr(batch, "partial_fit"):
        raise SurroflowError(f"forecast.online.model: kind {model['kind']!r} cannot learn online (no partial_fit)")
    H = int(math.ceil(float(forecast["horizon_lyapunov"]) * lt / dt))
    h = batch.n_history_
    every = max(1, int(round(float(online["start_every_lyapunov"]) * lt / dt)))
    starts = np.arange(max(h, every), T - H - 1, every)
    if starts.size == 0:
        raise SurroflowError(f"{test.path}: test trajectories of {T} states hold no forecast of {H} steps "
                             f"({forecast['horizon_lyapunov']} Lyapunov times); raise simulator n_steps")
    norm = M.error_normaliser(U, forecast["vpt_normalisation"])
    threshold = float(forecast["vpt_threshold"])
    learners = []
    for _ in range(n_traj):
        m = copy.deepcopy(batch)
        m.forgetting = float(online["forgetting"])
        learners.append(m)
    vpt = {name: np.empty((n_traj, starts.size)) for name in MODELS}
    seen = 0                       # the transitions up to state `seen` of every test trajectory are learnt
    update_s = 0.0
    for j, s in enumerate(starts):
        t1 = time.perf_counter()
        if s - seen > h - 1:       # the steps since the last start (each needs h history states)
            lo = max(0, seen - h + 1)
            for i, m in enumerate(learners):
                m.partial_fit(U[i:i + 1, lo:s + 1], dt=dt)
            seen = s
        update_s += time.perf_counter() - t1
        hist = U[:, s - h + 1:s + 1]
        truth = U[:, s + 1:s + 1 + H]
        preds = {"batch": batch.rollout(hist, H),
                 "online": np.concatenate([m.rollout(hist[i:i + 1], H) for i, m in enumerate(learners)])}
        for name, pred in preds.items():
            vpt[name][:, j] = M.valid_prediction_time(M.normalised_error(truth, pred, norm), dt, lt, threshold)[0]
    start_time = starts * dt
    par = parameter_at(start_time) if parameter_at is not None else np.full(starts.size, np.nan)
    curve = [{"model": name, "start_time": float(start_time[j]), "start_lyapunov": float(start_time[j] / lt),
              "parameter": float(par[j]), "vpt_median": float(np.median(vpt[name][:, j])),
              "vpt_q25": float(np.quantile(vpt[name][:, j], 0.25)), "vpt_q75": float(np.quantile(vpt[name][:, j], 0.75)),
              "n_forecasts": n_traj} for name in MODELS for j in range(starts.size)]
    phases = drift_phases(test.ok.attrs, (T - 1) * dt)
    summary = []
    for name in MODELS:
        for phase, lo, hi in phases:
            sel = (start_time >= lo) & (start_time < hi) if phase != "all" else np.ones(starts.size, bool)
            v = vpt[name][:, sel].ravel()
            summary.append({"model": name, "phase": phase, "from_time": lo, "to_time": hi, "n_forecasts": int(v.size),
                            "vpt_median": float(np.median(v)) if v.size else math.nan,
                            "vpt_q25": float(np.quantile(v, 0.25)) if v.size else math.nan,
                            "vpt_q75": float(np.quantile(v, 0.75)) if v.size else math.nan,
                            "vpt_mean": float(np.mean(v)) if v.size else math.nan,
                            "update_seconds": update_s if name == "online" else fit_s})
            logger.info("%-6s %-13s VPT median %.2f LT over %d forecasts", name, phase,
                        summary[-1]["vpt_median"], v.size)
    logger.info("batch fit on %d x %d states in %.3g s; online updates of %d learners at %d starts %.3g s",
                U_tr.shape[0], n_fit, fit_s, n_traj, starts.size, update_s)
    return OnlineResult(curve, summary, vpt, start_time, par, lt, phases)


def online_figure(res: OnlineResult, path_stem: str | Path, parameter_name: str = "parameter") -> None:
    """VPT of both models against the forecast start time (median and IQR over the test
    trajectories), the drifting parameter on a second axis."""
    from .figures import pyplot, save
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    x = res.start_time / res.lyapunov_time
    for name, colour in zip(MODELS, ("tab:red", "tab:blue")):
        v = res.vpt[name]
        ax.plot(x, np.median(v, axis=0), color=colour, label=f"{name} model")
        ax.fill_between(x, np.quantile(v, 0.25, axis=0), np.quantile(v, 0.75, axis=0), color=colour, alpha=0.2)
    for phase, lo, hi in res.phases:
        if phase == "during drift":
            ax.axvspan(lo / res.lyapunov_time, hi / res.lyapunov_time, color="0.9", zorder=0, label="drift")
    ax.set_xlabel("forecast start [Lyapunov times]")
    ax.set_ylabel("VPT [Lyapunov times]")
    ax.legend(loc="upper left", fontsize=8)
    if np.all(np.isfinite(res.parameter)):
        ax2 = ax.twinx()
        ax2.plot(x, res.parameter, color="0.3", ls="--", lw=1)
        ax2.set_ylabel(f"{parameter_name} (dashed)")
    ax.set_title("online vs batch random-feature model on a drifting system")
    save(fig, Path(path_stem).with_suffix(".png"))


def write_online_result(res: OnlineResult, curve_path: str, summary_path: str, summary_html: str | None,
                        figures_dir: str, parameter_name: str = "parameter", study: str = "") -> None:
    write_summary(res.curve, curve_path, CURVE_COLUMNS, None, title=f"online VPT over time of study {study}")
    write_summary(res.summary, summary_path, SUMMARY_COLUMNS, summary_html,
                  title=f"online vs batch model of study {study}")
    Path(figures_dir).mkdir(parents=True, exist_ok=True)
    online_figure(res, Path(figures_dir) / "vpt_over_time", parameter_name)


__all__ = ["evaluate_online", "online_figure", "write_online_result", "drift_phases", "OnlineResult",
           "CURVE_COLUMNS", "SUMMARY_COLUMNS"]
