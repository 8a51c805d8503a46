"""Stage ``evaluate_model_error``: the imperfect, the corrected and the true model, each started
from its own filter's analysis of the observed test window, rolled out and scored in Lyapunov
times (:mod:`surroflow.evaluation.model_error`).

Inputs: ``train`` (the baselines are fitted on it), ``test`` (the truth of the test design,
never seen by the filter or the regression) and ``correction`` (``discover_model_error``).
The corrected model is the imperfect one plus the discovered terms, built by the simulator
itself (``settings_for_terms``); a discovered term outside the simulator's family of equations
cannot be integrated and is named in the log and the summary's ``equation`` column.  Outputs
as ``evaluate_forecast``: ``metrics``, ``summary`` (+ ``summary_html``) and ``figures``;
settings: ``ctx.section["forecast"]`` (VPT threshold, horizon, starts).
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

import numpy as np

from ..dynamics.model_error import corrected_terms
from ..evaluation.equations import format_equation
from ..evaluation.model_error import ForecastFilter, evaluate_model_error
from ..io import open_dataset
from ..simulators import get_simulator
from . import StageContext
from .discover_model_error import imperfect_model

logger = logging.getLogger(__name__)


def run(inputs: Mapping[str, Any], outputs: Mapping[str, str], ctx: StageContext) -> None:
    ctx.check_inputs(inputs)
    sim_cfg = ctx.section["simulator"]
    truth = get_simulator(sim_cfg["name"], **sim_cfg["settings"])
    model = imperfect_model(ctx.section)
    cds = open_dataset(inputs["correction"], stage="discover_model_error")
    terms = [str(t) for t in cds["term"].values]
    correction = {t: float(c) for t, c in zip(terms, cds["coefficient"].values) if c != 0.0}
    (var, model_rhs), = model.equation_terms().items()
    fixed = corrected_terms(model_rhs, correction)
    settings, outside = truth.settings_for_terms(fixed)
    if outside:
        logger.warning("discovered terms outside the %s family, not integrated by the corrected model: %s",
                       sim_cfg["name"], outside)
    corrected = get_simulator(sim_cfg["name"], **{**sim_cfg["settings"], **settings})
    systems = {"imperfect": model, "corrected": corrected, "true": truth}
    equations = {name: format_equation(var, next(iter(s.equation_terms().values()))) for name, s in systems.items()}
    if outside:
        equations["corrected"] += " (not integrated: " + ", ".join(f"{c:+.4g} {t}" for t, c in outside.items()) + ")"
    for name, eq in equations.items():
        logger.info("%s: %s", name, eq)
    if not correction:
        logger.warning("the regression kept no correction term: the corrected model is the imperfect one")
    me = ctx.section["model_error"]
    da = me["assimilation"]

    def forecast_filter(train: np.ndarray) -> ForecastFilter:
        return ForecastFilter(obs_index=np.arange(0, train.shape[2], int(me["observation"]["every"])),
                              obs_std=float(cds.attrs["obs_std"]), steps_per_cycle=int(da["cycle_steps"]),
                              cycles=int(da["forecast_cycles"]), pool=train.reshape(-1, train.shape[2]),
                              members=int(da["members"]), method=da["method"], inflation=float(da["inflation"]),
                              localisation=da["localisation"], seed=int(me["observation"]["seed"]))

    evaluate_model_error(str(inputs["train"]), str(inputs["test"]), systems, equations, ctx.section["forecast"],
                         metrics_path=str(outputs["metrics"]), summary_path=str(outputs["summary"]),
                         summary_html=str(outputs["summary_html"]), figures_dir=str(outputs["figures"]),
                         forecast_filter=forecast_filter, attrs=ctx.provenance(inputs, str(outputs["metrics"])))


__all__ = ["run"]
