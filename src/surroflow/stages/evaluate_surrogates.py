"""Stage ``evaluate_surrogates``: every reduced model of a parametric study on the test design.

Inputs: ``train``, ``test`` (generate data), ``bases`` (global basis files, for the
singular-value figure and the reduction cost), ``models`` (model files of ``train_surrogate``),
optional ``projection_study`` (only a dependency: its figure goes to the report beside these).
Outputs: ``metrics`` (NetCDF), ``summary`` (CSV; an HTML table beside it, ``summary_html`` when
the rule names it), ``figures`` (a folder: ``singular_values``, ``fields``, ``error_parameters``,
``error_split``, each PNG with a PDF beside it).  Settings: ``ctx.section["evaluation"]``.
"""
from __future__ import annotations

from typing import Mapping

from . import StageContext


def _as_list(v: str | list[str]) -> list[str]:
    return [v] if isinstance(v, str) else list(v)


#: BLAS/OpenMP threads of the timed solver runs and queries: one, as the generate jobs run the
#: solver
TIMING_THREADS = 1


def run(inputs: Mapping[str, str | list[str]], outputs: Mapping[str, str], ctx: StageContext) -> None:
    from ..evaluation.parametric import evaluate_surrogate_files
    ctx.check_inputs(inputs)
    summary = str(outputs["summary"])
    evaluate_surrogate_files(
        str(inputs["train"]), str(inputs["test"]), _as_list(inputs["bases"]), _as_list(inputs["models"]),
        ctx.section["evaluation"], metrics_path=str(outputs["metrics"]), summary_path=summary,
        figures_dir=str(outputs["figures"]),
        summary_html=str(outputs["summary_html"]),
        attrs=ctx.provenance(inputs, str(outputs["metrics"])),
        simulator=ctx.section["simulator"], threads=TIMING_THREADS)


__all__ = ["run"]
