"""File-level stage functions of the forecast task (called by the Snakemake scripts).

* :func:`train_forecaster_file`: ``results/{study}/generate/train.nc`` -> one model NetCDF;
* :func:`evaluate_forecast_file`: ``test.nc`` + all model files -> ``metrics.nc``, a summary CSV
  and figures.

Samples whose ``status`` is not ok are excluded (and counted in the log).  Every model is
compared with persistence and climatology, which the evaluation always reports; a model whose
rollouts blow up is reported as diverged with its VPT up to the blow-up, never dropped.
"""
from __future__ import annotations

import inspect
import logging
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from .. import SurroflowError, __version__
from ..io import STATUS_OK, open_dataset, provenance, write_dataset
from ..logging_utils import stage_logger
from . import metrics as M
from .models import (BASELINES, Forecaster, forecaster_class, forecaster_from_dataset,
                     forecaster_to_dataset, make_forecaster)

#: defaults of the ``forecast`` config section (the schema fills them in the workflow)
DEFAULTS: dict[str, Any] = {
    "variable": None, "state": "full", "rank": 20, "vpt_threshold": 0.4, "vpt_normalisation": "rms",
    "horizon_lyapunov": 10.0, "stats_horizon_lyapunov": 20.0, "warmup": 10,
    "starts_per_trajectory": 1, "start_spacing_lyapunov": 3.0, "divergence_factor": 10.0,
    "n_plot": 2, "seed": 0, "models": {},
}


def forecast_settings(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """The forecast section with defaults for missing keys (unknown keys are an error)."""
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(DEFAULTS))
    if unknown:
        raise SurroflowError(f"forecast: unknown key(s) {unknown}; allowed: {sorted(DEFAULTS)}")
    return {**DEFAULTS, **cfg}


# =============================================================================== data
def forecast_variable(ds: xr.Dataset, variable: str | None = None) -> str:
    """The state variable: the configured one, the simulator's ``forecast_variable`` attribute,
    or the only ``(sample, time, ...)`` variable."""
    if variable:
        if variable not in ds:
            raise SurroflowError(f"forecast.variable={variable!r} is not in the data; present: "
                                 f"{sorted(map(str, ds.data_vars))}")
        return variable
    attr = ds.attrs.get("forecast_variable")
    if attr and attr in ds:
        return str(attr)
    cands = [str(v) for v in ds.data_vars if ds[v].dims[:2] == ("sample", "time") and ds[v].ndim >= 3]
    if len(cands) != 1:
        raise SurroflowError(f"cannot tell which variable to forecast among {cands}; set forecast.variable")
    return cands[0]


def load_trajectories(path: str | os.PathLike[str], variable: str | None, logger: logging.Logger
                      ) -> tuple[np.ndarray, xr.Dataset, str, float]:
    """``(n_ok, n_time, n_state)`` trajectories of the ok samples, the dataset, the variable, dt."""
    ds = open_dataset(path, stage="generate", required=("status",))
    var = forecast_variable(ds, variable)
    status = ds["status"].values
    ok = np.flatnonzero(status == STATUS_OK)
    n_bad = int(status.size - ok.size)
    if n_bad:
        logger.warning("%s: %d of %d samples excluded (status not ok)", path, n_bad, status.size)
    if ok.size == 0:
        raise SurroflowError(f"{path}: no sample has status ok; nothing to forecast")
    da = ds[var].isel(sample=ok)
    space = [d for d in da.dims if d not in ("sample", "time")]
    arr = da.transpose("sample", "time", *space).values.reshape(ok.size, da.sizes["time"], -1)
    if not np.all(np.isfinite(arr)):
        raise SurroflowError(f"{path}: non-finite values in {var!r} of samples flagged ok")
    dt = float(ds.attrs["dt_sample"]) if "dt_sample" in ds.attrs else float(np.diff(ds["time"].values[:2])[0])
    sub = ds.isel(sample=ok)
    sub.attrs["n_excluded_samples"] = n_bad
    return arr, sub, var, dt


def lyapunov_time_of(ds: xr.Dataset) -> float:
    lt = ds.attrs.get("lyapunov_time")
    if lt is None or not float(lt) > 0:
        raise SurroflowError("the generated data carry no 'lyapunov_time' attribute; the forecast task "
                             "needs a chaotic simulator (lorenz63, lorenz96, kuramoto_sivashinsky)")
    return float(lt)


# =============================================================================== training
def build_forecaster(kind: str, params: Mapping[str, Any] | None, state: str, rank: int,
                     seed: int | None = None) -> Forecaster:
    """The configured model; ``state = "pod"`` wraps it in a POD basis (baselines stay full)."""
    params = dict(params or {})
    cls = forecaster_class(kind)
    if seed is not None and "random_state" in inspect.signature(cls.__init__).parameters:
        params.setdefault("random_state", int(seed))
    make_forecaster(kind, **params)   # validates the hyperparameters
    if state == "pod" and kind not in BASELINES:
        return make_forecaster("reduced", inner_kind=kind, inner_params=params, rank=int(rank))
    if state not in ("full", "pod"):
        raise SurroflowError(f"forecast.state={state!r} is not allowed; allowed: ['full', 'pod']")
    return make_forecaster(kind, **params)


def _set_threads(n: int) -> None:
    try:
        import torch
        torch.set_num_threads(max(1, int(n)))
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def train_forecaster_file(train_nc: str, out_nc: str, kind: str, params: Mapping[str, Any] | None,
                          forecast_cfg: Mapping[str, Any] | None, log: str | None = None, *,
                          name: str | None = None, state: str | None = None, study: str | None = None,
                          config_section: Mapping[str, Any] | None = None, threads: int | None = None) -> Path:
    """Fit one forecaster on the ok training trajectories and store it as NetCDF."""
    cfg = forecast_settings(forecast_cfg)
    name = name or Path(out_nc).stem
    with stage_logger("train_forecaster", log) as logger:
        X, ds, var, dt = load_trajectories(train_nc, cfg["variable"], logger)
        lt = lyapunov_time_of(ds)
        st = state or cfg["state"]
        model = build_forecaster(kind, params, st, cfg["rank"], cfg["seed"])
        if model.uses_torch:
            _set_threads(threads or 1)
        logger.info("%s (%s, %s state): %d trajectories x %d steps x %d components, dt=%g, "
                    "Lyapunov time %.4g", name, kind, st if kind not in BASELINES else "full",
                    X.shape[0], X.shape[1], X.shape[2], dt, lt)
        t0 = time.perf_counter()
        model.fit(X, dt=dt)
        fit_s = time.perf_counter() - t0
        h = model.n_history_
        ts = np.unique(np.linspace(h - 1, X.shape[1] - 2, min(50, X.shape[1] - h)).astype(int))
        hist = np.stack([X[:, t - h + 1:t + 1] for t in ts], axis=1).reshape(-1, h, X.shape[2])
        tgt = X[:, ts + 1].reshape(-1, X.shape[2])
        with np.errstate(all="ignore"):
            err = float(np.sqrt(np.mean((model.predict_step(hist) - tgt) ** 2) / np.mean(X ** 2)))
        logger.info("%s: fitted in %.2f s; one-step relative RMS training error %.3e", name, fit_s, err)
        attrs = {
            **provenance("train_forecaster", config_section if config_section is not None else cfg, study),
            "forecaster_name": name, "forecaster_config_kind": kind,
            "state": st if kind not in BASELINES else "full", "rank": int(cfg["rank"]),
            "variable": var, "dt_sample": dt, "lyapunov_time": lt, "fit_seconds": fit_s,
            "n_train_trajectories": int(X.shape[0]), "n_train_steps": int(X.shape[1]),
            "n_excluded_samples": int(ds.attrs["n_excluded_samples"]),
            "one_step_train_error": err, "surroflow_version": __version__,
        }
        write_dataset(forecaster_to_dataset(model, attrs), out_nc)
        return Path(out_nc)


def load_forecaster(path: str | os.PathLike[str]) -> tuple[str, Forecaster, dict[str, Any]]:
    ds = open_dataset(path, stage="train_forecaster")
    name = str(ds.attrs.get("forecaster_name", Path(path).stem))
    return name, forecaster_from_dataset(ds), dict(ds.attrs)


# =============================================================================== evaluation
def _write_csv(df: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        df.to_csv(tmp, index=False, float_format="%.6g")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _status(div_frac: float, n_div: int, n: int, collapsed_frac: float) -> str:
    if n_div:
        return f"diverged ({n_div}/{n})"
    if div_frac > 0:
        return "diverged (long rollouts)"
    if collapsed_frac > 0.5:
        return "collapsed"
    return "ok"


def evaluate_forecast_file(test_nc: str, model_ncs: Sequence[str], out_metrics_nc: str, out_summary_csv: str,
                           figure_dir: str | None, forecast_cfg: Mapping[str, Any] | None,
                           log: str | None = None, *, study: str | None = None,
                           config_section: Mapping[str, Any] | None = None) -> Path:
    """Roll out every model from the test initial conditions and score it against the truth."""
    cfg = forecast_settings(forecast_cfg)
    with stage_logger("evaluate_forecast", log) as logger:
        U, ds, var, dt = load_trajectories(test_nc, cfg["variable"], logger)
        lt = lyapunov_time_of(ds)
        n_traj, T, d = U.shape
        models: dict[str, Forecaster] = {}
        info: dict[str, dict[str, Any]] = {}
        for p in model_ncs:
            name, m, attrs = load_forecaster(p)
            if name in models:
                raise SurroflowError(f"{p}: duplicate model name {name!r}")
            if m.n_state_ != d:
                raise SurroflowError(f"{p}: model {name!r} was fitted on {m.n_state_} components, test data have {d}")
            if abs(float(attrs.get("dt_sample", dt)) - dt) > 1e-9 * dt:
                raise SurroflowError(f"{p}: model {name!r} was fitted at dt={attrs['dt_sample']}, test data have dt={dt}")
            models[name], info[name] = m, attrs
        kinds_present = {getattr(m, "kind", "") for m in models.values()}
        for b in BASELINES:
            if b not in kinds_present:
                # never silently without baselines: fit on the test warm-up states only
                logger.warning("no trained %r model given; fitting it on the test warm-up states", b)
                models[b] = make_forecaster(b).fit(U[:, :max(3, int(cfg["warmup"]))], dt=dt)
                info[b] = {"forecaster_config_kind": b, "state": "full", "fit_seconds": 0.0,
                           "note": "fitted on test warm-up states"}
        # -- forecast starts -------------------------------------------------------
        warm = max(int(cfg["warmup"]), max(m.n_history_ for m in models.values()))
        H = int(math.ceil(cfg["horizon_lyapunov"] * lt / dt))
        avail = T - warm
        if H > avail:
            logger.warning("horizon %.3g Lyapunov times needs %d steps; test trajectories have %d after the "
                           "warm-up: horizon cut to %.3g Lyapunov times (raise simulator n_steps)",
                           cfg["horizon_lyapunov"], H, avail, avail * dt / lt)
            H = avail
        if H < 2:
            raise SurroflowError(f"{test_nc}: test trajectories of {T} steps leave no forecast horizon after "
                                 f"a warm-up of {warm} steps")
        spacing = max(1, int(round(cfg["start_spacing_lyapunov"] * lt / dt)))
        starts = [warm - 1 + j * spacing for j in range(int(cfg["starts_per_trajectory"]))
                  if warm - 1 + j * spacing + H <= T - 1]
        L_stats = min(T - warm, max(H, int(math.ceil(cfg["stats_horizon_lyapunov"] * lt / dt))))
        ic_traj = np.repeat(np.arange(n_traj), len(starts))
        ic_start = np.tile(np.asarray(starts), n_traj)
        n_ic = ic_traj.size
        hist = np.stack([U[i, s - warm + 1:s + 1] for i, s in zip(ic_traj, ic_start)])
        truth = np.stack([U[i, s + 1:s + 1 + H] for i, s in zip(ic_traj, ic_start)])
        truth_stats = U[:, warm:warm + L_stats]
        norm = M.error_normaliser(U, cfg["vpt_normalisation"])
        limit = float(cfg["divergence_factor"]) * float(np.max(np.abs(U)))
        spatial = "x" in ds[var].dims
        logger.info("%d test trajectories, %d forecasts of %d steps (%.3g Lyapunov times, dt=%g, LT=%.4g); "
                    "long-horizon statistics over %d steps (%.3g LT); normaliser %s = %.4g; %d models",
                    n_traj, n_ic, H, H * dt / lt, dt, lt, L_stats, L_stats * dt / lt,
                    cfg["vpt_normalisation"], norm, len(models))
        scores: dict[str, M.ForecastScores] = {}
        preds_plot: dict[str, np.ndarray] = {}
        stats_pred: dict[str, np.ndarray] = {}
        roll_s: dict[str, float] = {}
        order = [*[b for b in BASELINES if b in models], *[n for n in models if n not in BASELINES]]
        first = ic_start == starts[0]
        for name in order:
            m = models[name]
            t0 = time.perf_counter()
            long_first = m.rollout(hist[first], max(H, L_stats))
            rest = m.rollout(hist[~first], H) if (~first).any() else np.empty((0, H, d))
            roll_s[name] = time.perf_counter() - t0
            pred = np.empty((n_ic, H, d))
            pred[first], pred[~first] = long_first[:, :H], rest
            sc = M.score_forecasts(truth, pred, dt=dt, lyapunov_time=lt, normaliser=norm,
                                   threshold=float(cfg["vpt_threshold"]), limit=limit)
            sc.stats = M.long_horizon_statistics(truth_stats, long_first[:, :L_stats], limit=limit, spatial=spatial)
            scores[name] = sc
            stats_pred[name] = long_first[:, :L_stats]
            preds_plot[name] = pred[: max(1, int(cfg["n_plot"]))]
            s = sc.summary()
            logger.info("%-16s VPT median %.2f (IQR %.2f-%.2f) LT, %d/%d diverged, spectrum error %.3g, "
                        "W1 %.3g, rollout %.2f s", name, s["vpt_median"], s["vpt_q25"], s["vpt_q75"],
                        s["n_diverged"], s["n_forecasts"], s["spectrum_error_time"], s["wasserstein"], roll_s[name])
            if s["n_diverged"]:
                logger.warning("%s: %d of %d rollouts diverged (reported with their VPT up to the blow-up)",
                               name, s["n_diverged"], s["n_forecasts"])
        # -- datasets --------------------------------------------------------------
        names = order
        lead = (np.arange(H) + 1) * dt
        freq = np.fft.rfftfreq(L_stats, d=dt)
        coords: dict[str, Any] = {
            "model": ("model", np.array(names, dtype=object)),
            "model_kind": ("model", np.array([str(getattr(models[n], "inner_kind", models[n].kind)) for n in names],
                                             dtype=object)),
            "model_state": ("model", np.array([str(info[n].get("state", "full")) for n in names], dtype=object)),
            "forecast": ("forecast", np.arange(n_ic)),
            "forecast_sample": ("forecast", ds["sample"].values[ic_traj], {"long_name": "test sample of the forecast"}),
            "forecast_start_time": ("forecast", ds["time"].values[ic_start],
                                    {"long_name": "time of the last history state", "units": "1"}),
            "lead_time": ("lead", lead, {"long_name": "lead time", "units": "1"}),
            "lead_lyapunov": ("lead", lead / lt, {"long_name": "lead time in Lyapunov times", "units": "1"}),
            "frequency": ("frequency", freq, {"long_name": "temporal frequency", "units": "1/time"}),
        }
        dv: dict[str, Any] = {
            "vpt": (("model", "forecast"), np.stack([scores[n].vpt for n in names]),
                    {"long_name": f"valid prediction time (normalised error > {cfg['vpt_threshold']})",
                     "units": "Lyapunov times"}),
            "vpt_censored": (("model", "forecast"), np.stack([scores[n].vpt_censored for n in names]).astype("i1"),
                             {"long_name": "error never exceeded the threshold within the horizon"}),
            "diverged": (("model", "forecast"), np.stack([scores[n].diverged for n in names]).astype("i1"),
                         {"long_name": "rollout became non-finite or exceeded the divergence limit"}),
            "divergence_step": (("model", "forecast"), np.stack([scores[n].divergence_step for n in names]),
                                {"long_name": "first lead index of the blow-up (-1: none)"}),
            "normalised_error": (("model", "forecast", "lead"),
                                 np.stack([scores[n].nerr for n in names]).astype("f4"),
                                 {"long_name": f"||u - u_pred|| / normaliser ({cfg['vpt_normalisation']})"}),
            "rmse": (("model", "lead"), np.stack([scores[n].rmse for n in names]),
                     {"long_name": "RMSE over finite forecasts and components"}),
            "nonfinite_fraction": (("model", "lead"), np.stack([scores[n].nonfinite_fraction for n in names]),
                                   {"long_name": "fraction of forecasts not finite at this lead time"}),
            "psd_time": (("model", "frequency"), np.stack([scores[n].stats["psd_time_pred"] for n in names]),
                         {"long_name": "temporal power spectrum of long rollouts"}),
            "psd_time_true": (("frequency",), scores[names[0]].stats["psd_time_true"],
                              {"long_name": "temporal power spectrum of the truth"}),
            "rollout_seconds": (("model",), np.array([roll_s[n] for n in names]), {"units": "s"}),
            "fit_seconds": (("model",), np.array([float(info[n].get("fit_seconds", np.nan)) for n in names]),
                            {"units": "s"}),
        }
        for key in ("spectrum_error_time", "wasserstein", "hellinger", "stats_diverged_fraction",
                    "collapsed_fraction", *(("spectrum_error_space",) if spatial else ())):
            dv[key] = (("model",), np.array([scores[n].stats[key] for n in names], dtype=float))
        if spatial:
            coords["wavenumber"] = ("wavenumber", 2 * np.pi / (d * float(np.diff(ds["x"].values[:2])[0]))
                                    * np.arange(d // 2 + 1), {"units": "1/length"})
            dv["psd_space"] = (("model", "wavenumber"), np.stack([scores[n].stats["psd_space_pred"] for n in names]))
            dv["psd_space_true"] = (("wavenumber",), scores[names[0]].stats["psd_space_true"])
        out = xr.Dataset(dv, coords=coords)
        out.attrs.update({
            **provenance("evaluate_forecast", config_section if config_section is not None else cfg, study),
            "variable": var, "lyapunov_time": lt, "dt_sample": dt,
            "vpt_threshold": float(cfg["vpt_threshold"]), "vpt_normalisation": cfg["vpt_normalisation"],
            "normaliser": norm, "divergence_limit": limit, "horizon_steps": H, "warmup_steps": warm,
            "stats_steps": L_stats, "n_test_trajectories": n_traj,
            "n_excluded_test_samples": int(ds.attrs["n_excluded_samples"]),
        })
        write_dataset(out, out_metrics_nc)
        # -- summary ---------------------------------------------------------------
        rows = []
        pers = float(np.median(scores["persistence"].vpt)) if "persistence" in scores else np.nan
        i_1lt = min(H - 1, max(0, int(round(lt / dt)) - 1))
        for n in names:
            s = scores[n].summary()
            rows.append({
                "model": n, "kind": coords["model_kind"][1][names.index(n)],
                "state": coords["model_state"][1][names.index(n)],
                "status": _status(s["stats_diverged_fraction"], s["n_diverged"], s["n_forecasts"],
                                  s["collapsed_fraction"]),
                "vpt_median": s["vpt_median"], "vpt_q25": s["vpt_q25"], "vpt_q75": s["vpt_q75"],
                "vpt_mean": s["vpt_mean"], "vpt_min": s["vpt_min"], "vpt_max": s["vpt_max"],
                "n_forecasts": s["n_forecasts"], "n_censored": s["n_censored"], "n_diverged": s["n_diverged"],
                "vpt_over_persistence": s["vpt_median"] / pers if pers > 0 else np.nan,
                "beats_persistence": bool(s["vpt_median"] > pers),
                "rmse_at_1_lyapunov_time": float(scores[n].rmse[i_1lt]),
                "spectrum_error_time": s["spectrum_error_time"],
                **({"spectrum_error_space": s["spectrum_error_space"]} if spatial else {}),
                "wasserstein": s["wasserstein"], "hellinger": s["hellinger"],
                "stats_diverged_fraction": s["stats_diverged_fraction"], "collapsed_fraction": s["collapsed_fraction"],
                "fit_seconds": float(info[n].get("fit_seconds", np.nan)),
                "rollout_seconds": roll_s[n],
                "vpt_threshold": float(cfg["vpt_threshold"]), "lyapunov_time": lt,
            })
        _write_csv(pd.DataFrame(rows), out_summary_csv)
        logger.info("summary written to %s", out_summary_csv)
        # -- figures ---------------------------------------------------------------
        if figure_dir:
            from . import figures as F
            F.make_all_figures(out, truth[: max(1, int(cfg["n_plot"]))], preds_plot, figure_dir,
                               space=(ds["x"].values if spatial else None),
                               component_names=[str(c) for c in ds[ds[var].dims[-1]].values] if not spatial else None,
                               truth_stats=truth_stats, stats_pred=stats_pred)
            logger.info("figures written to %s", figure_dir)
        return Path(out_metrics_nc)


__all__ = ["DEFAULTS", "forecast_settings", "forecast_variable", "load_trajectories", "build_forecaster",
           "train_forecaster_file", "load_forecaster", "evaluate_forecast_file"]
