"""Parametric evaluation: every reduced model on the held-out test design.

Per surrogate, variable and test sample the relative L2 error in the weighted norm of the
bases, split by :meth:`~surroflow.surrogates.reduced.ReducedModel.error_split` into projection,
selection (local bases) and regression parts; the measured one-sample query time against the
median high-fidelity wall time of a test sample (speed-up), the offline cost (generation +
reduction + training) and the break-even number of queries.  A cost that was not measured
(imported data have no solver timings) is NaN, and so is everything computed from it.

Flagged test samples are excluded and counted (``n_test_flagged``; flagged training samples in
``n_train_flagged``).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from .. import SurroflowError
from ..io import open_dataset, write_dataset
from ..snapshots import input_names, snapshot_matrix, snapshot_times, surrogate_inputs
from .data import SplitData, generation_seconds, load_split, median_sample_seconds
from .summary import write_summary
from .timing import break_even_queries, query_seconds, speedup

logger = logging.getLogger(__name__)

#: leading columns of the parametric summary (one row per surrogate); per-variable columns
#: ``rel_l2_mean_<var>`` ... follow for the model's further variables
SUMMARY_COLUMNS = ["surrogate", "kind", "basis", "online_modes", "rel_l2_mean", "rel_l2_max",
                   "projection_error_mean", "selection_error_mean", "regression_error_mean",
                   "prediction_seconds", "hf_seconds", "speedup", "offline_seconds", "generation_seconds",
                   "reduction_seconds", "fit_seconds", "break_even_queries", "n_test", "n_test_flagged",
                   "n_train_flagged"]
#: samples whose one-sample query is timed (the median is reported)
TIMED_SAMPLES = 4


@dataclass
class SurrogateModel:
    """A trained reduced model as the evaluation sees it (file of ``train_surrogate``)."""

    name: str
    kind: str
    model: Any                  # surroflow.surrogates.reduced.ReducedModel
    fit_seconds: float = math.nan
    path: str = ""

    @property
    def basis(self) -> str:
        return "local" if self.model.local else "global"


@dataclass
class ParametricResult:
    metrics: xr.Dataset
    rows: list[dict[str, Any]]
    #: per surrogate: predicted fields ``{variable: (n, [n_time], space...)}``
    predictions: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


# =============================================================================== loading
def load_model(path: str) -> SurrogateModel:
    from ..surrogates.reduced import ReducedModel
    ds = open_dataset(path, stage="train_surrogate")
    for key in ("model_name", "model_kind"):
        if key not in ds.attrs:
            raise SurroflowError(f"{path}: model file has no {key!r} attribute; rerun train_surrogate")
    return SurrogateModel(str(ds.attrs["model_name"]), str(ds.attrs["model_kind"]), ReducedModel.from_dataset(ds),
                          float(ds.attrs.get("fit_seconds", math.nan)), str(path))


def load_bases(paths: Sequence[str]) -> tuple[dict[str, Any], float]:
    """Global POD bases ``{variable: POD}`` and their summed fit seconds (NaN if one is unknown)."""
    from ..reduction import POD
    bases: dict[str, Any] = {}
    seconds = 0.0
    for p in paths:
        ds = open_dataset(p, required=("modes", "singular_values", "energy"))
        if "variable" not in ds.attrs:
            raise SurroflowError(f"{p}: basis file has no 'variable' attribute; rerun fit_pod")
        bases[str(ds.attrs["variable"])] = POD.from_dataset(ds)
        seconds += float(ds.attrs.get("fit_seconds", math.nan))
    return bases, seconds


# =============================================================================== evaluation
def _check_inputs(m: SurrogateModel, test: xr.Dataset) -> None:
    missing = [v for v in m.model.variables if v not in test.data_vars]
    if missing:
        raise SurroflowError(f"{m.path}: model {m.name!r} predicts {missing}, which the test data do not hold")
    expected = input_names(test, m.model.variables[0])
    if list(m.model.input_names) != expected:
        raise SurroflowError(f"{m.path}: model {m.name!r} takes inputs {list(m.model.input_names)}, the test "
                             f"data give {expected}: retrain it on this study")


def evaluate_surrogates(test: SplitData, train: SplitData, models: Sequence[SurrogateModel],
                        reduction_seconds: float, timing_repeats: int, error_bound: float | None = None,
                        variables: Sequence[str] = (), attrs: Mapping[str, Any] | None = None
                        ) -> ParametricResult:
    """Errors, timings and costs of every model on the ok test samples of ``test``."""
    ok = test.ok
    all_vars = list(dict.fromkeys([*variables, *(v for m in models for v in m.model.variables)]))
    n = test.n_ok
    design = np.asarray(ok["design"].values, dtype=float)
    gen_s, hf_s = generation_seconds(train), median_sample_seconds(test)
    if not math.isfinite(gen_s):
        logger.warning("%s: no solver timings (imported data?): generation seconds, offline cost, speed-up "
                       "and break-even queries are NaN", train.path)
    shape = (len(models), len(all_vars), n)
    parts = {k: np.full(shape, np.nan) for k in ("total", "projection", "selection", "regression")}
    pred_s = np.full(len(models), np.nan)
    sel_acc = np.full(len(models), np.nan)
    rows: list[dict[str, Any]] = []
    predictions: dict[str, dict[str, np.ndarray]] = {}
    truth: dict[str, np.ndarray] = {}
    for i, m in enumerate(models):
        _check_inputs(m, ok)
        v0 = m.model.variables[0]
        times = snapshot_times(ok, v0)
        nt = 1 if times is None else len(times)
        X = surrogate_inputs(design, times)
        for v in m.model.variables:
            truth.setdefault(v, snapshot_matrix(ok, v))
        split = m.model.error_split(X, {v: truth[v] for v in m.model.variables}, groups=np.repeat(np.arange(n), nt))
        for v, es in split.items():
            k = all_vars.index(v)
            for part, arr in parts.items():
                arr[i, k] = es["per_group"][part]
        sel_acc[i] = float(split[v0]["selection_accuracy"])
        predictions[m.name] = m.model.predict_fields(design, times)

        def query(s: int, m: SurrogateModel = m, times: Any = times) -> Any:
            # one query = one sample's full output (all times, all variables), reconstruction included
            return m.model.predict_fields(design[s:s + 1], times)
        pred_s[i] = query_seconds(query, range(min(n, TIMED_SAMPLES)), timing_repeats)
        offline = gen_s + reduction_seconds + m.fit_seconds
        k0 = all_vars.index(v0)
        row: dict[str, Any] = {
            "surrogate": m.name, "kind": m.kind, "basis": m.basis, "online_modes": int(m.model.n_modes[v0]),
            "rel_l2_mean": float(np.mean(parts["total"][i, k0])), "rel_l2_max": float(np.max(parts["total"][i, k0])),
            "projection_error_mean": float(np.mean(parts["projection"][i, k0])),
            "selection_error_mean": float(np.mean(parts["selection"][i, k0])),
            "regression_error_mean": float(np.mean(parts["regression"][i, k0])),
            "prediction_seconds": float(pred_s[i]), "hf_seconds": hf_s, "speedup": speedup(hf_s, float(pred_s[i])),
            "offline_seconds": offline, "generation_seconds": gen_s, "reduction_seconds": reduction_seconds,
            "fit_seconds": m.fit_seconds, "break_even_queries": break_even_queries(offline, hf_s, float(pred_s[i])),
            "n_test": n, "n_test_flagged": test.n_flagged, "n_train_flagged": train.n_flagged,
            "selection_accuracy": float(sel_acc[i]),
        }
        for v in m.model.variables[1:]:
            k = all_vars.index(v)
            row[f"rel_l2_mean_{v}"] = float(np.mean(parts["total"][i, k]))
            row[f"rel_l2_max_{v}"] = float(np.max(parts["total"][i, k]))
            row[f"projection_error_mean_{v}"] = float(np.mean(parts["projection"][i, k]))
        if error_bound is not None:
            row["meets_error_bound"] = bool(row["rel_l2_mean"] <= error_bound)
        rows.append(row)
        logger.info("%s: rel L2 mean %.3e max %.3e (projection %.3e, selection %.3e, regression %.3e); "
                    "%.2e s/query vs %.2e s high fidelity: speed-up %.3g; offline %.4g s", m.name,
                    row["rel_l2_mean"], row["rel_l2_max"], row["projection_error_mean"], row["selection_error_mean"],
                    row["regression_error_mean"], pred_s[i], hf_s, row["speedup"], offline)
    metrics = _metrics_dataset(ok, models, all_vars, parts, pred_s, sel_acc, rows, hf_s, attrs)
    metrics.attrs.update({"n_test_flagged": test.n_flagged, "n_train_flagged": train.n_flagged,
                          "generation_seconds": gen_s, "reduction_seconds": reduction_seconds})
    return ParametricResult(metrics, rows, predictions)


def _metrics_dataset(ok: xr.Dataset, models: Sequence[SurrogateModel], variables: Sequence[str],
                     parts: Mapping[str, np.ndarray], pred_s: np.ndarray, sel_acc: np.ndarray,
                     rows: Sequence[Mapping[str, Any]], hf_s: float, attrs: Mapping[str, Any] | None) -> xr.Dataset:
    dims = ("surrogate", "variable", "sample")
    return xr.Dataset(
        {
            "rel_l2": (dims, parts["total"], {"long_name": "relative L2 error of the surrogate", "units": "1"}),
            "projection_error": (dims, parts["projection"],
                                 {"long_name": "relative error of the projection onto the model's basis "
                                               "(the best local basis for local models)", "units": "1"}),
            "selection_error": (dims, parts["selection"],
                                {"long_name": "extra projection error of the local basis the selector picked "
                                              "(0 for a global basis)", "units": "1"}),
            "regression_error": (dims, parts["regression"],
                                 {"long_name": "relative error between the projection onto the selected basis "
                                               "and the prediction", "units": "1"}),
            "selection_accuracy": (("surrogate",), sel_acc, {"long_name": "fraction of rows whose selected basis "
                                                                          "is the nearest-centroid one", "units": "1"}),
            "prediction_seconds": (("surrogate",), pred_s,
                                   {"long_name": "surrogate time per query (one sample, all outputs)", "units": "s"}),
            "speedup": (("surrogate",), np.array([r["speedup"] for r in rows], dtype=float),
                        {"long_name": "measured speed-up (NaN: high-fidelity time not measured)", "units": "1"}),
            "hf_seconds": ((), hf_s, {"long_name": "median high-fidelity wall time per test sample", "units": "s"}),
            "offline_seconds": (("surrogate",), np.array([r["offline_seconds"] for r in rows], dtype=float),
                                {"long_name": "generation + reduction + training wall time", "units": "s"}),
            "design": ok["design"],
        },
        coords={"surrogate": np.array([m.name for m in models], dtype=object),
                "variable": np.array(list(variables), dtype=object), "sample": ok["sample"].values,
                **{k: ok.coords[k] for k in ok.coords if "parameter" in ok[k].dims}},
        attrs={**dict(attrs or {}),
               "timing_note": "high-fidelity time measured in the generate stage of this run; surrogate time "
                              "is the median of one-sample queries in the evaluate stage"},
    )


# =============================================================================== figures
def plot_figures(res: ParametricResult, test: SplitData, train: SplitData, models: Sequence[SurrogateModel],
                 bases: Mapping[str, Any], folder: str, n_plot_samples: int) -> None:
    """``singular_values``, ``fields``, ``error_parameters`` and ``error_split`` in ``folder``."""
    from pathlib import Path

    from . import parametric_figures as F
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    ok = test.ok
    F.plot_singular_values(bases, out / "singular_values.png")
    F.plot_error_bars(res.rows, out / "error_split.png")
    variables = [str(v) for v in res.metrics["variable"].values]
    rel = res.metrics["rel_l2"].values
    first = {m.name: variables.index(m.model.variables[0]) for m in models}
    names = [str(p) for p in ok["parameter"].values]
    units = ([str(u) for u in ok["parameter_units"].values] if "parameter_units" in ok.coords else ["1"] * len(names))
    F.plot_error_parameters(ok["design"].values, names, units,
                            {m.name: rel[i, first[m.name]] for i, m in enumerate(models)},
                            out / "error_parameters.png", train_design=train.ok["design"].values)
    best = min(range(len(models)), key=lambda i: res.rows[i]["rel_l2_mean"])
    m = models[best]
    v = m.model.variables[0]
    F.plot_fields(ok, v, res.predictions[m.name][v], m.name, n_plot_samples, out / "fields.png",
                  rel[best, first[m.name]])


# =============================================================================== files
def evaluate_surrogate_files(train_path: str, test_path: str, basis_paths: Sequence[str], model_paths: Sequence[str],
                             settings: Mapping[str, Any], *, metrics_path: str, summary_path: str,
                             figures_dir: str, summary_html: str | None = None,
                             attrs: Mapping[str, Any] | None = None) -> ParametricResult:
    """The stage's work; ``settings`` is the validated ``evaluation`` config section."""
    train = load_split(train_path, what="training samples")
    test = load_split(test_path, what="test samples")
    bases, reduction_seconds = load_bases(basis_paths)
    models = [load_model(p) for p in model_paths]
    if not models:
        raise SurroflowError(f"{test_path}: no surrogate to evaluate (the study defines no surrogates)")
    dup = sorted({m.name for m in models if [x.name for x in models].count(m.name) > 1})
    if dup:
        raise SurroflowError(f"model files {list(model_paths)}: duplicate model names {dup}")
    res = evaluate_surrogates(test, train, models, reduction_seconds, int(settings["timing_repeats"]),
                              settings["error_bound"], variables=list(bases), attrs=attrs)
    write_dataset(res.metrics, metrics_path)
    write_summary(res.rows, summary_path, SUMMARY_COLUMNS, summary_html,
                  title=f"surrogate summary of study {res.metrics.attrs.get('study', '')}".strip())
    plot_figures(res, test, train, models, bases, figures_dir, int(settings["n_plot_samples"]))
    return res


__all__ = ["SUMMARY_COLUMNS", "SurrogateModel", "ParametricResult", "load_model", "load_bases",
           "evaluate_surrogates", "plot_figures", "evaluate_surrogate_files"]
