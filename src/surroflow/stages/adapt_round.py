"""Stage ``adapt_round`` (a Snakemake checkpoint): fit, estimate, decide and select for one
adaptive round (:mod:`surroflow.adaptive.rounds`).

Inputs ``train`` (the one-shot train data: round 0 is its first ``design.adaptive.initial``
samples) and ``rounds`` (``generate_round`` data of rounds 1..r); outputs ``model``,
``indicator`` and ``selected`` (:mod:`surroflow.adaptive.files`).  The test design is not an
input.  The workflow reads ``indicator``'s ``stop`` attribute to decide whether round r + 1 exists.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..adaptive.files import adapt
from ..io import write_dataset
from . import StageContext


def run(inputs: Mapping[str, Any], outputs: Mapping[str, str], ctx: StageContext) -> None:
    ctx.check_inputs(inputs)
    rounds = inputs.get("rounds") or []
    rounds = [rounds] if isinstance(rounds, str) else list(rounds)
    r = int(ctx.wildcards["round"])
    model, indicator, selected = adapt(inputs["train"], rounds, ctx.section, r)
    for name, ds in (("model", model), ("indicator", indicator), ("selected", selected)):
        extra = {**ds.attrs, **({"split": "train"} if name != "indicator" else {})}
        ds.attrs.update(ctx.provenance(inputs, outputs[name], **extra))
        write_dataset(ds, outputs[name])
