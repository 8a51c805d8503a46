"""Evaluate stage: errors split into projection and regression, measured speed-up, offline cost.

Outputs ``metrics.nc`` (per surrogate, variable and test sample), ``summary.csv`` (one row per
surrogate) and the figures.  Test samples flagged by the generator are excluded and counted.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from ..io import STATUS_OK, open_dataset, provenance, write_dataset
from ..logging_utils import stage_logger
from ..snapshots import ok_samples, snapshot_matrix, space_dims_of, surrogate_inputs, time_dim_of
from ..surrogates.io import surrogate_from_dataset
from ..surrogates.reduced import ReducedModel
from ..surrogates.stage import load_bases
from . import figures
from .metrics import error_split
from .timing import median_seconds

SUMMARY_COLUMNS = ["surrogate", "kind", "basis", "online_modes", "rel_l2_mean", "rel_l2_max",
                   "projection_error_mean", "selection_error_mean", "regression_error_mean", "prediction_seconds", "hf_seconds", "speedup",
                   "offline_seconds", "generation_seconds", "reduction_seconds", "fit_seconds",
                   "break_even_queries", "n_test", "n_test_flagged", "n_train_flagged"]


def _as_list(v: Any) -> list:
    if isinstance(v, str):
        return json.loads(v)
    return list(np.atleast_1d(v))


def evaluate_surrogates_file(test_nc: str, train_nc: str, basis_ncs: Sequence[str],
                             model_ncs: Mapping[str, str], out_metrics: str, out_summary: str,
                             figure_pngs: Mapping[str, str], evaluation_cfg: Mapping[str, Any],
                             study: str, config_section: Mapping[str, Any],
                             log_file: str | None = None) -> None:
    with stage_logger("evaluate", log_file) as logger:
        test_all = open_dataset(test_nc, stage="generate", required=("design", "status", "wall_time"))
        train_all = open_dataset(train_nc, stage="generate", required=("design", "status", "wall_time"))
        test = ok_samples(test_all)
        n_test_flagged = int(test_all.sizes["sample"] - test.sizes["sample"])
        n_train_flagged = int((train_all["status"].values != STATUS_OK).sum())
        if n_test_flagged:
            logger.warning("%d flagged test sample(s) excluded from the evaluation", n_test_flagged)
        bases = load_bases(basis_ncs)
        basis_ds = {str(open_dataset(p).attrs["variable"]): open_dataset(p) for p in basis_ncs}
        variables = list(bases)
        td = time_dim_of(test)
        times = test[td].values.astype(float) if td else None
        shapes = {v: tuple(test.sizes[d] for d in space_dims_of(test, v)) for v in variables}
        design = test["design"].values
        n = design.shape[0]
        truth = {v: snapshot_matrix(test, v) for v in variables}          # (n*nt, space)
        nt = len(times) if times is not None else 1

        # costs measured upstream, in this run
        generation_seconds = float(np.nansum(train_all["wall_time"].values))
        reduction_seconds = float(sum(float(d.attrs.get("fit_seconds", np.nan)) for d in basis_ds.values()))
        hf_seconds = float(np.median(test["wall_time"].values)) if n else math.nan

        names = list(model_ncs)
        rel = np.full((len(names), len(variables), n), np.nan)
        reg = np.full_like(rel, np.nan)
        proj = np.full_like(rel, np.nan)     # onto the model's own basis (global, or best local)
        sel = np.zeros_like(rel)             # local bases only: the wrong cluster picked
        pred_seconds = np.full(len(names), np.nan)
        rows: list[dict[str, Any]] = []
        predictions: dict[str, dict[str, np.ndarray]] = {}
        groups = np.repeat(np.arange(n), nt)
        for i, name in enumerate(names):
            mds = open_dataset(model_ncs[name], stage="train")
            model_vars = [str(v) for v in _as_list(mds.attrs["variables"])]
            is_local = mds.attrs.get("basis") == "local"
            if is_local:
                from ..surrogates.reduced import LocalReducedModel
                lm = LocalReducedModel.from_dataset(mds)
                v = model_vars[0]
                k = variables.index(v)
                X_in = surrogate_inputs(design, times)
                es = lm.error_split(X_in, truth[v], groups=groups)
                pg = es["per_group"]
                rel[i, k], proj[i, k], sel[i, k], reg[i, k] = pg["total"], pg["projection"], pg["selection"], pg["regression"]
                predictions[name] = {v: lm.predict_field(X_in).reshape(n, *([nt] if times is not None else []), *shapes[v])}

                def query(s: int, lm=lm) -> Any:
                    return lm.predict_field(surrogate_inputs(design[s:s + 1], times))
                logger.info("%s: local model, selection accuracy %.3f", name, es["selection_accuracy"])
            else:
                if model_vars != variables:
                    raise ValueError(f"{model_ncs[name]}: trained on variables {model_vars}, bases are {variables}")
                scales = _as_list(mds.attrs["coefficient_scales"]) if "coefficient_scales" in mds.attrs else None
                rm = ReducedModel(bases, surrogate_from_dataset(mds), scales)
                fields = rm.predict_fields(design, times, shapes)
                predictions[name] = fields
                for k, v in enumerate(variables):
                    b = bases[v]
                    P = b.project(truth[v])
                    pred_flat = fields[v].reshape(n * nt, -1)
                    for s_ in range(n):
                        rows_s = slice(s_ * nt, (s_ + 1) * nt)
                        e = error_split(truth[v][rows_s], P[rows_s], pred_flat[rows_s], b.weights_)
                        rel[i, k, s_], reg[i, k, s_], proj[i, k, s_] = e["rel_l2"], e["regression"], e["projection"]

                def query(s: int, rm=rm) -> Any:
                    return rm.predict_fields(design[s:s + 1], times, shapes)
            # one query = one sample's full output (all times, all variables), reconstruction included
            repeats = int(evaluation_cfg.get("timing_repeats", 5))
            k_samples = min(n, 4)
            per = [median_seconds(lambda s=s: query(s), repeats) for s in range(k_samples)]
            pred_seconds[i] = float(np.median(per))
            fit_seconds = float(mds.attrs.get("fit_seconds", np.nan))
            offline = generation_seconds + reduction_seconds + fit_seconds
            saving = hf_seconds - pred_seconds[i]
            k0 = variables.index(model_vars[0])
            row = {
                "surrogate": name, "kind": str(mds.attrs.get("surrogate_kind")),
                "basis": "local" if is_local else "global",
                "online_modes": int(mds.attrs["n_online_modes"]) if is_local else int(bases[variables[k0]].n_modes_),
                "rel_l2_mean": float(np.mean(rel[i, k0])), "rel_l2_max": float(np.max(rel[i, k0])),
                "projection_error_mean": float(np.mean(proj[i, k0])),
                "selection_error_mean": float(np.mean(sel[i, k0])),
                "regression_error_mean": float(np.mean(reg[i, k0])),
                "prediction_seconds": pred_seconds[i], "hf_seconds": hf_seconds,
                "speedup": hf_seconds / pred_seconds[i],
                "offline_seconds": offline, "generation_seconds": generation_seconds,
                "reduction_seconds": reduction_seconds, "fit_seconds": fit_seconds,
                "break_even_queries": math.ceil(offline / saving) if saving > 0 else math.inf,
                "n_test": n, "n_test_flagged": n_test_flagged, "n_train_flagged": n_train_flagged,
            }
            for k, v in enumerate(variables[1:], start=1):
                if v in model_vars:
                    row[f"rel_l2_mean_{v}"] = float(np.mean(rel[i, k]))
                    row[f"rel_l2_max_{v}"] = float(np.max(rel[i, k]))
                    row[f"projection_error_mean_{v}"] = float(np.mean(proj[i, k]))
            bound = evaluation_cfg.get("error_bound")
            if bound is not None:
                row["meets_error_bound"] = bool(row["rel_l2_mean"] <= bound)
            rows.append(row)
            logger.info("%s: rel L2 mean %.3e max %.3e (projection %.3e, regression %.3e); "
                        "%.2e s/query vs %.2e s high fidelity: speed-up %.0fx; offline %.1f s",
                        name, row["rel_l2_mean"], row["rel_l2_max"], row["projection_error_mean"],
                        row["regression_error_mean"], pred_seconds[i], hf_seconds, row["speedup"], offline)

        ds = xr.Dataset(
            {
                "rel_l2": (("surrogate", "variable", "sample"), rel,
                           {"long_name": "relative L2 error of the surrogate", "units": "1"}),
                "regression_error": (("surrogate", "variable", "sample"), reg,
                                     {"long_name": "relative error between projection and prediction", "units": "1"}),
                "projection_error": (("surrogate", "variable", "sample"), proj,
                                     {"long_name": "relative error of the projection onto the model's basis "
                                                   "(the best local basis for local models)", "units": "1"}),
                "selection_error": (("surrogate", "variable", "sample"), sel,
                                    {"long_name": "extra projection error of the local basis the selector picked "
                                                  "(0 for a global basis)", "units": "1"}),
                "prediction_seconds": (("surrogate",), pred_seconds,
                                       {"long_name": "surrogate time per query (one sample, all outputs)", "units": "s"}),
                "speedup": (("surrogate",), hf_seconds / pred_seconds, {"long_name": "measured speed-up", "units": "1"}),
                "hf_seconds": ((), hf_seconds, {"long_name": "median high-fidelity wall time per test sample", "units": "s"}),
                "offline_seconds": (("surrogate",), np.array([r["offline_seconds"] for r in rows]),
                                    {"long_name": "generation + reduction + training wall time", "units": "s"}),
                "design": test["design"],
            },
            coords={"surrogate": np.array(names, dtype=object), "variable": np.array(variables, dtype=object),
                    "sample": test["sample"].values,
                    **{k: test.coords[k] for k in test.coords if "parameter" in test[k].dims}},
            attrs={**provenance("evaluate", config_section, study), "n_test_flagged": n_test_flagged,
                   "n_train_flagged": n_train_flagged,
                   "timing_note": "high-fidelity time measured in the generate stage of this run; surrogate time "
                                  "is the median of one-sample queries in the evaluate stage"},
        )
        write_dataset(ds, out_metrics)
        _write_summary(rows, out_summary)

        # ---------------------------------------------------------------- figures
        figures.plot_singular_values(bases, figure_pngs["singular_values"])
        figures.plot_error_bars(rows, figure_pngs["error_split"])
        pnames = [str(p) for p in test["parameter"].values]
        punits = [str(u) for u in test["parameter_units"].values]
        figures.plot_error_parameters(design, pnames, punits,
                                      {nm: rel[i, 0] for i, nm in enumerate(names)},
                                      figure_pngs["error_parameters"],
                                      train_design=ok_samples(train_all)["design"].values)
        best = min(range(len(names)), key=lambda i: rows[i]["rel_l2_mean"])
        _plot_fields(test, variables[0], predictions[names[best]][variables[0]], names[best],
                     int(evaluation_cfg.get("n_plot_samples", 3)), figure_pngs["fields"], rel[best, 0])


def _plot_fields(test: xr.Dataset, var: str, pred: np.ndarray, model_name: str, n_plot: int,
                 png: str, errors: np.ndarray) -> None:
    td = time_dim_of(test)
    space = space_dims_of(test, var)
    n = test.sizes["sample"]
    # show the best, median and worst test samples
    order = np.argsort(errors)
    pick = sorted({int(order[0]), int(order[len(order) // 2]), int(order[-1])})[:max(1, n_plot)] if n else []
    truth = test[var].transpose("sample", *(([td] if td else []) + list(space))).values
    labels = [f"sample {int(test['sample'][s])} (err {errors[s]:.1e})" for s in pick]
    units = test[var].attrs.get("units", "")
    if td and len(space) == 1 and test[space[0]].dtype.kind == "f":
        figures.plot_fields_xt(test[space[0]].values, test[td].values, [truth[s] for s in pick],
                               [pred[s] for s in pick], labels, png, units=units,
                               x_units=test[space[0]].attrs.get("units", ""),
                               t_units=test[td].attrs.get("units", ""),
                               title=f"{var} ({units}), surrogate: {model_name}")
        return
    if "node" in space and "node_coordinates" in test and "connectivity" in test:
        # last snapshot of each sample; vector fields shown as their magnitude
        def last(a: np.ndarray) -> np.ndarray:
            a = a[-1] if td else a
            return np.linalg.norm(a, axis=-1) if a.ndim == 2 else a
        extra = " magnitude" if len(space) == 2 else ""
        figures.plot_mesh_fields(test["node_coordinates"].values, test["connectivity"].values,
                                 [last(truth[s]) for s in pick], [last(pred[s]) for s in pick], labels, png,
                                 units=units, coord_units=test["node_coordinates"].attrs.get("units", ""),
                                 title=f"{var}{extra} ({units}) at the last {td or 'state'}, surrogate: {model_name}")
        return
    # generic fallback: final time slice, flattened space
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(pick), 1, figsize=(8, 2.6 * len(pick)), squeeze=False)
    for ax, s, lab in zip(axes[:, 0], pick, labels):
        ax.plot(truth[s].reshape(truth[s].shape[0], -1)[-1] if td else truth[s].ravel(), label="high fidelity")
        ax.plot(pred[s].reshape(pred[s].shape[0], -1)[-1] if td else pred[s].ravel(), "--", label="surrogate")
        ax.set(xlabel="spatial index (1)", ylabel=f"{var} ({units})", title=lab)
        ax.legend()
    figures.save(fig, png)


def _write_summary(rows: Sequence[Mapping[str, Any]], path: str) -> None:
    cols = list(SUMMARY_COLUMNS)
    for r in rows:
        cols += [k for k in r if k not in cols]
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    tmp.replace(p)
