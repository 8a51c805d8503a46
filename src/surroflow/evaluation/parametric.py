"""Parametric evaluation: every reduced model on the held-out test design.

Per surrogate, variable and test sample the relative L2 error in the weighted norm of the
bases, split by :meth:`~surroflow.surrogates.reduced.ReducedModel.error_split` into projection,
selection (local bases) and regression parts; the query time as latency (one design point per
call) and throughput (all test points in one call, seconds per point); the speed-up against the
high-fidelity time of a test sample measured side by side with the queries in this process
(:func:`~surroflow.evaluation.timing.interleaved_seconds`; the generate stage's median wall
time is kept beside it for comparison); the offline cost (generation + reduction + training)
and the break-even number of queries.  A cost that was not measured (imported data have no
solver, an unavailable simulator cannot run here) is NaN, and so is everything computed from it.

Flagged test samples are excluded and counted (``n_test_flagged``; flagged training samples in
``n_train_flagged``).

Uncertainty (:mod:`surroflow.evaluation.calibration`): the coverage and width of each model's
conformal band, calibrated by ``train_surrogate`` (never on the test design), on the test
samples (``coverage_95``, ``interval_width_mean``), and for Gaussian-process models the
pointwise coverage of their own nominal 95 % intervals (``gp_coverage_95_pointwise``) and the
ratio of their predicted std to the true error (``gp_std_error_ratio``).
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
from ..surrogates.registry import LINEAR_BASELINE
from .data import SplitData, generation_seconds, load_split, median_sample_seconds
from .calibration import UncertaintyResult, evaluate_uncertainty, uncertainty_dataset
from .summary import write_summary
from .timing import break_even_queries, interleaved_seconds, job_threads, speedup

logger = logging.getLogger(__name__)

#: leading columns of the parametric summary (one row per surrogate); per-variable columns
#: ``rel_l2_mean_<var>`` ... follow for the model's further variables
SUMMARY_COLUMNS = ["surrogate", "role", "kind", "basis", "online_modes", "rel_l2_mean", "rel_l2_max", "skill_vs_linear",
                   "projection_error_mean", "selection_error_mean", "regression_error_mean",
                   "latency_seconds", "throughput_seconds", "hf_seconds", "speedup", "speedup_throughput",
                   "hf_seconds_generate", "offline_seconds", "generation_seconds", "reduction_seconds",
                   "fit_seconds", "break_even_queries", "n_test", "n_test_flagged", "n_train_flagged",
                   "coverage_95", "interval_width_mean", "gp_coverage_95_pointwise", "gp_std_error_ratio",
                   "calibration_seconds", "gp_coverage_95_pointwise_in_basis", "calibration_method",
                   "n_calibration"]
#: columns of a study whose test design has members (design.members > 1), after ``skill_vs_linear``
ENSEMBLE_COLUMNS = ["rel_l2_ensemble_mean", "rel_l2_ensemble_max", "skill_vs_linear_ensemble", "noise_floor",
                    "ensemble_mean_noise", "members"]
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
        return str(self.model.basis)


@dataclass
class ParametricResult:
    metrics: xr.Dataset
    rows: list[dict[str, Any]]
    #: per surrogate: predicted fields ``{variable: (n, [n_time], space...)}``
    predictions: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    #: per surrogate: its :class:`~surroflow.evaluation.calibration.UncertaintyResult`
    uncertainty: dict[str, Any] = field(default_factory=dict)


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


@dataclass
class HighFidelity:
    """The high-fidelity model of a study as the evaluation times it: ``run(s)`` runs ok test
    sample ``s`` in this process; ``run`` is None when it cannot be timed here, with the
    ``reason`` (also set when a timed run failed: the time is then unknown)."""

    run: Any = None             # Callable[[int], object] | None
    reason: str = ""


def high_fidelity(simulator: Mapping[str, Any] | None, ok: xr.Dataset) -> HighFidelity:
    """The study's simulator (its validated config section: ``name``, ``settings``) running the
    ok test samples of ``ok`` one at a time; a ``files`` study (no solver), an unavailable
    simulator or a missing section give no runner and the reason."""
    from ..design import design_records
    from ..simulators import SampleFailure, simulator_class
    from ..simulators.base import SimulatorUnavailable
    from ..simulators.files import FilesSource
    if simulator is None:
        return HighFidelity(reason="no simulator section given to the evaluation")
    name = str(simulator["name"])
    try:
        cls = simulator_class(name)
        if issubclass(cls, FilesSource):
            return HighFidelity(reason=f"simulator {name!r} imports results: no solver to time")
        sim = cls(**dict(simulator.get("settings") or {}))
    except SimulatorUnavailable as exc:
        return HighFidelity(reason=f"simulator {name!r} unavailable here: {exc}")
    records = design_records(ok)
    hf = HighFidelity()

    def run(s: int) -> object:
        try:
            return sim.run_sample(records[s])
        except Exception as exc:  # noqa: BLE001 - a failed timing run makes the time unknown, not the evaluation
            what = f"{exc.status}: {exc.reason}" if isinstance(exc, SampleFailure) else f"{type(exc).__name__}: {exc}"
            hf.reason = hf.reason or f"test sample {int(ok['sample'][s])} failed when timed ({what})"
            return None
    hf.run = run
    return hf


def evaluate_surrogates(test: SplitData, train: SplitData, models: Sequence[SurrogateModel],
                        reduction_seconds: float, timing_repeats: int, error_bound: float | None = None,
                        variables: Sequence[str] = (), attrs: Mapping[str, Any] | None = None,
                        simulator: Mapping[str, Any] | None = None, hf_timing_samples: int = 0,
                        threads: int = 1) -> ParametricResult:
    """Errors, timings and costs of every model on the ok test samples of ``test``.

    ``simulator`` (the study's validated ``simulator`` section) is run on ``hf_timing_samples``
    test samples interleaved with the surrogate queries (:func:`interleaved_seconds`): the
    speed-up's high-fidelity time.  Without it (or for a ``files`` study) that time is NaN.
    Timings run with BLAS/OpenMP held to ``threads`` (:func:`job_threads`: the job's cores).
    """
    ok = test.ok
    all_vars = list(dict.fromkeys([*variables, *(v for m in models for v in m.model.variables)]))
    n = test.n_ok
    design = np.asarray(ok["design"].values, dtype=float)
    gen_s, hf_gen = generation_seconds(train), median_sample_seconds(test)
    if not math.isfinite(gen_s):
        logger.warning("%s: no solver timings (imported data?): generation seconds and offline cost are NaN",
                       train.path)
    shape = (len(models), len(all_vars), n)
    parts = {k: np.full(shape, np.nan) for k in ("total", "projection", "selection", "regression")}
    sel_acc = np.full(len(models), np.nan)
    predictions: dict[str, dict[str, np.ndarray]] = {}
    uncertainty: dict[str, UncertaintyResult] = {}
    truth: dict[str, np.ndarray] = {}
    queries: dict[tuple[str, str], Any] = {}
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
        uncertainty[m.name] = evaluate_uncertainty(m.model, design, times, {v: truth[v] for v in m.model.variables},
                                                   predictions[m.name], where=m.path or m.name)

        # one query = one design point's full output (all times, all variables), reconstruction included
        def latency(s: int, m: SurrogateModel = m, times: Any = times) -> Any:
            return m.model.predict_fields(design[s:s + 1], times)

        def throughput(s: int, m: SurrogateModel = m, times: Any = times) -> Any:
            return m.model.predict_fields(design, times)          # every test point in one call
        queries[(m.name, "latency")] = latency
        queries[(m.name, "throughput")] = throughput
    hf = high_fidelity(simulator, ok)
    if hf.run is None:
        logger.warning("%s: high-fidelity time not measured beside the queries (%s): speed-up and break-even "
                       "queries are NaN", test.path, hf.reason)
    with job_threads(threads):
        hf_s, q_s = interleaved_seconds(hf.run, queries, range(min(n, TIMED_SAMPLES)), hf_timing_samples,
                                        timing_repeats)
    if hf.run is not None and hf.reason:
        logger.warning("%s: high-fidelity time unknown: %s", test.path, hf.reason)
        hf_s = math.nan
    elif hf.run is not None and not math.isfinite(hf_s):
        hf.reason = "evaluation.hf_timing_samples is 0"
    from ..design import members_of
    members = members_of(ok)
    ens: dict[str, dict[str, np.ndarray]] = {}
    lat = np.array([q_s[(m.name, "latency")] for m in models], dtype=float)
    thr = np.array([q_s[(m.name, "throughput")] / n for m in models], dtype=float)
    rows: list[dict[str, Any]] = []
    for i, m in enumerate(models):
        v0 = m.model.variables[0]
        red_s = 0.0 if m.basis == "none" else reduction_seconds          # a full-field model has no POD
        offline = gen_s + red_s + m.fit_seconds
        k0 = all_vars.index(v0)
        row: dict[str, Any] = {
            "surrogate": m.name, "kind": m.kind, "basis": m.basis, "online_modes": int(m.model.n_modes[v0]),
            "rel_l2_mean": float(np.mean(parts["total"][i, k0])), "rel_l2_max": float(np.max(parts["total"][i, k0])),
            "projection_error_mean": float(np.mean(parts["projection"][i, k0])),
            "selection_error_mean": float(np.mean(parts["selection"][i, k0])),
            "regression_error_mean": float(np.mean(parts["regression"][i, k0])),
            "latency_seconds": float(lat[i]), "throughput_seconds": float(thr[i]), "hf_seconds": hf_s,
            "speedup": speedup(hf_s, float(lat[i])), "speedup_throughput": speedup(hf_s, float(thr[i])),
            "hf_seconds_generate": hf_gen,
            "offline_seconds": offline, "generation_seconds": gen_s, "reduction_seconds": red_s,
            "fit_seconds": m.fit_seconds, "break_even_queries": break_even_queries(offline, hf_s, float(lat[i])),
            "n_test": n, "n_test_flagged": test.n_flagged, "n_train_flagged": train.n_flagged,
            "selection_accuracy": float(sel_acc[i]),
            **uncertainty[m.name].summary(),
        }
        for v in m.model.variables[1:]:
            k = all_vars.index(v)
            row[f"rel_l2_mean_{v}"] = float(np.mean(parts["total"][i, k]))
            row[f"rel_l2_max_{v}"] = float(np.max(parts["total"][i, k]))
            row[f"projection_error_mean_{v}"] = float(np.mean(parts["projection"][i, k]))
        if members > 1:
            U = truth[v0].reshape(n, -1, truth[v0].shape[1])          # (sample, time, space)
            ens[m.name] = ensemble_scores(ok["point"].values, U, predictions[m.name][v0].reshape(U.shape),
                                          m.model.bases[v0].weights_)
            e = ens[m.name]
            row.update({"rel_l2_ensemble_mean": float(np.nanmean(e["ensemble"])),
                        "rel_l2_ensemble_max": float(np.nanmax(e["ensemble"])),
                        "noise_floor": float(np.nanmean(e["floor"])),
                        "ensemble_mean_noise": float(np.nanmean(e["mean_noise"])), "members": members})
        if error_bound is not None:
            row["meets_error_bound"] = bool(row["rel_l2_mean"] <= error_bound)
        rows.append(row)
        logger.info("%s: rel L2 mean %.3e max %.3e (projection %.3e, selection %.3e, regression %.3e); "
                    "%.2e s/query (%.2e s/query batched) vs %.2e s high fidelity side by side (%.2e s in "
                    "generate): speed-up %.3g; offline %.4g s", m.name,
                    row["rel_l2_mean"], row["rel_l2_max"], row["projection_error_mean"], row["selection_error_mean"],
                    row["regression_error_mean"], lat[i], thr[i], hf_s, hf_gen, row["speedup"], offline)
    add_skill_vs_linear(rows)
    metrics = _metrics_dataset(ok, models, all_vars, parts, lat, thr, sel_acc, rows, hf_s, hf_gen, hf.reason, threads,
                               attrs)
    metrics = metrics.merge(uncertainty_dataset([uncertainty[m.name] for m in models], ok["sample"].values,
                                                [m.name for m in models]),
                            combine_attrs="drop_conflicts")
    if ens:
        first_ens = next(iter(ens.values()))
        # per design point: dimension test_point (the coordinate point(sample) says which samples realise it)
        metrics = metrics.assign_coords(test_point=("test_point", first_ens["point"])).assign(
            rel_l2_ensemble=(("surrogate", "test_point"), np.stack([ens[m.name]["ensemble"] for m in models]),
                             {"long_name": "relative L2 error against the ensemble mean of the point's members "
                                           "(first variable)", "units": "1"}),
            noise_floor=(("test_point",), first_ens["floor"],
                         {"long_name": "members' relative distance from their ensemble mean (internal "
                                       "variability: a perfect model's error against single members)", "units": "1"}),
            ensemble_mean_noise=(("test_point",), first_ens["mean_noise"],
                                 {"long_name": "sampling error of the members' mean (a perfect model's expected "
                                               "error against it)", "units": "1"}))
        metrics.attrs["members"] = members
    metrics.attrs.update({"n_test_flagged": test.n_flagged, "n_train_flagged": train.n_flagged,
                          "generation_seconds": gen_s, "reduction_seconds": reduction_seconds,
                          "hf_timing_samples": int(hf_timing_samples) if hf.run is not None else 0})
    return ParametricResult(metrics, rows, predictions, uncertainty)


def ensemble_scores(point: np.ndarray, truth: np.ndarray, pred: np.ndarray, weights: np.ndarray
                    ) -> dict[str, np.ndarray]:
    """Errors against ensemble means, for test samples that are members of parameter points.

    ``point`` ``(n,)`` is each sample's point, ``truth`` and ``pred`` ``(n, n_time, n_space)``
    its field and the prediction (the same for every member of a point: same inputs),
    ``weights`` ``(n_space,)`` the inner-product weights.  Per point (sorted), in the weighted
    relative L2 norm over all times:

    * ``ensemble``: the prediction against the mean of the point's members, the error that
      measures the forced response (what a model can learn);
    * ``floor``: the noise floor, the members' mean relative distance from their own ensemble
      mean (rescaled by ``sqrt(m / (m - 1))``, as the mean includes the member), i.e. the error
      that a perfect model of the mean has against single members;
    * ``mean_noise``: the sampling error of an ``m``-member mean (``sqrt(sum var / m)`` relative
      to the mean's norm): a perfect model's expected ``ensemble`` error; smaller is not
      resolvable with ``m`` members.

    A point left with one ok member has no ensemble: NaN in all three.
    """
    from .calibration import weighted_norm as _wnorm
    tiny = np.finfo(float).tiny
    out: dict[str, list[float]] = {"ensemble": [], "floor": [], "mean_noise": []}
    pts = np.unique(point)
    for p in pts:
        idx = np.flatnonzero(point == p)
        U, m = truth[idx], idx.size
        if m < 2:
            for k in out:
                out[k].append(math.nan)
            continue
        mean = U.mean(axis=0)
        ref = max(float(_wnorm(mean[None], weights)[0]), tiny)
        out["ensemble"].append(float(_wnorm((pred[idx[0]] - mean)[None], weights)[0]) / ref)
        out["floor"].append(float(np.mean(_wnorm(U - mean, weights) / np.maximum(_wnorm(U, weights), tiny)))
                            * math.sqrt(m / (m - 1)))
        var = np.sum((U - mean) ** 2, axis=0) / (m - 1)
        out["mean_noise"].append(math.sqrt(float(np.einsum("tj,j->", var / m, weights))) / ref)
    return {"point": pts, **{k: np.asarray(v) for k, v in out.items()}}


def add_skill_vs_linear(rows: Sequence[dict[str, Any]]) -> None:
    """Label the linear baseline (``role``) and give every row ``skill_vs_linear`` =
    1 - rel_l2_mean / rel_l2_mean of the baseline (per variable too): > 0 beats it, < 0 loses.
    NaN where the study has no baseline row (a library caller's own model list)."""
    base = next((r for r in rows if r["surrogate"] == LINEAR_BASELINE and r["kind"] == "linear"), None)
    for r in rows:
        r["role"] = "baseline" if r is base else "candidate"
        for key in [k for k in r if k == "rel_l2_mean" or k.startswith("rel_l2_mean_")]:
            ref = math.nan if base is None else float(base.get(key, math.nan))
            skill = 1.0 - r[key] / ref if ref > 0 else math.nan
            r["skill_vs_linear" + key[len("rel_l2_mean"):]] = skill
        if "rel_l2_ensemble_mean" in r:
            ref = math.nan if base is None else float(base["rel_l2_ensemble_mean"])
            r["skill_vs_linear_ensemble"] = 1.0 - r["rel_l2_ensemble_mean"] / ref if ref > 0 else math.nan


def _metrics_dataset(ok: xr.Dataset, models: Sequence[SurrogateModel], variables: Sequence[str],
                     parts: Mapping[str, np.ndarray], latency: np.ndarray, throughput: np.ndarray,
                     sel_acc: np.ndarray, rows: Sequence[Mapping[str, Any]], hf_s: float, hf_gen: float,
                     hf_reason: str, threads: int, attrs: Mapping[str, Any] | None) -> xr.Dataset:
    dims = ("surrogate", "variable", "sample")
    note = ("high-fidelity time (hf_seconds): median of test samples run by the evaluate job in one process, "
            "interleaved with the surrogate queries (each surrogate's latency and throughput call after each "
            f"high-fidelity sample), BLAS/OpenMP held to {int(threads)} thread(s); speed-up = hf_seconds / latency_seconds; hf_seconds_generate: median "
            "wall time of a test sample in the generate jobs, for comparison")
    if hf_reason:
        note += f"; high-fidelity time not measured: {hf_reason}"
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
            "latency_seconds": (("surrogate",), latency,
                                {"long_name": "surrogate latency: seconds of a one-design-point query "
                                              "(all outputs)", "units": "s"}),
            "throughput_seconds": (("surrogate",), throughput,
                                   {"long_name": "surrogate seconds per design point when all test points "
                                                 "are predicted in one call", "units": "s"}),
            "speedup": (("surrogate",), np.array([r["speedup"] for r in rows], dtype=float),
                        {"long_name": "speed-up of one query: hf_seconds / latency_seconds (NaN: high-fidelity "
                                      "time not measured)", "units": "1"}),
            "speedup_throughput": (("surrogate",), np.array([r["speedup_throughput"] for r in rows], dtype=float),
                                   {"long_name": "speed-up of batched queries: hf_seconds / throughput_seconds",
                                    "units": "1"}),
            "hf_seconds": ((), hf_s, {"long_name": "median high-fidelity seconds per test sample, measured "
                                                   "beside the queries in the evaluate job", "units": "s"}),
            "hf_seconds_generate": ((), hf_gen, {"long_name": "median high-fidelity wall time per test sample "
                                                              "in the generate jobs", "units": "s"}),
            "offline_seconds": (("surrogate",), np.array([r["offline_seconds"] for r in rows], dtype=float),
                                {"long_name": "generation + reduction + training wall time", "units": "s"}),
            "design": ok["design"],
        },
        coords={"surrogate": np.array([m.name for m in models], dtype=object),
                "variable": np.array(list(variables), dtype=object), "sample": ok["sample"].values,
                **{k: ok.coords[k] for k in ok.coords if "parameter" in ok[k].dims}},
        attrs={**dict(attrs or {}), "timing_note": note},
    )


# =============================================================================== figures
def plot_figures(res: ParametricResult, test: SplitData, train: SplitData, models: Sequence[SurrogateModel],
                 bases: Mapping[str, Any], folder: str, n_plot_samples: int) -> None:
    """``singular_values``, ``calibration``, ``fields``, ``error_parameters`` and ``error_split``
    in ``folder``."""
    from pathlib import Path

    from . import parametric_figures as F
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    ok = test.ok
    F.plot_singular_values(bases, out / "singular_values.png")
    F.plot_calibration(res.uncertainty, out / "calibration.png")
    F.plot_error_bars(res.rows, out / "error_split.png")
    variables = [str(v) for v in res.metrics["variable"].values]
    rel = res.metrics["rel_l2"].values
    first = {m.name: variables.index(m.model.variables[0]) for m in models}
    names = [str(p) for p in ok["parameter"].values]
    units = ([str(u) for u in ok["parameter_units"].values] if "parameter_units" in ok.coords else ["1"] * len(names))
    F.plot_error_parameters(ok["design"].values, names, units,
                            {m.name: rel[i, first[m.name]] for i, m in enumerate(models)},
                            out / "error_parameters.png", train_design=train.ok["design"].values)
    if "rel_l2_ensemble" in res.metrics:
        F.plot_ensemble_errors(res.rows, out / "ensemble_errors.png")
    best = min(range(len(models)), key=lambda i: res.rows[i].get("rel_l2_ensemble_mean", res.rows[i]["rel_l2_mean"]))
    m = models[best]
    v = m.model.variables[0]
    F.plot_fields(ok, v, res.predictions[m.name][v], m.name, n_plot_samples, out / "fields.png",
                  rel[best, first[m.name]])


# =============================================================================== files
def evaluate_surrogate_files(train_path: str, test_path: str, basis_paths: Sequence[str], model_paths: Sequence[str],
                             settings: Mapping[str, Any], *, metrics_path: str, summary_path: str,
                             figures_dir: str, summary_html: str | None = None,
                             attrs: Mapping[str, Any] | None = None,
                             simulator: Mapping[str, Any] | None = None, threads: int = 1) -> ParametricResult:
    """The stage's work; ``settings`` is the validated ``evaluation`` config section,
    ``simulator`` the study's ``simulator`` section (its high-fidelity time is measured beside
    the queries; None: NaN); ``threads`` the job's cores (the timings' BLAS/OpenMP pools)."""
    train = load_split(train_path, what="training samples")
    test = load_split(test_path, what="test samples")
    bases, reduction_seconds = load_bases(basis_paths)
    models = [load_model(p) for p in model_paths]
    if not models:
        raise SurroflowError(f"{test_path}: no surrogate to evaluate (the study defines no surrogates)")
    dup = sorted({m.name for m in models if [x.name for x in models].count(m.name) > 1})
    if dup:
        raise SurroflowError(f"model files {list(model_paths)}: duplicate model names {dup}")
    hf_n = int(settings["hf_timing_samples"])
    res = evaluate_surrogates(test, train, models, reduction_seconds, int(settings["timing_repeats"]),
                              settings["error_bound"], variables=list(bases), attrs=attrs,
                              simulator=simulator, hf_timing_samples=hf_n, threads=threads)
    write_dataset(res.metrics, metrics_path)
    columns = list(SUMMARY_COLUMNS)
    if res.rows and "rel_l2_ensemble_mean" in res.rows[0]:     # a test design with members
        at = columns.index("skill_vs_linear") + 1
        columns[at:at] = ENSEMBLE_COLUMNS
    write_summary(res.rows, summary_path, columns, summary_html,
                  title=f"surrogate summary of study {res.metrics.attrs.get('study', '')}".strip())
    plot_figures(res, test, train, models, bases, figures_dir, int(settings["n_plot_samples"]))
    return res


__all__ = ["SUMMARY_COLUMNS", "ENSEMBLE_COLUMNS", "ensemble_scores", "SurrogateModel", "ParametricResult", "HighFidelity",
           "high_fidelity", "load_model", "load_bases", "evaluate_surrogates", "plot_figures", "evaluate_surrogate_files"]
