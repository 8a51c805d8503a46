"""Forecast evaluation: roll every forecaster out from the test initial conditions and score it
in Lyapunov times against the truth (:mod:`.forecast_metrics`), with persistence and
climatology always beside it.

Flagged test samples are excluded and counted; a model whose rollouts blow up is reported as
diverged, with its VPT up to the blow-up, never dropped.  Outputs: ``metrics.nc`` (per model,
forecast and lead time), ``summary.csv`` / ``summary.html`` (one row per model, written by
:func:`.summary.write_summary`) and the figures (:mod:`.forecast_figures`).
"""
from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from .. import SurroflowError
from ..forecast import BASELINES, make_forecaster
from ..io import open_dataset, write_dataset
from ..snapshots import forecast_variable, lyapunov_time, sample_interval, trajectories
from . import forecast_metrics as M
from .data import SplitData, load_split
from .summary import write_summary

logger = logging.getLogger(__name__)

#: leading columns of the forecast summary (one row per model)
SUMMARY_COLUMNS = ["model", "kind", "state", "status", "vpt_median", "vpt_q25", "vpt_q75", "vpt_mean",
                   "vpt_min", "vpt_max", "vpt_smape_median", "contains_true_equations", "n_forecasts",
                   "n_censored", "n_diverged", "vpt_over_persistence",
                   "beats_persistence", "rmse_at_1_lyapunov_time", "spectrum_error_time", "wasserstein",
                   "hellinger", "stats_diverged_fraction", "collapsed_fraction", "fit_seconds",
                   "rollout_seconds", "vpt_threshold", "lyapunov_time", "n_test", "n_test_flagged"]


@dataclass
class ForecastModel:
    """A fitted forecaster as the evaluation sees it."""

    name: str
    model: Any
    kind: str
    state: str = "full"
    fit_seconds: float = math.nan
    dt_sample: float = math.nan
    note: str = ""


@dataclass
class ForecastResult:
    """What one forecast evaluation produced (the stage writes it)."""

    metrics: xr.Dataset
    rows: list[dict[str, Any]]
    truth_plot: np.ndarray
    preds_plot: dict[str, np.ndarray]
    truth_stats: np.ndarray
    stats_pred: dict[str, np.ndarray] = field(default_factory=dict)
    space: np.ndarray | None = None
    component_names: list[str] | None = None


# =============================================================================== models
def load_forecaster(path: str | os.PathLike[str]) -> ForecastModel:
    """A forecaster file written by ``train_forecaster`` (attributes ``model_name``, ``model_kind``,
    ``state``, ``dt_sample``, ``fit_seconds``)."""
    from ..surrogates.state import from_dataset
    ds = open_dataset(path, stage="train_forecaster")
    for key in ("model_name", "model_kind", "dt_sample"):
        if key not in ds.attrs:
            raise SurroflowError(f"{path}: forecaster file has no {key!r} attribute; rerun train_forecaster")
    return ForecastModel(str(ds.attrs["model_name"]), from_dataset(ds), str(ds.attrs["model_kind"]),
                         str(ds.attrs.get("state", "full")), float(ds.attrs.get("fit_seconds", math.nan)),
                         float(ds.attrs["dt_sample"]))


def check_forecaster(f: ForecastModel, path: str, n_state: int, dt: float) -> None:
    """The model steps states of the test data's size, sampled at the test data's interval."""
    if f.model.n_state_ != n_state:
        raise SurroflowError(f"{path}: model {f.name!r} was fitted on {f.model.n_state_} components, "
                             f"the test data have {n_state}")
    if not abs(f.dt_sample - dt) <= 1e-9 * dt:
        raise SurroflowError(f"{path}: model {f.name!r} was fitted at dt={f.dt_sample}, the test data have dt={dt}")


def load_forecasters(paths: Sequence[str], n_state: int, dt: float) -> dict[str, ForecastModel]:
    models: dict[str, ForecastModel] = {}
    for p in paths:
        f = load_forecaster(p)
        if f.name in models:
            raise SurroflowError(f"{p}: duplicate model name {f.name!r}")
        check_forecaster(f, str(p), n_state, dt)
        models[f.name] = f
    return models


def add_baselines(models: dict[str, ForecastModel], U: np.ndarray, warmup: int, dt: float) -> dict[str, ForecastModel]:
    """Persistence and climatology first, always: a missing one is fitted on the test warm-up
    states (and says so), then the other models in the order given."""
    out: dict[str, ForecastModel] = {}
    present = {f.kind: f for f in models.values() if f.kind in BASELINES}
    for b in BASELINES:
        if b in present:
            out[present[b].name] = present[b]
            continue
        logger.warning("no trained %r model given; fitting it on the test warm-up states", b)
        m = make_forecaster(b).fit(U[:, :max(3, int(warmup))], dt=dt)
        out[b] = ForecastModel(b, m, b, "full", math.nan, dt, "fitted on test warm-up states (fit not timed)")
    out.update({n: f for n, f in models.items() if n not in out})
    return out


# =============================================================================== scoring
def forecast_status(stats_diverged_fraction: float, n_div: int, n: int, collapsed_fraction: float) -> str:
    """The label of a model in the summary: ``ok``, ``diverged (k/n)``, ``diverged (long
    rollouts)`` or ``collapsed``."""
    if n_div:
        return f"diverged ({n_div}/{n})"
    if stats_diverged_fraction > 0:
        return "diverged (long rollouts)"
    if collapsed_fraction > 0.5:
        return "collapsed"
    return "ok"


@dataclass
class _Plan:
    warm: int
    horizon: int
    stats_steps: int
    starts: list[int]


def _plan(T: int, dt: float, lt: float, settings: Mapping[str, Any], warm: int, where: str) -> _Plan:
    H = int(math.ceil(settings["horizon_lyapunov"] * lt / dt))
    avail = T - warm
    if H > avail:
        logger.warning("horizon %.3g Lyapunov times needs %d steps; test trajectories have %d after the "
                       "warm-up: horizon cut to %.3g Lyapunov times (raise simulator n_steps)",
                       settings["horizon_lyapunov"], H, avail, avail * dt / lt)
        H = avail
    if H < 2:
        raise SurroflowError(f"{where}: test trajectories of {T} steps leave no forecast horizon after "
                             f"a warm-up of {warm} steps")
    spacing = max(1, int(round(settings["start_spacing_lyapunov"] * lt / dt)))
    starts = [warm - 1 + j * spacing for j in range(int(settings["starts_per_trajectory"]))
              if warm - 1 + j * spacing + H <= T - 1]
    L = min(T - warm, max(H, int(math.ceil(settings["stats_horizon_lyapunov"] * lt / dt))))
    return _Plan(warm, H, L, starts)


def polynomial_degree(equation_terms: Mapping[str, Mapping[str, float]] | None) -> int | None:
    """The degree of a right-hand side stated term by term (``{component: {"x z": c, ...}}``,
    ``ChaoticSystem.equation_terms``) when every term is a monomial of the state's components
    (Lorenz-63: 2), else ``None`` (no statement, or terms such as ``u_xx`` that are not)."""
    if not equation_terms:
        return None
    names = set(equation_terms)
    degree = 0
    for rhs in equation_terms.values():
        for term in rhs:
            factors = [f for f in str(term).replace("*", " ").split() if f != "1"]
            if any(f.split("^")[0] not in names for f in factors):
                return None
            degree = max(degree, sum(int(f.split("^")[1]) if "^" in f else 1 for f in factors))
    return degree


def contains_true_equations(model: ForecastModel, true_degree: int | None) -> bool:
    """Whether the model's class holds the simulator's exact vector field: a continuous-time
    polynomial model of at least the true degree on the full, exactly observed state (quadratic
    operator inference ``time: continuous``, SINDy with a polynomial library).  Its VPT then
    measures identification, not generic skill: the report says so."""
    if true_degree is None or model.state != "full":
        return False
    inner = model.model
    if model.kind == "opinf":
        return getattr(inner, "time", None) == "continuous" and true_degree <= 2
    if model.kind == "sindy":
        return getattr(inner, "library", None) == "polynomial" and int(getattr(inner, "degree", 0)) >= true_degree
    return False


def evaluate_forecasts(test: SplitData, models: Mapping[str, ForecastModel], settings: Mapping[str, Any],
                       attrs: Mapping[str, Any] | None = None, true_degree: int | None = None) -> ForecastResult:
    """Score every model of ``models`` (baselines included by :func:`add_baselines`) on the ok
    test trajectories of ``test``; ``settings`` is the validated ``forecast`` config section;
    ``true_degree``: :func:`polynomial_degree` of the simulator's equations when the data are its
    exact, whole state (``None``: unknown, or observed partially or with noise)."""
    ds = test.ok
    var = forecast_variable(ds, settings["variable"])
    U = trajectories(test.all, var, test.path)
    dt, lt = sample_interval(ds), lyapunov_time(ds, test.path)
    n_traj, T, d = U.shape
    plan = _plan(T, dt, lt, settings, max(int(settings["warmup"]), max(f.model.n_history_ for f in models.values())),
                 test.path)
    H, L, warm, starts = plan.horizon, plan.stats_steps, plan.warm, plan.starts
    ic_traj = np.repeat(np.arange(n_traj), len(starts))
    ic_start = np.tile(np.asarray(starts), n_traj)
    hist = np.stack([U[i, s - warm + 1:s + 1] for i, s in zip(ic_traj, ic_start)])
    truth = np.stack([U[i, s + 1:s + 1 + H] for i, s in zip(ic_traj, ic_start)])
    truth_stats = U[:, warm:warm + L]
    norm = M.error_normaliser(U, settings["vpt_normalisation"])
    limit = float(settings["divergence_factor"]) * float(np.max(np.abs(U)))
    spatial = "x" in ds[var].dims
    logger.info("%d test trajectories, %d forecasts of %d steps (%.3g Lyapunov times, dt=%g, LT=%.4g); "
                "long-horizon statistics over %d steps (%.3g LT); normaliser %s = %.4g; %d models",
                n_traj, ic_traj.size, H, H * dt / lt, dt, lt, L, L * dt / lt, settings["vpt_normalisation"],
                norm, len(models))
    names = list(models)
    first = ic_start == starts[0]
    n_plot = max(1, int(settings["n_plot"]))
    scores: dict[str, M.ForecastScores] = {}
    preds_plot: dict[str, np.ndarray] = {}
    stats_pred: dict[str, np.ndarray] = {}
    roll_s: dict[str, float] = {}
    for name in names:
        m = models[name].model
        t0 = time.perf_counter()
        long_first = m.rollout(hist[first], max(H, L))
        rest = m.rollout(hist[~first], H) if (~first).any() else np.empty((0, H, d))
        roll_s[name] = time.perf_counter() - t0
        pred = np.empty((ic_traj.size, H, d))
        pred[first], pred[~first] = long_first[:, :H], rest
        sc = M.score_forecasts(truth, pred, dt=dt, lyapunov_time=lt, normaliser=norm,
                               threshold=float(settings["vpt_threshold"]), limit=limit,
                               smape_threshold=float(settings["vpt_smape_threshold"]))
        sc.stats = M.long_horizon_statistics(truth_stats, long_first[:, :L], limit=limit, spatial=spatial)
        scores[name], stats_pred[name], preds_plot[name] = sc, long_first[:, :L], pred[:n_plot]
        s = sc.summary()
        logger.info("%-16s VPT median %.2f (IQR %.2f-%.2f) LT, %d/%d diverged, spectrum error %.3g, "
                    "W1 %.3g, rollout %.2f s", name, s["vpt_median"], s["vpt_q25"], s["vpt_q75"],
                    s["n_diverged"], s["n_forecasts"], s["spectrum_error_time"], s["wasserstein"], roll_s[name])
        if s["n_diverged"]:
            logger.warning("%s: %d of %d rollouts diverged (reported with their VPT up to the blow-up)",
                           name, s["n_diverged"], s["n_forecasts"])
    metrics = _metrics_dataset(ds, var, models, scores, roll_s, ic_traj, ic_start, plan, dt, lt, d, spatial)
    metrics["vpt"].attrs["long_name"] = f"valid prediction time (normalised error > {settings['vpt_threshold']})"
    metrics["normalised_error"].attrs["long_name"] = f"||u - u_pred|| / normaliser ({settings['vpt_normalisation']})"
    metrics.attrs.update({
        **dict(attrs or {}), "variable": var, "lyapunov_time": lt, "dt_sample": dt,
        "vpt_threshold": float(settings["vpt_threshold"]), "vpt_normalisation": settings["vpt_normalisation"],
        "vpt_smape_threshold": float(settings["vpt_smape_threshold"]),
        "normaliser": norm, "divergence_limit": limit, "horizon_steps": H, "warmup_steps": warm,
        "stats_steps": L, "n_test_trajectories": n_traj, "n_excluded_test_samples": test.n_flagged,
    })
    rows = _summary_rows(models, scores, roll_s, settings, lt, dt, H, spatial, test)
    for r in rows:
        r["contains_true_equations"] = contains_true_equations(models[r["model"]], true_degree)
    comps = None if spatial else [str(c) for c in ds[ds[var].dims[-1]].values]
    return ForecastResult(metrics, rows, truth[:n_plot], preds_plot, truth_stats, stats_pred,
                          ds["x"].values if spatial else None, comps)


def _metrics_dataset(ds: xr.Dataset, var: str, models: Mapping[str, ForecastModel],
                     scores: Mapping[str, M.ForecastScores], roll_s: Mapping[str, float], ic_traj: np.ndarray,
                     ic_start: np.ndarray, plan: _Plan, dt: float, lt: float, d: int, spatial: bool) -> xr.Dataset:
    names = list(models)
    lead = (np.arange(plan.horizon) + 1) * dt

    def obj(vals: Any) -> np.ndarray:
        return np.array(list(vals), dtype=object)

    coords: dict[str, Any] = {
        "model": ("model", obj(names)),
        "model_kind": ("model", obj(models[n].kind for n in names)),
        "model_state": ("model", obj(models[n].state for n in names)),
        "forecast": ("forecast", np.arange(ic_traj.size)),
        "forecast_sample": ("forecast", ds["sample"].values[ic_traj], {"long_name": "test sample of the forecast"}),
        "forecast_start_time": ("forecast", ds["time"].values[ic_start],
                                {"long_name": "time of the last history state", "units": "1"}),
        "lead_time": ("lead", lead, {"long_name": "lead time", "units": "1"}),
        "lead_lyapunov": ("lead", lead / lt, {"long_name": "lead time in Lyapunov times", "units": "1"}),
        "frequency": ("frequency", np.fft.rfftfreq(plan.stats_steps, d=dt),
                      {"long_name": "temporal frequency", "units": "1/time"}),
    }

    def stack(key: str) -> np.ndarray:
        return np.stack([getattr(scores[n], key) for n in names])

    dv: dict[str, Any] = {
        "vpt": (("model", "forecast"), stack("vpt"),
                {"long_name": "valid prediction time (normalised error above the threshold)",
                 "units": "Lyapunov times"}),
        "vpt_smape": (("model", "forecast"), stack("vpt_smape"),
                      {"long_name": "valid prediction time under the sMAPE definition (dysts)",
                       "units": "Lyapunov times"}),
        "vpt_censored": (("model", "forecast"), stack("vpt_censored").astype("i1"),
                         {"long_name": "error never exceeded the threshold within the horizon"}),
        "diverged": (("model", "forecast"), stack("diverged").astype("i1"),
                     {"long_name": "rollout became non-finite or exceeded the divergence limit"}),
        "divergence_step": (("model", "forecast"), stack("divergence_step"),
                            {"long_name": "first lead index of the blow-up (-1: none)"}),
        "normalised_error": (("model", "forecast", "lead"), stack("nerr").astype("f4"),
                             {"long_name": "||u - u_pred|| / normaliser"}),
        "rmse": (("model", "lead"), stack("rmse"), {"long_name": "RMSE over finite forecasts and components"}),
        "nonfinite_fraction": (("model", "lead"), stack("nonfinite_fraction"),
                               {"long_name": "fraction of forecasts not finite at this lead time"}),
        "psd_time": (("model", "frequency"), np.stack([scores[n].stats["psd_time_pred"] for n in names]),
                     {"long_name": "temporal power spectrum of long rollouts"}),
        "psd_time_true": (("frequency",), scores[names[0]].stats["psd_time_true"],
                          {"long_name": "temporal power spectrum of the truth"}),
        "rollout_seconds": (("model",), np.array([roll_s[n] for n in names]), {"units": "s"}),
        "fit_seconds": (("model",), np.array([models[n].fit_seconds for n in names]), {"units": "s"}),
    }
    for key in ("spectrum_error_time", "wasserstein", "hellinger", "stats_diverged_fraction",
                "collapsed_fraction", *(("spectrum_error_space",) if spatial else ())):
        dv[key] = (("model",), np.array([scores[n].stats[key] for n in names], dtype=float))
    if spatial:
        dx = float(np.diff(ds["x"].values[:2])[0])
        coords["wavenumber"] = ("wavenumber", 2 * np.pi / (d * dx) * np.arange(d // 2 + 1), {"units": "1/length"})
        dv["psd_space"] = (("model", "wavenumber"), np.stack([scores[n].stats["psd_space_pred"] for n in names]))
        dv["psd_space_true"] = (("wavenumber",), scores[names[0]].stats["psd_space_true"])
    return xr.Dataset(dv, coords=coords)


def _summary_rows(models: Mapping[str, ForecastModel], scores: Mapping[str, M.ForecastScores],
                  roll_s: Mapping[str, float], settings: Mapping[str, Any], lt: float, dt: float, H: int,
                  spatial: bool, test: SplitData) -> list[dict[str, Any]]:
    pers_name = next((n for n, f in models.items() if f.kind == "persistence"), None)
    pers = float(np.median(scores[pers_name].vpt)) if pers_name else math.nan
    i_1lt = min(H - 1, max(0, int(round(lt / dt)) - 1))
    rows = []
    for n, f in models.items():
        s = scores[n].summary()
        rows.append({
            "model": n, "kind": f.kind, "state": f.state,
            "status": forecast_status(s["stats_diverged_fraction"], s["n_diverged"], s["n_forecasts"],
                                      s["collapsed_fraction"]),
            **{k: s[k] for k in ("vpt_median", "vpt_q25", "vpt_q75", "vpt_mean", "vpt_min", "vpt_max",
                                 "vpt_smape_median", "n_forecasts", "n_censored", "n_diverged")},
            "vpt_over_persistence": s["vpt_median"] / pers if pers > 0 else math.nan,
            "beats_persistence": bool(s["vpt_median"] > pers),
            "rmse_at_1_lyapunov_time": float(scores[n].rmse[i_1lt]),
            "spectrum_error_time": s["spectrum_error_time"],
            **({"spectrum_error_space": s["spectrum_error_space"]} if spatial else {}),
            **{k: s[k] for k in ("wasserstein", "hellinger", "stats_diverged_fraction", "collapsed_fraction")},
            "fit_seconds": f.fit_seconds, "rollout_seconds": roll_s[n],
            "vpt_threshold": float(settings["vpt_threshold"]), "lyapunov_time": lt,
            "n_test": test.n_ok, "n_test_flagged": test.n_flagged,
            **({"note": f.note} if f.note else {}),
        })
    return rows


# =============================================================================== files
def evaluate_forecast_files(test_path: str, model_paths: Sequence[str], settings: Mapping[str, Any], *,
                            metrics_path: str, summary_path: str, figures_dir: str,
                            summary_html: str | None = None, attrs: Mapping[str, Any] | None = None,
                            simulator: Mapping[str, Any] | None = None) -> ForecastResult:
    """The stage's work: load, score, write ``metrics.nc``, the summary and the figures.

    With the study's ``simulator`` section, a chaotic simulator whose exponent validation could
    not know (no setting, no published value) has its reference trajectories checked here, with
    the Lyapunov time of the data (:func:`~.forecast_metrics.reference_problem`)."""
    test = load_split(test_path, required=("status",), what="trajectories")
    true_degree = None
    if simulator is not None:
        from ..simulators import get_simulator
        sim = get_simulator(simulator["name"], **simulator.get("settings", {}))
        check_reference(sim, lyapunov_time(test.ok, test_path), settings, test_path)
        if getattr(sim, "observes_everything", False) and callable(getattr(sim, "equation_terms", None)):
            true_degree = polynomial_degree(sim.equation_terms())
    var = forecast_variable(test.ok, settings["variable"])
    U = trajectories(test.all, var, test_path)
    dt = sample_interval(test.ok)
    models = add_baselines(load_forecasters(model_paths, U.shape[2], dt), U, int(settings["warmup"]), dt)
    res = evaluate_forecasts(test, models, settings, attrs, true_degree=true_degree)
    write_forecast_result(res, metrics_path=metrics_path, summary_path=summary_path, figures_dir=figures_dir,
                          summary_html=summary_html)
    return res


def check_reference(sim: Any, lyapunov_time_: float, settings: Mapping[str, Any], where: str) -> None:
    """Refuse a forecast evaluation whose reference trajectories are not accurate over its
    horizon, for a simulator that config validation could not check (its exponent unknown:
    ``lyapunov_time_`` is the data's)."""
    if M.known_lyapunov_time(sim) is not None or not hasattr(sim, "integrate"):
        return                                  # checked before any job, or not a chaotic system
    found = M.reference_problem(sim, lyapunov_time=lyapunov_time_, horizon_lyapunov=settings["horizon_lyapunov"],
                                vpt_threshold=settings["vpt_threshold"], tolerance=settings["reference_tolerance"],
                                where=where)
    if found:
        raise SurroflowError(found)


def write_forecast_result(res: ForecastResult, *, metrics_path: str, summary_path: str, figures_dir: str,
                          summary_html: str | None = None, columns: Sequence[str] = SUMMARY_COLUMNS,
                          title: str = "forecast summary") -> None:
    """Write what :func:`evaluate_forecasts` produced: ``metrics.nc``, the summary (CSV and
    HTML) and the figures (the one writer of forecast evaluations, model-error studies too)."""
    from .forecast_figures import make_all_figures
    write_dataset(res.metrics, metrics_path)
    write_summary(res.rows, summary_path, columns, summary_html,
                  title=f"{title} of study {res.metrics.attrs.get('study', '')}".strip())
    logger.info("summary written to %s", summary_path)
    Path(figures_dir).mkdir(parents=True, exist_ok=True)
    make_all_figures(res.metrics, res.truth_plot, res.preds_plot, figures_dir, space=res.space,
                     component_names=res.component_names, truth_stats=res.truth_stats, stats_pred=res.stats_pred)
    logger.info("figures written to %s", figures_dir)


__all__ = ["SUMMARY_COLUMNS", "ForecastModel", "ForecastResult", "load_forecaster", "load_forecasters",
           "add_baselines", "forecast_status", "evaluate_forecasts", "evaluate_forecast_files", "write_forecast_result"]
