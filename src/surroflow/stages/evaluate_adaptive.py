"""Stage ``evaluate_adaptive``: adaptive against one-shot sampling on the test design.

Inputs ``train``, ``test`` (generate data), ``indicators`` and ``models`` (every round's
``adapt_round`` outputs, round 0 to the last); outputs ``curve``
(``evaluation/adaptive_curve.csv``), ``summary`` (``adaptive_summary.csv`` and its HTML page)
and ``figures`` (:func:`surroflow.adaptive.files.evaluate`, :func:`~surroflow.adaptive.files.plot_figures`).
"""
from __future__ import annotations

from typing import Any, Mapping

from ..adaptive.files import CURVE_COLUMNS, SUMMARY_COLUMNS, evaluate, plot_figures
from ..evaluation.summary import write_summary
from ..io import write_table
from . import StageContext


def _list(v: Any) -> list[str]:
    return [v] if isinstance(v, str) else list(v)


def run(inputs: Mapping[str, Any], outputs: Mapping[str, str], ctx: StageContext) -> None:
    ctx.check_inputs(inputs)
    rows, summary, plot = evaluate(inputs["train"], inputs["test"], _list(inputs["indicators"]),
                                   _list(inputs["models"]), ctx.section)
    plot_figures(rows, plot, outputs["figures"])
    write_table(rows, outputs["curve"], CURVE_COLUMNS)
    write_summary(summary, outputs["summary"], SUMMARY_COLUMNS, outputs["summary_html"],
                  title=f"{ctx.study}: adaptive against one-shot sampling")
