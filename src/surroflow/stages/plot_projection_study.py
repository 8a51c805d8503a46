"""Stage ``plot_projection_study``: test projection error against basis dimension, global
versus local bases (fitted on the training split only), for the numbers of clusters in
``reduction.clustering.candidates``."""
from __future__ import annotations

from typing import Any, Mapping

from .. import SurroflowError
from ..reduction.files import projection_study_file
from . import StageContext


def run(inputs: Mapping[str, Any], outputs: Mapping[str, str], ctx: StageContext) -> None:
    ctx.check_inputs(inputs)
    red = ctx.section["reduction"]
    variable = ctx.wildcards["variable"]
    if not red["clustering"]:
        raise SurroflowError(f"studies.{ctx.study}.reduction.clustering is null: the projection study of "
                             f"{variable!r} compares local bases with the global one and needs it")
    projection_study_file(inputs["train"], inputs["test"], variable, outputs["figure"], outputs["curves"],
                          red["clustering"], weights=red["weights"], attrs=ctx.provenance(inputs, outputs["curves"]))
