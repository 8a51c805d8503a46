"""Stage ``evaluate_forecast``: roll out every forecaster of a study from the test initial
conditions and score it in Lyapunov times (persistence and climatology always beside it).

Inputs: ``test`` (generate data), ``models`` (forecaster files of ``train_forecaster``).
Outputs: ``metrics`` (NetCDF), ``summary`` (CSV; an HTML table beside it, ``summary_html`` when
the rule names it), ``figures`` (a folder: ``vpt``, ``error_growth``, ``spectra``,
``invariant_measure`` and ``rollout_<i>`` or ``xt_<model>``, each PNG with a PDF beside it).
Settings: ``ctx.section["forecast"]``.
"""
from __future__ import annotations

from typing import Mapping

from . import StageContext


def _as_list(v: str | list[str]) -> list[str]:
    return [v] if isinstance(v, str) else list(v)


def run(inputs: Mapping[str, str | list[str]], outputs: Mapping[str, str], ctx: StageContext) -> None:
    from ..evaluation.forecast import evaluate_forecast_files
    ctx.check_inputs(inputs)
    summary = str(outputs["summary"])
    evaluate_forecast_files(
        str(inputs["test"]), _as_list(inputs["models"]), ctx.section["forecast"],
        metrics_path=str(outputs["metrics"]), summary_path=summary, figures_dir=str(outputs["figures"]),
        summary_html=str(outputs["summary_html"]),
        attrs=ctx.provenance(inputs, str(outputs["metrics"])), simulator=ctx.section.get("simulator"))


__all__ = ["run"]
