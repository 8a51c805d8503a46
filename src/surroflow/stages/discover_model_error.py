"""Stage ``discover_model_error``: an ensemble Kalman filter runs the imperfect model through
sparse, noisy observations of every training trajectory, the analysis increments are regressed
on the candidate terms, the model is corrected and the filter run again
(:func:`surroflow.dynamics.model_error.refine_model_error`, ``model_error.passes`` passes).

Input ``train`` (the truth of the twin experiment: exact, whole trajectories).  The truth enters
nothing but the observations (every ``observation.every``-th grid point every
``assimilation.cycle_steps`` samples, Gaussian errors of ``observation.noise`` times the truth's
standard deviation over the training data, seeded) and the initial ensemble, drawn from states
of the *other* training trajectories (climatology).  The analysis RMSE against the truth and the
true correction (truth minus imperfect model, as the simulator states both) are written beside
the results to judge them, never used to find them.

Outputs: ``analysis`` (``model_error/analysis.nc``: the last pass's forecast and analysis means
and spreads per trajectory and cycle, the observations, the RMSE per pass), ``correction``
(``model_error/correction.nc``: per term the coefficient, its bootstrap std, mean and inclusion
probability of the last pass, and the true value), ``csv`` / ``html`` (the same table) and
``figure`` (coefficients with their bootstrap spread beside the true ones).
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Mapping

import numpy as np
import xarray as xr

from .. import SurroflowError
from .. import snapshots as snap
from ..dynamics.assimilation import climatological_ensemble, observe, rmse
from ..dynamics.model_error import DEFAULT_TERMS, refine_model_error
from ..evaluation.model_error import coefficient_figure, sample_step
from ..evaluation.summary import write_summary
from ..io import write_dataset
from ..simulators import get_simulator
from . import StageContext
from .train_surrogate import open_generate

logger = logging.getLogger(__name__)

COLUMNS = ["term", "coefficient", "true", "abs_error", "rel_error", "std", "mean", "inclusion", "status"]


def imperfect_model(section: Mapping[str, Any]) -> Any:
    """The imperfect model of a model-error study: the simulator with ``model_error.model``'s
    settings changed (the one construction, used by every model-error stage)."""
    sim = section["simulator"]
    return get_simulator(sim["name"], **{**sim["settings"], **section["model_error"]["model"]})


def true_correction(section: Mapping[str, Any]) -> dict[str, float]:
    """Truth minus imperfect model, term by term (the terms the simulator states)."""
    sim = section["simulator"]
    ((_, t),) = get_simulator(sim["name"], **sim["settings"]).equation_terms().items()
    ((_, m),) = imperfect_model(section).equation_terms().items()
    return {k: t.get(k, 0.0) - m.get(k, 0.0) for k in dict.fromkeys([*t, *m]) if t.get(k, 0.0) != m.get(k, 0.0)}


def run(inputs: Mapping[str, Any], outputs: Mapping[str, str], ctx: StageContext) -> None:
    ctx.check_inputs(inputs)
    me = ctx.section["model_error"]
    obs_cfg, da, reg = me["observation"], me["assimilation"], me["regression"]
    names = tuple(reg["terms"]) if reg["terms"] else DEFAULT_TERMS
    true = true_correction(ctx.section)
    missing = sorted(set(true) - set(names))
    if missing:
        raise SurroflowError(f"model_error.regression.terms: the true correction has the terms {missing}, "
                             f"which the library {list(names)} lacks; add them (or set terms: null)")
    model = imperfect_model(ctx.section)
    ds = open_generate(inputs["train"])
    var = snap.forecast_variable(ds)
    X = snap.trajectories(ds, var, where=str(inputs["train"]))          # (n_traj, n_time, n_x)
    dt = snap.sample_interval(ds)
    n_traj = X.shape[0] if da["n_trajectories"] is None else min(int(da["n_trajectories"]), X.shape[0])
    k, spin = int(da["cycle_steps"]), int(da["spinup_cycles"])
    n_cycles = (X.shape[1] - 1) // k
    if n_cycles - spin < 2 * int(reg["block_cycles"]):
        raise SurroflowError(f"model_error: {X.shape[1]} stored times per trajectory make {n_cycles} analysis cycles "
                             f"of assimilation.cycle_steps={k}; after spinup_cycles={spin} fewer than two bootstrap "
                             f"blocks of regression.block_cycles={reg['block_cycles']} are left. Lengthen the "
                             "trajectories (simulator n_steps) or shorten the spin-up or the blocks")
    idx = np.arange(0, X.shape[2], int(obs_cfg["every"]))
    truth_std = float(X.std())
    obs_std = float(obs_cfg["noise"]) * truth_std
    truth = X[:n_traj, k::k][:, :n_cycles]                               # the states at the analysis times
    observations = observe(truth, idx, obs_std, np.random.default_rng([int(obs_cfg["seed"]), 1]))
    ens_rng = np.random.default_rng([int(da["seed"]), 2])
    ensemble0 = np.stack([climatological_ensemble(X[np.delete(np.arange(X.shape[0]), j)] if X.shape[0] > 1 else X[[j]],
                                                  int(da["members"]), ens_rng,
                                                  f"model_error.assimilation.members (trajectory {j})")
                          for j in range(n_traj)])
    step = sample_step(model)
    t0 = time.perf_counter()
    out = refine_model_error(step, ensemble0, observations, idx, obs_std, float(model.L), dt, steps_per_cycle=k,
                             n_passes=int(me["passes"]), skip=spin, names=names, threshold=float(reg["threshold"]),
                             alpha=float(reg["alpha"]), n_bootstrap=int(reg["n_bootstrap"]),
                             block_length=int(reg["block_cycles"]), rng=np.random.default_rng(int(reg["seed"])),
                             method=da["method"], inflation=float(da["inflation"]), localisation=da["localisation"])
    seconds = time.perf_counter() - t0
    pass_rmse = [float(np.mean([rmse(r.analysis_mean[spin:], t[spin:], axis=None) for r, t in zip(runs, truth)]))
                 for runs in out.results]
    logger.info("%d trajectories x %d cycles, %d passes in %.1f s; analysis RMSE against the truth per pass %s "
                "(observation error %.3g, truth std %.3g)", n_traj, n_cycles, len(out.results), seconds,
                [round(v, 4) for v in pass_rmse], obs_std, truth_std)
    _write_analysis(out.results[-1], observations, idx, pass_rmse, ds, var, k * dt, inputs, outputs, ctx,
                    seconds=seconds, obs_std=obs_std, truth_std=truth_std, spin=spin)

    rows = []
    for term in out.fits[0].names:
        c, tv = float(out.correction.get(term, 0.0)), true.get(term, 0.0)
        status = ("found" if tv != 0.0 else "spurious") if c != 0.0 else ("missed" if tv != 0.0 else "absent")
        rows.append({"term": term, "coefficient": c, "true": tv, "abs_error": abs(c - tv),
                     "rel_error": abs(c - tv) / abs(tv) if tv else float("nan"),
                     "std": out.coef_std[term], "mean": out.coef_mean[term], "inclusion": out.inclusion[term],
                     "status": status})
        if c != 0.0 or tv != 0.0:
            logger.info("%-10s %+.5f +- %.5f (true %+.4f) %s", term, c, rows[-1]["std"], tv, status)
    cds = xr.Dataset({key: (("term",), np.array([r[key] for r in rows], dtype=float))
                      for key in ("coefficient", "true", "std", "mean", "inclusion")},
                     coords={"term": np.array(list(out.fits[0].names))})
    cds["status"] = (("term",), np.array([r["status"] for r in rows]))
    cds["std"].attrs["long_name"] = "bootstrap std of the coefficient (last pass, blocks of cycles)"
    cds["mean"].attrs["long_name"] = "bootstrap mean of the coefficient (last pass)"
    cds["inclusion"].attrs["long_name"] = "fraction of the bootstrap replicates that keep the term"
    cds["true"].attrs["long_name"] = "truth minus imperfect model (judges the result; not used to find it)"
    cds.attrs.update(ctx.provenance(inputs, outputs["correction"], split="train", estimator="increment",
                                    passes=len(out.fits), n_cycles=int(n_traj * (n_cycles - spin)),
                                    obs_std=obs_std, truth_std=truth_std,
                                    regression=json.dumps(reg, sort_keys=True),
                                    true_correction=json.dumps(true, sort_keys=True),
                                    correction=json.dumps(out.correction, sort_keys=True)))
    write_dataset(cds, outputs["correction"])
    title = f"discovered model error of study {ctx.study}"
    write_summary(rows, outputs["csv"], COLUMNS, outputs["html"], title=title)
    coefficient_figure(rows, outputs["figure"], title)


def _write_analysis(runs: list, observations: np.ndarray, idx: np.ndarray, pass_rmse: list[float], ds: xr.Dataset,
                    var: str, cycle_interval: float, inputs: Mapping[str, Any], outputs: Mapping[str, str],
                    ctx: StageContext, **attrs: Any) -> None:
    """The last pass's filter runs as ``model_error/analysis.nc`` (diagnostics and figures)."""
    da = ctx.section["model_error"]["assimilation"]
    space = snap.space_dims_of(ds, var)[0]
    dims = ("trajectory", "cycle", space)
    n_cycles = observations.shape[1]
    out = xr.Dataset(
        {"forecast_mean": (dims, np.stack([r.forecast_mean for r in runs]), {"long_name": "prior ensemble mean"}),
         "analysis_mean": (dims, np.stack([r.analysis_mean for r in runs]), {"long_name": "analysis ensemble mean"}),
         "forecast_spread": (("trajectory", "cycle"), np.stack([r.forecast_spread for r in runs]),
                             {"long_name": "prior spread (after inflation)"}),
         "analysis_spread": (("trajectory", "cycle"), np.stack([r.analysis_spread for r in runs])),
         "observations": (("trajectory", "cycle", "observed"), observations),
         "observed_index": (("observed",), idx),
         "pass_rmse": (("pass",), np.array(pass_rmse),
                       {"long_name": "analysis RMSE against the truth after the spin-up (diagnostic only)"})},
        coords={"cycle_time": (("cycle",), (np.arange(n_cycles) + 1) * cycle_interval,
                               {"units": ds["time"].attrs.get("units", "1")}),
                space: ds[space].values, "trajectory": snap.ok_samples(ds)["sample"].values[:len(runs)],
                "pass": np.arange(1, len(pass_rmse) + 1)})
    out.attrs.update(ctx.provenance(inputs, outputs["analysis"], split="train", variable=var,
                                    cycle_interval=cycle_interval, method=da["method"], members=int(da["members"]),
                                    inflation=float(da["inflation"]),
                                    localisation=-1.0 if da["localisation"] is None else float(da["localisation"]),
                                    spinup_cycles=attrs["spin"], obs_std=attrs["obs_std"],
                                    truth_std=attrs["truth_std"], assimilation_seconds=attrs["seconds"],
                                    model_settings=json.dumps(ctx.section["model_error"]["model"], sort_keys=True)))
    write_dataset(out, outputs["analysis"])


__all__ = ["COLUMNS", "imperfect_model", "run", "true_correction"]
