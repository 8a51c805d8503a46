"""Stage ``fit_local_pod``: local bases of one variable (k-means clusters of the training
snapshots, one POD each, an online selector) and the a-priori criterion for the number of
clusters, whose table and figure are written also when ``n_clusters`` is fixed."""
from __future__ import annotations

from typing import Any, Mapping

from ..reduction.files import fit_local_pod_file
from . import StageContext


def run(inputs: Mapping[str, Any], outputs: Mapping[str, str], ctx: StageContext) -> None:
    ctx.check_inputs(inputs)
    red = ctx.section["reduction"]
    fit_local_pod_file(inputs["train"], ctx.wildcards["variable"], outputs["basis"], red["clustering"],
                       method=red["method"], rank=red["rank"], energy=red["energy"], weights=red["weights"],
                       criterion_nc=outputs["criterion"], criterion_figure=outputs["figure"],
                       attrs=ctx.provenance(inputs, outputs["basis"], basis="local"))
