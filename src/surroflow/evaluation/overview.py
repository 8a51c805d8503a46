"""The report's front page: one overview table across studies, then per study its description,
its summary table, its best model against its baseline and its headline figures.

Read from what the evaluations wrote (``<study>/evaluation/summary.csv`` and ``figures/``, and
``<study>/uq/summary.csv`` where a study propagates uncertainty); nothing is recomputed.  Two
outputs: ``overview.html``, the whole page (figures embedded), shown in the report's
``overview`` category; and ``front_page.rst``, which the Snakefile gives Snakemake's
``--report`` as the report's description, so the report opens on it: the static description,
then one line per study (best model, its metric, the baseline, speed-up, coverage).  The landing
page of Snakemake's report is a narrow column centred on the screen, whose top is cut off when
it is taller than the window, so the tables and figures stay on the overview page.

"Best" and "baseline" per task: parametric studies rank surrogates by ``rel_l2_mean`` (lower is
better) against the row whose ``role`` is ``baseline`` (the ``linear`` surrogate every parametric
study has, config.add_linear_baselines); a linear baseline that wins is reported as best; forecast studies rank the
models that are not baselines by ``vpt_median`` (higher is better) against persistence;
model-error studies rank the corrected model against the imperfect one (the true model is the
reference, not a candidate).
"""
from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..io import atomic_path, read_table
from .summary import format_cell, table_fragment

#: the summary columns shown on the front page, per task (the full table is in the report)
COLUMNS = {
    "parametric": ["surrogate", "role", "kind", "basis", "online_modes", "rel_l2_mean", "skill_vs_linear",
                   "rel_l2_ensemble_mean", "skill_vs_linear_ensemble", "noise_floor", "projection_error_mean",
                   "regression_error_mean", "speedup", "offline_seconds", "break_even_queries", "coverage_95",
                   "interval_width_mean", "calibration_method", "n_test"],
    "forecast": ["model", "kind", "status", "vpt_median", "vpt_q25", "vpt_q75", "vpt_smape_median",
                 "vpt_over_persistence", "contains_true_equations", "spectrum_error_time", "fit_seconds", "n_test"],
    "model_error": ["model", "status", "vpt_median", "vpt_over_true", "vpt_q25", "vpt_q75", "equation", "n_test"],
}
UQ_COLUMNS = ["qoi", "source", "n", "mean", "mean_lower", "mean_upper", "std", "mean_agrees", "std_agrees",
              "cost_ratio"]
#: headline figures per task, in this order (those that exist)
HEADLINE = {"parametric": ("ensemble_errors", "fields", "error_split", "calibration"), "forecast": ("vpt", "error_growth"),
            "model_error": ("vpt", "error_growth")}
#: the metric that ranks models, whether higher is better, and the baseline's name column/value
RANKING = {"parametric": ("rel_l2_mean", False, ("role", "baseline")),
           "forecast": ("vpt_median", True, ("model", "persistence")),
           "model_error": ("vpt_median", True, ("model", "imperfect"))}
_NAME = {"parametric": "surrogate", "forecast": "model", "model_error": "model"}
#: rows never ranked "best" besides the forecast baselines: a model-error study's true model
_REFERENCES = {"model_error": ("true",)}


@dataclass
class StudyPage:
    """What the front page shows of one study."""

    name: str
    task: str
    description: str
    rows: list[dict[str, Any]]
    figures: list[Path] = field(default_factory=list)
    uq_rows: list[dict[str, Any]] = field(default_factory=list)

    def _finite(self, col: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if isinstance(r.get(col), float) and math.isfinite(r[col])]

    @property
    def metric(self) -> str:
        """The ranking metric (:data:`RANKING`); a parametric study whose test design has members
        ranks on the error against the ensemble means (single members measure the noise too)."""
        if self.task == "parametric" and any("rel_l2_ensemble_mean" in r for r in self.rows):
            return "rel_l2_ensemble_mean"
        return RANKING[self.task][0]

    @property
    def baseline(self) -> dict[str, Any] | None:
        _, _, (col, value) = RANKING[self.task]
        return next((r for r in self.rows if r.get(col) == value), None)

    @property
    def best(self) -> dict[str, Any] | None:
        metric, higher = self.metric, RANKING[self.task][1]
        from ..forecast import BASELINES      # (lazy: the front page of parametric studies needs no sklearn)
        skip = (*BASELINES, *_REFERENCES.get(self.task, ())) if self.task != "parametric" else ()
        rows = [r for r in self._finite(metric) if r.get("model") not in skip]
        if not rows:
            return None
        return (max if higher else min)(rows, key=lambda r: r[metric])


def load_study(name: str, task: str, description: str, study_dir: str | Path) -> StudyPage:
    """The front-page view of the study whose results folder is ``study_dir``."""
    d = Path(study_dir)
    figs = d / "evaluation" / "figures"
    figures = [figs / f"{stem}.png" for stem in HEADLINE.get(task, ()) if (figs / f"{stem}.png").is_file()]
    uq = d / "uq" / "summary.csv"
    return StudyPage(name, task, " ".join(str(description or "").split()), read_table(d / "evaluation" / "summary.csv"),
                     figures, read_table(uq) if uq.is_file() else [])


def overview_rows(pages: Sequence[StudyPage]) -> list[dict[str, Any]]:
    """One row per study: its best model and the metric, the baseline and its metric, the best
    model's skill against it, and (parametric) speed-up, offline cost, break-even and coverage."""
    out = []
    for p in pages:
        metric, higher = p.metric, RANKING[p.task][1]
        best, base = p.best, p.baseline
        row: dict[str, Any] = {"study": p.name, "task": p.task, "metric": metric,
                               "best model": best[_NAME[p.task]] if best else "none",
                               "best": best[metric] if best else math.nan,
                               "baseline": base[_NAME[p.task]] if base else "none in this study",
                               "baseline value": base[metric] if base else math.nan}
        if best and base and isinstance(base.get(metric), float) and base[metric] > 0:
            # parametric: 1 - error / error_baseline; forecast: VPT / VPT_baseline
            row["skill vs baseline"] = (best[metric] / base[metric] if higher else 1.0 - best[metric] / base[metric])
        else:
            row["skill vs baseline"] = math.nan
        for col in ("speedup", "offline_seconds", "break_even_queries", "coverage_95"):
            row[col] = best.get(col, math.nan) if best else math.nan
        out.append(row)
    return out


def _img(path: Path, alt: str) -> str:
    # base64 in lines of 76: docutils refuses lines over 10,000 characters, and a URL parser
    # drops the newlines inside a data URL
    data = base64.encodebytes(path.read_bytes()).decode("ascii").strip()
    return (f'<figure class="sf-fig"><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(alt)}</figcaption></figure>")


def body_html(pages: Sequence[StudyPage]) -> str:
    """The front page's HTML body (no ``<html>``/``<head>``): overview table, then every study."""
    parts = [f'<div class="sf-overview"><style>{STYLE}</style>']
    parts.append('<h2 id="sf-overview-table">Studies at a glance</h2>')
    rows = overview_rows(pages)
    parts.append('<div class="sf-scroll">' + table_fragment(rows, list(rows[0]) if rows else [], all_columns=False)
                 + "</div>")
    parts.append("<p>best: the model with the lowest mean relative L2 test error (parametric) or the highest "
                 "median valid prediction time in Lyapunov times (forecast, model_error; the true model of a "
                 "model_error study is the reference, not a candidate); skill vs baseline: 1 − error/error "
                 "of the linear surrogate (parametric), VPT/VPT of persistence (forecast) or of the imperfect "
                 "model (model_error). Each study's full "
                 "table and all figures are in its category of this report.</p>")
    for p in pages:
        parts.append(f'<h2 id="sf-study-{html.escape(p.name)}">{html.escape(p.name)} ({p.task})</h2>')
        if p.description:
            parts.append(f"<p>{html.escape(p.description)}</p>")
        best, base = p.best, p.baseline
        metric = p.metric
        if best:
            line = f"Best: <b>{html.escape(str(best[_NAME[p.task]]))}</b>, {metric} {format_cell(best[metric])}"
            if base:
                line += f"; baseline {html.escape(str(base[_NAME[p.task]]))}: {format_cell(base[metric])}"
            exact = [str(r[_NAME[p.task]]) for r in p.rows if str(r.get("contains_true_equations")).lower() == "true"]
            if exact:
                line += (f". The class of {', '.join(html.escape(e) for e in exact)} holds the simulator's exact "
                         "equations: their VPT measures identification, not generic skill")
            if metric == "rel_l2_ensemble_mean":
                single = min(p._finite("rel_l2_mean"), key=lambda r: r["rel_l2_mean"], default=None)
                line += (f". Ranked against the ensemble means of {int(best.get('members', 0))} members per test "
                         f"point; the noise floor (members about their mean) is {format_cell(best.get('noise_floor'))}"
                         + (f"; against single members the lowest error is {html.escape(str(single['surrogate']))}'s "
                            f"{format_cell(single['rel_l2_mean'])}" if single else ""))
            parts.append(f"<p>{line}.</p>")
        parts.append('<div class="sf-scroll">' + table_fragment(p.rows, COLUMNS[p.task], title=f"{p.name}: summary",
                                                                all_columns=False) + "</div>")
        if p.uq_rows:
            parts.append('<div class="sf-scroll">' + table_fragment(
                p.uq_rows, UQ_COLUMNS, title=f"{p.name}: uncertainty propagation", all_columns=False) + "</div>")
        parts.append('<div class="sf-figs">' + "".join(_img(f, f"{p.name}: {f.stem}") for f in p.figures) + "</div>")
    parts.append("</div>")
    return "\n".join(parts)


#: the front page's style, scoped to it (the report has its own CSS, which resets tables)
STYLE = (".sf-overview{font-size:13px}.sf-overview h2{font-size:1.2em;font-weight:bold;margin:1em 0 .4em}"
         ".sf-overview p{margin:.4em 0}.sf-overview table{border-collapse:collapse;margin:.5em 0 1em}"
         ".sf-overview th,.sf-overview td{border:1px solid #ccc;padding:3px 6px;text-align:right}"
         ".sf-overview th{background:#f0f0f0}.sf-overview td:first-child,.sf-overview th:first-child"
         "{text-align:left}.sf-overview caption{text-align:left;font-weight:bold;margin-bottom:4px}"
         ".sf-overview .sf-scroll{overflow-x:auto;max-width:100%}"
         ".sf-overview .sf-figs{display:flex;flex-wrap:wrap;gap:8px}.sf-overview img{max-width:min(560px,100%)}"
         ".sf-overview figcaption{font-size:11px;color:#555}")


def glance_html(pages: Sequence[StudyPage]) -> str:
    """The report's landing page: one line per study, narrow enough for its column."""
    items = []
    for r, p in zip(overview_rows(pages), pages):
        metric = r["metric"]
        line = f'<b>{html.escape(p.name)}</b> ({p.task}): best <b>{html.escape(str(r["best model"]))}</b>, {metric} {format_cell(r["best"])}'
        if isinstance(r["skill vs baseline"], float) and math.isfinite(r["skill vs baseline"]):
            what = "skill" if p.task == "parametric" else "VPT ratio"
            line += (f'; baseline {html.escape(str(r["baseline"]))} {format_cell(r["baseline value"])} '
                     f'({what} {format_cell(r["skill vs baseline"])})')
        for col, name in (("speedup", "speed-up"), ("coverage_95", "coverage_95")):
            if isinstance(r[col], float) and math.isfinite(r[col]):
                line += f"; {name} {format_cell(r[col])}"
        items.append(f'<li id="sf-glance-{html.escape(p.name)}">{line}</li>')
    return ('<div class="sf-overview"><h2 id="sf-glance">Studies at a glance</h2><ul style="list-style:disc;'
            'padding-left:1.2em">' + "".join(items) + "</ul><p>Each study's description, summary table and "
            "headline figures: <b>overview</b> under Results; all its tables and figures: its own entry.</p></div>")


def write_front_page(pages: Sequence[StudyPage], html_path: str | Path, rst_path: str | Path,
                     title: str = "surroflow run", intro_rst: str = "") -> None:
    """``overview.html`` (the whole page, standalone) and ``front_page.rst`` (the report's
    description: ``intro_rst``, the static description, then :func:`glance_html`)."""
    body = body_html(pages)
    page = (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
            f"<body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n")
    with atomic_path(html_path) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    # Snakemake renders the description with Jinja2 first: the raw block keeps the HTML literal
    indented = "\n".join("   " + line for line in glance_html(pages).splitlines())
    rst = (f"{intro_rst.strip()}\n\n{{% raw %}}\n\n.. raw:: html\n\n{indented}\n\n{{% endraw %}}\n")
    with atomic_path(rst_path) as tmp:
        Path(tmp).write_text(rst, encoding="utf-8")


__all__ = ["COLUMNS", "HEADLINE", "RANKING", "StudyPage", "load_study", "overview_rows", "body_html",
           "glance_html", "write_front_page"]
