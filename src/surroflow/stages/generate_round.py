"""Stage ``generate_round``: the high-fidelity runs of one adaptive round (rounds >= 1).

Input ``design``: the ``selected.nc`` the previous round's ``adapt_round`` wrote; output
``data``: ``results/<study>/rounds/<r>/generate.nc``.  The samples run exactly like a batch of
the one-shot design (:func:`surroflow.stages.generate_batch.run_design`: one vectorised call, or
one dask task per sample on the run's cluster), failed samples flagged, the file written
atomically, so a killed round reruns only its own runs.
"""
from __future__ import annotations

import logging
from typing import Mapping

from .. import SurroflowError
from ..io import open_dataset, write_dataset
from . import StageContext
from .generate_batch import run_design

log = logging.getLogger("surroflow.generate_round")


def run(inputs: Mapping[str, str | list[str]], outputs: Mapping[str, str], ctx: StageContext) -> None:
    ctx.check_inputs(inputs)
    design = open_dataset(inputs["design"], stage="adapt_round", required=("design",))
    r = int(ctx.wildcards["round"])
    if int(design.attrs.get("round", -1)) != r:
        raise SurroflowError(f"{inputs['design']}: holds the design of round {design.attrs.get('round')}, not {r}")
    if design.sizes["sample"] == 0:
        raise SurroflowError(f"{inputs['design']}: round {r - 1} stopped ({design.attrs.get('stop')}); "
                             f"there is no round {r} to run")
    label = f"{ctx.study} round {r}"
    log.info("%s: %d samples (%s)", label, design.sizes["sample"], ctx.section["simulator"]["name"])
    ds = run_design(design, ctx, label)
    ds.attrs.update(ctx.provenance(inputs, outputs["data"], split="train", round=r))
    write_dataset(ds, outputs["data"])
