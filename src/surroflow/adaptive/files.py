"""What the adaptive stages read and write.

Round ``r`` of a study lives in ``results/<study>/rounds/<r>/``:

``generate.nc`` (``generate_round``, rounds >= 1)
    the high-fidelity runs of the points round ``r - 1`` selected (a generate dataset);
``model.nc`` (``adapt_round``)
    the reduced model fitted on every ok run so far (:class:`~surroflow.surrogates.reduced.ReducedModel`);
``indicator.nc`` (``adapt_round``)
    the candidates and their scores, the training points (with their round and
    cross-validation error), the estimate and the decision (attributes ``stop``, ``estimate``,
    ``n_hf``);
``selected.nc`` (``adapt_round``)
    the design of round ``r + 1`` (empty when the round is the last).

:func:`evaluate` sets the rounds' models against one-shot models of the same surrogate fitted
on the first ``n`` points of the train design, for every ``n`` of the adaptive curve and on to
the whole train design (``n_train``, at least the budget), all scored on the test design (which nothing before this stage reads).
"""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import xarray as xr

from .. import SurroflowError
from .. import snapshots as snap
from ..design import design_dataset, resolve_parameters, unscale
from ..io import open_dataset, write_dataset
from ..reduction.local import LocalPOD
from ..reduction.pod import POD
from ..simulators import get_simulator
from ..surrogates.reduced import ReducedModel
from ..surrogates.registry import make_estimator
from .indicators import RoundFit, sample_errors
from .rounds import candidate_pool, run_round, training_set

logger = logging.getLogger(__name__)

GENERATE_STAGES = ("collect_batches",)
CURVE_COLUMNS = ["strategy", "round", "n_hf", "n_ok", "rel_l2_mean", "rel_l2_max", "indicator_estimate"]
SUMMARY_COLUMNS = ["metric", "target_error", "n_hf_adaptive", "n_hf_oneshot", "ratio", "budget", "stop_reason",
                   "stop_round", "n_hf_stop", "estimate_at_stop", "test_error_at_stop", "estimate_over_test"]


def parameters_of(section: Mapping[str, Any]) -> list[Any]:
    """The varied parameters of the study (as ``make_design`` resolves them)."""
    sim_cfg = section["simulator"]
    sim = get_simulator(sim_cfg["name"], **sim_cfg["settings"])
    return resolve_parameters(sim.parameters(), sim_cfg["parameters"])


def variables_of(section: Mapping[str, Any], ds: xr.Dataset) -> list[str]:
    return list(section["reduction"]["variables"]) or snap.output_variables(ds)


def template_model(section: Mapping[str, Any], ds: xr.Dataset) -> ReducedModel:
    """The adaptive surrogate, unfitted, described on ``ds`` (its bases are refitted each fit)."""
    name = section["adaptive"]["surrogate"]
    cfg = section["surrogates"][name]
    regressor = make_estimator(cfg["kind"], cfg["params"], "surrogate",
                               where=f"surrogates.{name}.params")
    ok = snap.ok_samples(ds)
    # placeholders: RoundFit.fit replaces them by bases of each round's runs
    basis = (lambda: LocalPOD(n_clusters=1)) if cfg["basis"] == "local" else POD
    return ReducedModel({v: basis() for v in variables_of(section, ds)}, regressor,
                        formulation=cfg["formulation"]).describe(ok)


def round_data(train: xr.Dataset, rounds: Sequence[xr.Dataset], initial: int, paths: Sequence[str]) -> xr.Dataset:
    """Every run of the adaptive design so far: the first ``initial`` samples of the one-shot
    train data and each round's runs (flagged runs kept: they count against the budget), with
    the coordinate ``round`` on ``sample``."""
    if train.sizes["sample"] < initial:
        raise SurroflowError(f"{paths[0]}: {train.sizes['sample']} train samples, design.adaptive.initial is {initial}")
    parts = [train.isel(sample=slice(0, initial))] + list(rounds)
    seen: dict[int, str] = {}
    for k, (ds, p) in enumerate(zip(parts, paths)):
        for s in ds["sample"].values.tolist():
            if s in seen:
                raise SurroflowError(f"{p}: sample {s} is also in {seen[s]}; delete the round files from this "
                                     "round on and rerun")
            seen[int(s)] = p
        for name, c in parts[0].coords.items():
            if "sample" in c.dims:
                continue
            if name not in ds.coords or not np.array_equal(ds[name].values, c.values):
                raise SurroflowError(f"{p}: coordinate {name!r} differs from {paths[0]} (computed with other "
                                     "settings); delete the round files from this round on and rerun")
    labelled = [ds.assign_coords(round=("sample", np.full(ds.sizes["sample"], k))) for k, ds in enumerate(parts)]
    out = xr.concat(labelled, dim="sample", data_vars="minimal", coords="minimal", compat="override",
                    join="override", combine_attrs="override")
    for v in list(out.data_vars):
        if "sample" not in out[v].dims:
            out[v] = parts[0][v]
    return out


def adapt(train_path: str, round_paths: Sequence[str], section: Mapping[str, Any], round_index: int
          ) -> tuple[xr.Dataset, xr.Dataset, xr.Dataset]:
    """Round ``round_index``: ``(model, indicator, selected)`` datasets (module docstring)."""
    ad = section["adaptive"]     # the round's view (surroflow.adaptive.schedule.round_view)
    if int(ad["round"]) != round_index:
        raise SurroflowError(f"round {round_index} was given the settings of round {ad['round']}")
    if len(round_paths) != round_index:
        raise SurroflowError(f"round {round_index} needs the runs of rounds 1..{round_index}, got {len(round_paths)} files")
    train = open_dataset(train_path, stage=GENERATE_STAGES, required=("design", "status"))
    rounds = [open_dataset(p, stage="generate_round", required=("design", "status")) for p in round_paths]
    data = round_data(train, rounds, int(ad["initial"]), [train_path, *round_paths])
    n_hf = int(data.sizes["sample"])
    if n_hf != int(ad["n_hf"]):
        raise SurroflowError(f"round {round_index}: {n_hf} runs (the first {ad['initial']} of {train_path} and "
                             f"those of rounds 1..{round_index}), the settings give {ad['n_hf']}: the round files "
                             "were made with other per_round or budget settings; delete them from the first "
                             "changed round on and rerun")
    ok = snap.require_ok_samples(data, f"round {round_index}", "training samples")
    limit = section["simulator"]["max_failure_fraction"]
    if 1.0 - ok.sizes["sample"] / n_hf > limit:
        raise SurroflowError(f"round {round_index}: {n_hf - ok.sizes['sample']} of {n_hf} runs failed, above "
                             f"simulator.max_failure_fraction={limit}; see the generate_round logs")
    params = parameters_of(section)
    variables = variables_of(section, ok)
    cx, cu = candidate_pool(params, int(ad["candidates"]), int(ad["seed"]))
    t0 = time.perf_counter()
    res = run_round(template_model(section, ok), training_set(ok, variables, section["reduction"]["weights"], params),
                    section["reduction"], ad, cx, cu, spent=unscale(data["design"].values, params),
                    n_test=int(section["design"]["n_test"]))
    seconds = time.perf_counter() - t0
    names = [p.name for p in params]
    attrs = {"round": round_index, "n_hf": n_hf, "n_ok": int(ok.sizes["sample"]), "estimate": res.estimate,
             "estimate_method": ad["estimate"], "std_calibration": res.calibration, "metric": ad["metric"],
             "target_error": float(ad["target_error"]), "stop": res.stop,
             "indicator": ad["indicator"], "round_seconds": seconds,
             **{f"{k}_seconds": v for k, v in res.seconds.items()}}
    chosen = np.zeros(cx.shape[0], dtype="i1")
    chosen[res.selected] = 1
    indicator = xr.Dataset(
        {"candidate_design": (("candidate", "parameter"), cx, {"long_name": "candidate points"}),
         "score": (("candidate",), res.scores, {"long_name": f"indicator {ad['indicator']} (estimated relative "
                                                              "L2 error)", "units": "1"}),
         "chosen": (("candidate",), chosen, {"long_name": "selected for the next round (1)"}),
         "train_design": (("sample", "parameter"), ok["design"].values, {"long_name": "ok training points"}),
         "train_round": (("sample",), ok["round"].values, {"long_name": "round that ran the point"}),
         "cv_error": (("sample",), res.cv_errors, {"long_name": "cross-validation relative L2 error", "units": "1"})},
        coords={"sample": ok["sample"].values, "parameter": names}, attrs=attrs)
    next_ids = int(data["sample"].values.max()) + 1 + np.arange(res.selected.size)
    selected = design_dataset(cx[res.selected], params, "train", "adaptive", int(ad["seed"]), sample_ids=next_ids)
    selected.attrs.update({"round": round_index + 1, "stop": res.stop})
    model = res.model.to_dataset({"model_name": ad["surrogate"], "model_kind": res.model.regressor.kind,
                                  "round": round_index, "n_hf": n_hf, "fit_seconds": res.seconds["fit"]})
    return model, indicator, selected


# ====================================================================== evaluation
def _test_errors(model: ReducedModel, test: xr.Dataset, variables: Sequence[str]) -> np.ndarray:
    X = snap.snapshot_inputs(test, variables[0])
    return sample_errors(model, X, {v: snap.snapshot_matrix(test, v) for v in variables},
                         snap.snapshot_groups(test, variables[0]))


def runs_to_reach(n_hf: Sequence[float], errors: Sequence[float], target: float) -> float:
    """High-fidelity runs at which the curve ``errors(n_hf)`` first reaches ``target``, linear
    between its points (in log error); NaN when it never does."""
    n, e = np.asarray(n_hf, dtype=float), np.asarray(errors, dtype=float)
    for i in range(n.size):
        if e[i] <= target:
            if i == 0:
                return float(n[0])
            f = (math.log(e[i - 1]) - math.log(target)) / (math.log(e[i - 1]) - math.log(e[i]))
            return float(n[i - 1] + f * (n[i] - n[i - 1]))
    return math.nan


def evaluate(train_path: str, test_path: str, indicator_paths: Sequence[str], model_paths: Sequence[str],
             section: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """``(curve rows, summary rows, what the figures need)``."""
    ad = section["adaptive"]
    test = snap.require_ok_samples(open_dataset(test_path, stage=GENERATE_STAGES, required=("design", "status")),
                                   test_path, "test samples")
    train = open_dataset(train_path, stage=GENERATE_STAGES, required=("design", "status"))
    variables = variables_of(section, test)
    rows: list[dict[str, Any]] = []
    indicators = [open_dataset(p, stage="adapt_round") for p in indicator_paths]
    for r, (ind, mp) in enumerate(zip(indicators, model_paths)):
        if int(ind.attrs["round"]) != r:
            raise SurroflowError(f"{indicator_paths[r]}: holds round {ind.attrs['round']}, expected {r}")
        e = _test_errors(ReducedModel.from_dataset(open_dataset(mp, stage="adapt_round")), test, variables)
        rows.append({"strategy": "adaptive", "round": r, "n_hf": int(ind.attrs["n_hf"]), "n_ok": int(ind.attrs["n_ok"]),
                     "rel_l2_mean": float(np.mean(e)), "rel_l2_max": float(np.max(e)),
                     "indicator_estimate": float(ind.attrs["estimate"])})
    budget, initial, k = int(ad["budget"]), int(ad["initial"]), int(ad["per_round"])
    # the one-shot curve runs on to the whole train design (n_train >= budget), so that it can
    # reach a target the budget's one-shot design misses
    n_train = int(train.sizes["sample"])
    sizes = sorted({*range(initial, n_train + 1, k), budget, n_train, *(r["n_hf"] for r in rows)})
    params = parameters_of(section)
    for j, n in enumerate(sizes):
        ds = snap.ok_samples(train.isel(sample=slice(0, n)))
        fit = RoundFit(template_model(section, ds), training_set(ds, variables, section["reduction"]["weights"], params),
                       section["reduction"])
        e = _test_errors(fit.fitted(), test, variables)
        rows.append({"strategy": "oneshot", "round": j, "n_hf": n, "n_ok": int(ds.sizes["sample"]),
                     "rel_l2_mean": float(np.mean(e)), "rel_l2_max": float(np.max(e)), "indicator_estimate": math.nan})
    adaptive = [r for r in rows if r["strategy"] == "adaptive"]
    oneshot = [r for r in rows if r["strategy"] == "oneshot"]
    key = f"rel_l2_{ad['metric']}"
    target = float(ad["target_error"])
    last, stop_ind = adaptive[-1], indicators[-1]
    n_a = runs_to_reach([r["n_hf"] for r in adaptive], [r[key] for r in adaptive], target)
    n_o = runs_to_reach([r["n_hf"] for r in oneshot], [r[key] for r in oneshot], target)
    summary = [{"metric": ad["metric"], "target_error": target, "n_hf_adaptive": n_a, "n_hf_oneshot": n_o,
                "ratio": n_o / n_a if n_a > 0 and math.isfinite(n_o) else math.nan, "budget": budget,
                "stop_reason": str(stop_ind.attrs["stop"]) or "none", "stop_round": last["round"],
                "n_hf_stop": last["n_hf"], "estimate_at_stop": last["indicator_estimate"],
                "test_error_at_stop": last[key],
                "estimate_over_test": last["indicator_estimate"] / last[key] if last[key] > 0 else math.nan}]
    logger.info("adaptive: %s error %.4g reached with %s runs (one-shot: %s); stopped at round %d (%s), estimate "
                "%.4g against a test error of %.4g", ad["metric"], target, f"{n_a:.1f}", f"{n_o:.1f}", last["round"],
                summary[0]["stop_reason"], last["indicator_estimate"], last[key])
    plot = {"params": params, "train_design": train["design"].values[:budget], "indicators": indicators,
            "key": key, "target": target}
    return rows, summary, plot


def plot_figures(rows: Sequence[Mapping[str, Any]], plot: Mapping[str, Any], folder: str | Path) -> list[Path]:
    """``error_vs_runs``, ``chosen_points`` and ``estimate_vs_test`` (PNG and PDF)."""
    from ..evaluation.figures import pyplot, save
    plt = pyplot()
    folder = Path(folder)
    out: list[Path] = []
    key, target = plot["key"], plot["target"]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for strategy, color in (("adaptive", "C3"), ("oneshot", "C0")):
        rs = [r for r in rows if r["strategy"] == strategy]
        n = [r["n_hf"] for r in rs]
        ax.plot(n, [r["rel_l2_mean"] for r in rs], "o-", color=color, label=f"{strategy}: mean")
        ax.plot(n, [r["rel_l2_max"] for r in rs], "s--", color=color, label=f"{strategy}: max", alpha=0.7)
    ax.axhline(target, color="k", lw=0.8, ls=":", label=f"target ({key.split('_')[-1]})")
    ax.set(xlabel="high-fidelity runs", ylabel="relative L2 test error", yscale="log",
           title="test error against high-fidelity runs")
    ax.legend(fontsize=7)
    out += save(fig, folder / "error_vs_runs.png")

    params = plot["params"]
    last = plot["indicators"][-1]
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    x, y = plot["train_design"][:, 0], plot["train_design"][:, 1] if len(params) > 1 else np.zeros(len(plot["train_design"]))
    ax.scatter(x, y, marker="x", color="0.5", label="one-shot (Sobol)")
    td, rd = last["train_design"].values, last["train_round"].values
    sc = ax.scatter(td[:, 0], td[:, 1] if len(params) > 1 else np.zeros(len(td)), c=rd, cmap="viridis",
                    edgecolors="k", s=36, label="adaptive (colour: round)")
    fig.colorbar(sc, ax=ax, label="round")
    for a, p, setter in ((ax.xaxis, params[0], ax.set_xscale), (ax.yaxis, params[min(1, len(params) - 1)], ax.set_yscale)):
        a.set_label_text(f"{p.name} [{p.units}]")
        if p.log_scale:
            setter("log")
    ax.set_title("points chosen" + (" (other parameters projected)" if len(params) > 2 else ""))
    ax.legend(fontsize=7, loc="best")
    out += save(fig, folder / "chosen_points.png")

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    rs = [r for r in rows if r["strategy"] == "adaptive"]
    e, est = np.array([r[key] for r in rs]), np.array([r["indicator_estimate"] for r in rs])
    ax.loglog(e, est, "o-", color="C3")
    for r, a, b in zip(rs, e, est):
        ax.annotate(str(r["round"]), (a, b), fontsize=7)
    lo, hi = min(e.min(), est.min()) / 2, max(e.max(), est.max()) * 2
    t = np.array([lo, hi])
    ax.plot(t, t, "k-", lw=0.8, label="estimate = test error")
    ax.fill_between(t, t / 2, t * 2, color="0.85", label="within a factor 2")
    ax.set(xlabel=f"test error ({key})", ylabel="stopping estimate (no test data)", title="is the stopping rule honest?")
    ax.legend(fontsize=7)
    out += save(fig, folder / "estimate_vs_test.png")
    return out


__all__ = ["CURVE_COLUMNS", "SUMMARY_COLUMNS", "adapt", "evaluate", "plot_figures", "round_data", "runs_to_reach",
           "template_model"]
