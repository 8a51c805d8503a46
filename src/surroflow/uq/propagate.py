"""Propagation of input uncertainty through a trained reduced model, checked against the
high-fidelity model in the same job, with its cost.

* :func:`surrogate_monte_carlo` streams ``n`` input draws through the model in batches of
  ``batch_size``: each batch's fields are reduced to the QoIs and folded into the running mean
  and std of every field (:class:`~surroflow.uq.statistics.StreamingMoments`), so memory holds
  one batch of fields, never all of them.
* :func:`propagate` adds the high-fidelity check (``n_hf_check`` draws of the *same*
  distribution, independent of the surrogate's draws and of the test design, run by a
  ``run_hf(design) -> generate dataset`` callable the stage gives it), the statistics with
  confidence intervals of both, their agreement, the Sobol indices and the cost.

Cost: the surrogate Monte Carlo's wall time against a high-fidelity Monte Carlo with the same
number of samples (so the same mean-interval width), at the high-fidelity seconds per ok sample
measured by the check in this job: ``cost_ratio``; ``cost_ratio_with_offline`` adds the offline
cost (generation + reduction + training) to the surrogate's side.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import xarray as xr

from ..snapshots import ok_samples
from .distributions import InputModel
from .qoi import QoI
from .statistics import QUANTILES, Stats, StreamingMoments, agreement, sample_statistics

logger = logging.getLogger(__name__)

SOURCES = ("surrogate", "high_fidelity")


# ====================================================================== model predictions
def field_layout(model: Any) -> dict[str, Any]:
    """:meth:`~surroflow.surrogates.reduced.ReducedModel.field_layout` of each predicted
    variable, with its inner-product ``weights`` on the space dimensions."""
    out = model.field_layout()
    for v, lay in out.items():
        lay["weights"] = np.asarray(model.bases[v].weights_, dtype=float).reshape(model.space_[v]["shape"])
    return out


def predicted_dataset(model: Any, X: np.ndarray) -> xr.Dataset:
    """``<variable>(sample, [time], space...)`` for the parameter rows ``X``
    (:meth:`~surroflow.surrogates.reduced.ReducedModel.predict_dataset`, the layout of
    :meth:`surroflow.api.ParametricModel.predict`)."""
    return model.predict_dataset(X)


@dataclass
class MonteCarlo:
    """Result of :func:`surrogate_monte_carlo`."""

    qoi: np.ndarray                               # (n, n_qoi)
    moments: dict[str, StreamingMoments] = field(default_factory=dict)
    seconds: float = math.nan


def surrogate_monte_carlo(model: Any, X: np.ndarray, qois: Sequence[QoI], batch_size: int,
                          fields: bool = True) -> MonteCarlo:
    """QoIs of every row of ``X`` through ``model`` (a fitted ReducedModel), in batches; with
    ``fields`` also the streaming mean/std of every predicted field."""
    layout = field_layout(model)
    weights = {v: lay["weights"] for v, lay in layout.items()}
    Q = np.empty((X.shape[0], len(qois)))
    moments = {v: StreamingMoments() for v in layout} if fields else {}
    t0 = time.perf_counter()
    for lo in range(0, X.shape[0], int(batch_size)):
        ds = predicted_dataset(model, X[lo:lo + int(batch_size)])
        for k, q in enumerate(qois):
            Q[lo:lo + ds.sizes["sample"], k] = q(ds, weights)
        for v, m in moments.items():
            m.update(ds[v].values)
    return MonteCarlo(Q, moments, time.perf_counter() - t0)


# ====================================================================== the study
def design_dataset(X: np.ndarray, parameters: Sequence[str], units: Sequence[str] | None = None) -> xr.Dataset:
    """A design (``design(sample, parameter)``) of the input rows ``X``, as generate stages read it."""
    coords: dict[str, Any] = {"sample": np.arange(X.shape[0]), "parameter": np.array(list(parameters), dtype=object)}
    if units is not None:
        coords["parameter_units"] = ("parameter", np.array(list(units), dtype=object))
    return xr.Dataset({"design": (("sample", "parameter"), X, {"long_name": "parameters of the draw"})},
                      coords=coords, attrs={"split": "uq_check"})


@dataclass
class UQResult:
    dataset: xr.Dataset
    rows: list[dict[str, Any]]
    qoi_samples: dict[str, np.ndarray]            # source -> (n, n_qoi)
    stats: dict[str, list[Stats]]                 # source -> per QoI


def _outside_box(model: Any, X: np.ndarray) -> float:
    p = model.parameters_
    if p is None or "parameter_low" not in p.coords:
        return math.nan
    lo, hi = np.asarray(p["parameter_low"].values, float), np.asarray(p["parameter_high"].values, float)
    return float(np.mean(np.any((X < lo) | (X > hi), axis=1)))


def propagate(model: Any, settings: Mapping[str, Any], *, run_hf: Callable[[xr.Dataset], xr.Dataset] | None,
              offline_seconds: float = math.nan, attrs: Mapping[str, Any] | None = None) -> UQResult:
    """The uncertainty study of one model: ``settings`` is the validated ``uq`` section;
    ``run_hf`` runs the high-fidelity model on a design (None: no check)."""
    p = model.parameters_
    names = [str(n) for n in p["parameter"].values]
    units = [str(u) for u in p["parameter_units"].values] if "parameter_units" in p.coords else ["1"] * len(names)
    inputs = InputModel.from_config(settings["inputs"], names, settings.get("correlation"))
    qois = [QoI.from_config(n, q) for n, q in settings["qoi"].items()]
    qnames = [q.name for q in qois]
    conf = float(settings["confidence"])
    n, n_hf, batch = int(settings["n_samples"]), int(settings["n_hf_check"]), int(settings["batch_size"])
    seeds = np.random.SeedSequence(int(settings["seed"])).spawn(3)
    X = inputs.sample(n, np.random.default_rng(seeds[0]))
    outside = _outside_box(model, X)
    if outside > 0:
        logger.warning("%.2f%% of the %d input draws lie outside the training box of the surrogate: it "
                       "extrapolates there", 100 * outside, n)
    mc = surrogate_monte_carlo(model, X, qois, batch)
    logger.info("surrogate Monte Carlo: %d draws in %.3f s (batches of %d)", n, mc.seconds, batch)
    layout = field_layout(model)
    qsamples = {"surrogate": mc.qoi}
    stats = {"surrogate": [sample_statistics(mc.qoi[:, k], conf) for k in range(len(qois))]}

    # ---------------------------------------------------------------- high-fidelity check
    hf_note, hf_seconds, hf_ok, hf_design = "", math.nan, 0, np.empty((0, len(names)))
    hf_moments: dict[str, StreamingMoments] = {}
    if run_hf is None or n_hf == 0:
        hf_note = "no high-fidelity check (n_hf_check is 0 or the simulator cannot run here)"
        qsamples["high_fidelity"] = np.empty((0, len(qois)))
    else:
        hf_design = inputs.sample(n_hf, np.random.default_rng(seeds[1]))
        t0 = time.perf_counter()
        hf = run_hf(design_dataset(hf_design, names, units))
        hf_wall = time.perf_counter() - t0
        ok = ok_samples(hf)
        hf_ok = int(ok.sizes["sample"])
        if hf_ok < hf.sizes["sample"]:
            logger.warning("high-fidelity check: %d of %d samples failed (excluded)", hf.sizes["sample"] - hf_ok,
                           hf.sizes["sample"])
        hf_seconds = hf_wall / hf_ok if hf_ok else math.nan
        weights = {v: lay["weights"] for v, lay in layout.items()}
        qsamples["high_fidelity"] = np.column_stack([q(ok, weights) for q in qois]) if hf_ok else \
            np.empty((0, len(qois)))
        for v in layout:
            if hf_ok:
                hf_moments[v] = StreamingMoments().update(ok[v].transpose("sample", *layout[v]["dims"]).values)
        logger.info("high-fidelity check: %d ok samples in %.3f s (%.3g s per sample)", hf_ok, hf_wall, hf_seconds)
    stats["high_fidelity"] = [sample_statistics(qsamples["high_fidelity"][:, k], conf) for k in range(len(qois))]
    agree = [agreement(s, h) for s, h in zip(stats["surrogate"], stats["high_fidelity"])]

    # ---------------------------------------------------------------- Sobol indices
    sobol = None
    if settings.get("sobol") is not None and inputs.random:
        t0 = time.perf_counter()
        sobol = sobol_on_model(model, inputs, qois, settings["sobol"], conf, batch, seeds[2])
        logger.info("Sobol indices: %d surrogate evaluations in %.3f s", sobol.attrs["sobol_n_evaluations"],
                    time.perf_counter() - t0)

    # ---------------------------------------------------------------- cost
    hf_mc_seconds = n * hf_seconds
    cost_ratio = mc.seconds / hf_mc_seconds if hf_mc_seconds > 0 else math.nan
    cost_ratio_offline = (mc.seconds + offline_seconds) / hf_mc_seconds if hf_mc_seconds > 0 else math.nan
    cost = {"surrogate_seconds": mc.seconds, "hf_seconds_per_sample": hf_seconds,
            "hf_monte_carlo_seconds": hf_mc_seconds, "offline_seconds": offline_seconds,
            "cost_ratio": cost_ratio, "cost_ratio_with_offline": cost_ratio_offline}

    ds = _dataset(qnames, qois, names, units, X, qsamples, stats, agree, layout, mc.moments, hf_moments, hf_design,
                  sobol, cost, conf, inputs, outside, hf_note, attrs)
    rows = _rows(qnames, stats, agree, sobol, cost, hf_ok, n)
    return UQResult(ds, rows, qsamples, stats)


def sobol_on_model(model: Any, inputs: InputModel, qois: Sequence[QoI], sobol: Mapping[str, Any],
                   confidence: float, batch_size: int, seed: Any) -> xr.Dataset:
    """Sobol indices of the QoIs on the surrogate (:func:`surroflow.uq.sensitivity.sobol_indices`)."""
    from .sensitivity import sobol_indices
    s = int(np.random.default_rng(seed).integers(2 ** 31 - 1))
    return sobol_indices(lambda Xs: surrogate_monte_carlo(model, Xs, qois, batch_size, fields=False).qoi,
                         inputs, [q.name for q in qois], int(sobol["n_base"]), confidence, s)


def _dataset(qnames: list[str], qois: Sequence[QoI], names: list[str], units: list[str], X: np.ndarray,
             qsamples: Mapping[str, np.ndarray], stats: Mapping[str, list[Stats]], agree: Sequence[Any],
             layout: Mapping[str, Any], moments: Mapping[str, StreamingMoments],
             hf_moments: Mapping[str, StreamingMoments], hf_design: np.ndarray, sobol: xr.Dataset | None,
             cost: Mapping[str, float], conf: float, inputs: InputModel, outside: float, hf_note: str,
             attrs: Mapping[str, Any] | None) -> xr.Dataset:
    def per(attr: str) -> np.ndarray:
        return np.array([[getattr(stats[s][k], attr) for s in SOURCES] for k in range(len(qnames))], dtype=float)

    level = f"{100 * conf:g}%"
    qs = ("qoi", "source")
    data: dict[str, Any] = {
        "qoi_surrogate": (("sample", "qoi"), qsamples["surrogate"], {"long_name": "QoI of each surrogate draw"}),
        "qoi_high_fidelity": (("hf_sample", "qoi"), qsamples["high_fidelity"],
                              {"long_name": "QoI of each ok high-fidelity check draw"}),
        "hf_design": (("hf_draw", "parameter"), hf_design, {"long_name": "inputs of the high-fidelity check draws"}),
        "n": (qs, per("n"), {"long_name": "number of (finite) draws", "units": "1"}),
        "mean": (qs, per("mean"), {"long_name": "sample mean of the QoI"}),
        "mean_lower": (qs, per("mean_lower"), {"long_name": f"lower bound of the {level} t interval of the mean"}),
        "mean_upper": (qs, per("mean_upper"), {"long_name": f"upper bound of the {level} t interval of the mean"}),
        "std": (qs, per("std"), {"long_name": "sample standard deviation of the QoI"}),
        "std_lower": (qs, per("std_lower"), {"long_name": f"lower bound of the {level} chi-square interval of the std"}),
        "std_upper": (qs, per("std_upper"), {"long_name": f"upper bound of the {level} chi-square interval of the std"}),
        "quantile": (("qoi", "source", "probability"), per("quantile"), {"long_name": "sample quantile"}),
        "quantile_lower": (("qoi", "source", "probability"), per("quantile_lower"),
                           {"long_name": f"lower bound of the {level} order-statistic interval of the quantile"}),
        "quantile_upper": (("qoi", "source", "probability"), per("quantile_upper"),
                           {"long_name": f"upper bound of the {level} order-statistic interval of the quantile"}),
        "mean_agrees": (("qoi",), np.array([a.mean for a in agree]),
                        {"long_name": "surrogate mean inside the high-fidelity mean's interval"}),
        "std_agrees": (("qoi",), np.array([a.std for a in agree]),
                       {"long_name": "surrogate std inside the high-fidelity std's interval"}),
    }
    coords: dict[str, Any] = {"qoi": qnames, "source": list(SOURCES), "probability": list(QUANTILES),
                              "parameter": names, "parameter_units": ("parameter", units),
                              "qoi_description": ("qoi", [q.describe() for q in qois])}
    for v, lay in layout.items():
        a = dict(lay["attrs"])
        coords.update(lay["coords"])
        for tag, mom, what in (("", moments, "surrogate"), ("_high_fidelity", hf_moments, "high-fidelity check")):
            if v not in mom:
                continue
            m = mom[v]
            data[f"{v}_mean{tag}"] = (lay["dims"], m.mean, {**a, "long_name": f"mean of {v} ({what}, {m.n} draws)"})
            data[f"{v}_std{tag}"] = (lay["dims"], m.std(), {**a, "long_name": f"std of {v} ({what}, {m.n} draws)"})
    ds = xr.Dataset(data, coords=coords)
    if sobol is not None:
        ds = ds.merge(sobol, combine_attrs="drop_conflicts")
        ds.attrs.update({k: v for k, v in sobol.attrs.items()})
    ds.attrs.update({**dict(attrs or {}), **{k: float(v) for k, v in cost.items()},
                     "n_samples": int(X.shape[0]), "confidence": conf, "inputs": inputs.describe(),
                     "fraction_outside_training_box": outside,
                     "cost_note": "cost_ratio = surrogate_seconds / hf_monte_carlo_seconds, the high-fidelity Monte "
                                  "Carlo of n_samples draws (the same mean-interval width) at the high-fidelity "
                                  "seconds per ok sample measured by the check in this job; cost_ratio_with_offline "
                                  "adds offline_seconds (generation + reduction + training) to the surrogate",
                     "high_fidelity_note": hf_note or "high-fidelity check drawn from the same input distribution, "
                                                      "independent of the surrogate draws and of the test design"})
    return ds


#: leading columns of the uq summary (one row per QoI and source); Sobol columns follow
SUMMARY_COLUMNS = ["qoi", "source", "n", "mean", "mean_lower", "mean_upper", "std", "std_lower", "std_upper",
                   "q05", "q05_lower", "q05_upper", "q50", "q50_lower", "q50_upper", "q95", "q95_lower",
                   "q95_upper", "mean_agrees", "std_agrees", "seconds", "seconds_per_sample", "cost_ratio",
                   "cost_ratio_with_offline"]


def _rows(qnames: list[str], stats: Mapping[str, list[Stats]], agree: Sequence[Any], sobol: xr.Dataset | None,
          cost: Mapping[str, float], hf_ok: int, n: int) -> list[dict[str, Any]]:
    rows = []
    for k, q in enumerate(qnames):
        for s in SOURCES:
            row: dict[str, Any] = {"qoi": q, "source": s, **stats[s][k].row()}
            row["mean_agrees"], row["std_agrees"] = (agree[k].mean, agree[k].std) if s == "surrogate" else (None, None)
            if s == "surrogate":
                row.update({"seconds": cost["surrogate_seconds"], "seconds_per_sample": cost["surrogate_seconds"] / n,
                            "cost_ratio": cost["cost_ratio"], "cost_ratio_with_offline": cost["cost_ratio_with_offline"]})
                if sobol is not None:
                    for p in sobol["input"].values:
                        row[f"S1_{p}"] = float(sobol["sobol_first"].sel(qoi=q, input=p))
                        row[f"S1_{p}_conf"] = float(sobol["sobol_first_conf"].sel(qoi=q, input=p))
                        row[f"ST_{p}"] = float(sobol["sobol_total"].sel(qoi=q, input=p))
                        row[f"ST_{p}_conf"] = float(sobol["sobol_total_conf"].sel(qoi=q, input=p))
            else:
                row.update({"seconds": cost["hf_seconds_per_sample"] * hf_ok,
                            "seconds_per_sample": cost["hf_seconds_per_sample"]})
            rows.append(row)
    return rows


__all__ = ["SOURCES", "SUMMARY_COLUMNS", "MonteCarlo", "UQResult", "field_layout", "predicted_dataset",
           "surrogate_monte_carlo", "design_dataset", "propagate", "sobol_on_model"]
