"""The file-level work of the ``propagate_uq`` stage: read the model and the costs recorded
upstream, propagate, write ``statistics.nc``, the summary (CSV + HTML, the one summary writer
:func:`surroflow.evaluation.summary.write_summary`) and the figures."""
from __future__ import annotations

import logging
import math
from typing import Any, Callable, Mapping, Sequence

import xarray as xr

from ..evaluation.data import generation_seconds, load_split
from ..evaluation.parametric import load_model
from ..evaluation.summary import write_summary
from ..io import open_dataset, write_dataset
from .propagate import SUMMARY_COLUMNS, UQResult, propagate

logger = logging.getLogger(__name__)


def offline_seconds(train_path: str, basis_paths: Sequence[str], fit_seconds: float) -> dict[str, float]:
    """Generation (solver seconds of the training split), reduction (``fit_seconds`` of the
    bases the model was trained on) and training seconds; NaN where one was not measured."""
    gen = generation_seconds(load_split(train_path, what="training samples"))
    red = sum(float(open_dataset(p, load=False).attrs.get("fit_seconds", math.nan)) for p in basis_paths)
    return {"generation_seconds": gen, "reduction_seconds": red, "fit_seconds": fit_seconds,
            "offline_seconds": gen + red + fit_seconds}


def propagate_uq_files(model_path: str, train_path: str, basis_paths: Sequence[str], settings: Mapping[str, Any], *,
                       statistics_path: str, summary_path: str, figures_dir: str, summary_html: str | None = None,
                       run_hf: Callable[[xr.Dataset], xr.Dataset] | None = None,
                       attrs: Mapping[str, Any] | None = None) -> UQResult:
    """The stage's work; ``settings`` is the validated ``uq`` section of the study."""
    from .figures import plot_figures
    m = load_model(model_path)
    costs = offline_seconds(train_path, basis_paths, m.fit_seconds)
    res = propagate(m.model, settings, run_hf=run_hf, offline_seconds=costs["offline_seconds"],
                    attrs={**dict(attrs or {}), **costs, "model_name": m.name, "model_kind": m.kind})
    write_dataset(res.dataset, statistics_path)
    for row in res.rows:
        row.setdefault("surrogate", m.name)
    write_summary(res.rows, summary_path, ["surrogate", *SUMMARY_COLUMNS], summary_html,
                  title=f"uncertainty propagation of study {res.dataset.attrs.get('study', '')} with surrogate "
                        f"{m.name}".replace("  ", " "))
    plot_figures(res.dataset, figures_dir)
    for row in res.rows:
        if row["source"] == "surrogate":
            logger.info("%s: mean %.6g [%.6g, %.6g], std %.6g [%.6g, %.6g]; agrees with the check: mean %s, std %s",
                        row["qoi"], row["mean"], row["mean_lower"], row["mean_upper"], row["std"], row["std_lower"],
                        row["std_upper"], row["mean_agrees"], row["std_agrees"])
    logger.info("cost: surrogate %.3g s vs high-fidelity Monte Carlo %.3g s: ratio %.3g (%.3g with offline %.3g s)",
                res.dataset.attrs["surrogate_seconds"], res.dataset.attrs["hf_monte_carlo_seconds"],
                res.dataset.attrs["cost_ratio"], res.dataset.attrs["cost_ratio_with_offline"],
                costs["offline_seconds"])
    return res


__all__ = ["offline_seconds", "propagate_uq_files"]
