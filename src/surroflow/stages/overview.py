"""Stage ``overview``: the report's front page (:mod:`surroflow.evaluation.overview`).

Inputs: ``summaries`` (every study's ``evaluation/summary.csv``, in the order of
``section["studies"]``; the figures and the ``uq`` summary beside them are read too) and
``intro`` (the report's static description, ``workflow/report/workflow.rst``).  Outputs:
``html`` (``overview/overview.html``) and ``rst`` (``overview/front_page.rst``, which the
Snakefile makes the description of ``snakemake --report``).  The section is
``{"studies": {name: {"task", "description"}}}`` of the studies that ran.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from .. import SurroflowError
from ..evaluation.overview import load_study, write_front_page
from . import StageContext


def run(inputs: Mapping[str, Any], outputs: Mapping[str, str], ctx: StageContext) -> None:
    studies = ctx.section["studies"]
    summaries = [inputs["summaries"]] if isinstance(inputs["summaries"], str) else list(inputs["summaries"])
    if len(summaries) != len(studies):
        raise SurroflowError(f"overview: {len(summaries)} summary files for {len(studies)} studies")
    pages = []
    for (name, s), path in zip(studies.items(), summaries):
        folder = Path(path).parents[1]
        if folder.name != name:
            raise SurroflowError(f"overview: {path} is not the summary of study {name!r}")
        pages.append(load_study(name, s["task"], s.get("description") or "", folder))
    intro = Path(inputs["intro"]).read_text(encoding="utf-8") if inputs.get("intro") else ""
    write_front_page(pages, outputs["html"], outputs["rst"], intro_rst=intro)
