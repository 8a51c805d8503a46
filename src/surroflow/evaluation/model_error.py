"""Scoring a model-error study: the imperfect, the corrected and the true model, in Lyapunov
times, beside persistence and climatology, with the forecast task's own metrics and figures.

The three models are the same chaotic system with different equation coefficients
(:class:`KnownModel`: a system of known equations seen as a forecaster that needs no fit);
:func:`surroflow.evaluation.forecast.evaluate_forecasts` rolls them out from the test histories
exactly as it does trained forecasters, and
:func:`surroflow.evaluation.forecast.write_forecast_result` writes ``metrics.nc``, the summary
and the figures.  The baselines are fitted on the training truth.

The forecasts start as they would in practice, from an analysis: each model runs its own filter
(:class:`ForecastFilter`, the discovery's observation operator, noise and filter settings) over
the observed window before the start and forecasts from the analysis mean.  The same
observations (seeded by the history) go to all three models, so the true model's skill is that
of a perfect model started from imperfect data, and a corrected model is judged by how close it
comes to it.  Starting all three from the exact true state instead would give the true model an
infinite valid prediction time (it is the truth's own solver) and measure nothing.  No fitted
quantity is learnt from the test observations; persistence and climatology start from the true
state (an advantage to them).
"""
from __future__ import annotations

import logging
import math
import time
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from .. import SurroflowError
from ..dynamics.assimilation import assimilate, climatological_ensemble, observe
from ..forecast import BASELINES, make_forecaster
from ..forecast.base import as_history
from ..snapshots import forecast_variable, sample_interval, trajectories
from .data import load_split
from .forecast import SUMMARY_COLUMNS, ForecastModel, evaluate_forecasts, write_forecast_result

logger = logging.getLogger(__name__)

#: the three models of a model-error study, in the order of the summary
MODELS = ("imperfect", "corrected", "true")
#: the summary's leading columns: the forecast summary's, then the model-error ones
SUMMARY = ["model", "kind", "status", "vpt_median", "vpt_over_true", "vpt_q25", "vpt_q75", "vpt_mean",
           *[c for c in SUMMARY_COLUMNS if c not in ("model", "kind", "state", "status", "vpt_median", "vpt_q25",
                                                     "vpt_q75", "vpt_mean", "fit_seconds",
                                                     "contains_true_equations")],
           "equation"]


def sample_step(system: Any) -> Callable[[np.ndarray], np.ndarray]:
    """One sample interval of a chaotic system on an ensemble ``(n_members, n_state)``: the model
    step of every filter of a model-error study."""
    def step(E: np.ndarray) -> np.ndarray:
        return system.integrate(E, n_steps=2, n_transient=0)[:, 1]
    return step


@dataclass(frozen=True)
class ForecastFilter:
    """The analysis a forecast starts from: ``cycles`` analyses, one every ``steps_per_cycle``
    samples, of the observations ``observe(history, obs_index, obs_std)`` over the window before
    the start, from a climatological ensemble of ``members`` states of ``pool``."""

    obs_index: np.ndarray
    obs_std: float
    steps_per_cycle: int
    cycles: int
    pool: np.ndarray               #: (n_states, n_state) training states (climatology)
    members: int
    method: str
    inflation: float
    localisation: float | None
    seed: int

    @property
    def window(self) -> int:
        """Samples of history a forecast needs: the initial time and every cycle's."""
        return self.cycles * self.steps_per_cycle + 1

    def analyse(self, step: Callable[[np.ndarray], np.ndarray], histories: np.ndarray) -> np.ndarray:
        """The analysis means ``(n, n_state)`` at the last time of ``histories`` ``(n, window, n_state)``."""
        k = self.steps_per_cycle
        if histories.shape[1] < self.window:
            raise SurroflowError(f"a forecast from an analysis needs {self.window} samples of history "
                                 f"({self.cycles} cycles of {k}), got {histories.shape[1]}")
        out = np.empty((histories.shape[0], histories.shape[2]))
        for i, h in enumerate(histories[:, -self.window:]):
            rng = np.random.default_rng([self.seed, zlib.crc32(np.ascontiguousarray(h).tobytes())])
            y = observe(h[k::k], self.obs_index, self.obs_std, rng)          # identical for every model
            E0 = climatological_ensemble(self.pool, self.members, rng, "model_error.assimilation.members")
            res = assimilate(step, E0, y, self.obs_index, self.obs_std, steps_per_cycle=k, method=self.method,
                             inflation=self.inflation, localisation=self.localisation, rng=rng)
            out[i] = res.analysis_mean[-1]
        return out


class KnownModel:
    """A chaotic system of known equations as the evaluation's forecaster: ``rollout`` integrates
    it (sampled as the data are) from the analysis of its own :class:`ForecastFilter` over the
    history window, or from the last state of each history without a filter."""

    def __init__(self, system: Any, forecast_filter: ForecastFilter | None = None) -> None:
        self.system = system
        self.filter = forecast_filter
        self.n_history_ = 1 if forecast_filter is None else forecast_filter.window

    def rollout(self, initial: Any, n_steps: int) -> np.ndarray:
        h = as_history(initial, int(self.system.dim))
        x0 = h[:, -1] if self.filter is None else self.filter.analyse(sample_step(self.system), h)
        return self.system.integrate(x0, n_steps=int(n_steps) + 1, n_transient=0)[:, 1:]

    def predict_step(self, history: Any) -> np.ndarray:
        return self.rollout(history, 1)[:, 0]


def evaluate_model_error(train_path: str, test_path: str, systems: Mapping[str, Any],
                         equations: Mapping[str, str], settings: Mapping[str, Any], *, metrics_path: str,
                         summary_path: str, summary_html: str, figures_dir: str,
                         forecast_filter: Callable[[np.ndarray], ForecastFilter] | None = None,
                         attrs: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Score ``systems`` (name -> chaotic system, :data:`MODELS`) on the test trajectories and
    write the forecast-style outputs; ``equations`` (name -> the model's equation, written out)
    fills the summary's ``equation`` column; ``forecast_filter(training trajectories)`` builds the
    filter every model starts its forecasts from (none: from the true state).  Returns the
    summary rows."""
    test = load_split(test_path, required=("status",), what="trajectories")
    train = load_split(train_path, required=("status",), what="trajectories")
    var = forecast_variable(test.ok, settings["variable"])
    dt = sample_interval(test.ok)
    X = trajectories(train.all, var, train_path)
    models: dict[str, ForecastModel] = {}
    for b in BASELINES:
        t0 = time.perf_counter()
        m = make_forecaster(b).fit(X, dt=dt)
        models[b] = ForecastModel(b, m, b, "full", time.perf_counter() - t0, dt)
    ff = None if forecast_filter is None else forecast_filter(X)
    for name, system in systems.items():
        models[name] = ForecastModel(name, KnownModel(system, ff), name, "full", math.nan, dt)
    res = evaluate_forecasts(test, models, settings, attrs)
    true_vpt = next((r["vpt_median"] for r in res.rows if r["model"] == "true"), math.nan)
    for r in res.rows:
        r["vpt_over_true"] = r["vpt_median"] / true_vpt if true_vpt and math.isfinite(true_vpt) else math.nan
        r["equation"] = equations.get(r["model"], "(baseline: no equation)")
        r.pop("contains_true_equations", None)     # the equations are in the equation column
    write_forecast_result(res, metrics_path=metrics_path, summary_path=summary_path, figures_dir=figures_dir,
                          summary_html=summary_html, columns=SUMMARY, title="model-error summary")
    return res.rows


def coefficient_figure(rows: list[dict[str, Any]], path: str, title: str) -> None:
    """Discovered coefficients (bootstrap std as error bars) beside the true correction, per term."""
    from .figures import pyplot, save
    fig, ax = pyplot().subplots(figsize=(7.0, 3.2))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["coefficient"] for r in rows], 0.4, yerr=[r["std"] for r in rows], capsize=2,
           label="discovered (bootstrap std)")
    ax.bar(x + 0.2, [r["true"] for r in rows], 0.4, label="true correction", alpha=0.7)
    ax.axhline(0.0, color="0.5", lw=0.6)
    ax.set_xticks(x, [r["term"] for r in rows], rotation=45, ha="right")
    ax.set_ylabel("coefficient")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    save(fig, path)


__all__ = ["MODELS", "SUMMARY", "ForecastFilter", "KnownModel", "coefficient_figure", "evaluate_model_error",
           "sample_step"]
