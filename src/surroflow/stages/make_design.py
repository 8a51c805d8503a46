"""Stage ``make_design``: the train and test designs of experiments of a study.

Outputs ``train`` and ``test``: ``design(sample, parameter)`` each, from the study's
``simulator.parameters`` ranges (or the simulator's declared ones) and its ``design`` section.
"""
from __future__ import annotations

from typing import Mapping

from ..design import resolve_parameters, train_test_designs
from ..io import write_dataset
from ..lineage import DESIGN, content_sha256
from ..simulators import get_simulator
from . import StageContext


def run(inputs: Mapping[str, str | list[str]], outputs: Mapping[str, str], ctx: StageContext) -> None:
    sim_cfg = ctx.section["simulator"]
    sim = get_simulator(sim_cfg["name"], **sim_cfg["settings"])
    params = resolve_parameters(sim.parameters(), sim_cfg["parameters"])
    designs = train_test_designs(params, ctx.section["design"])
    # one design hash for both splits: every later artifact carries it, so data, bases and models
    # made from different designs are refused when a stage reads them together
    design_sha = content_sha256(designs["train"]["design"].values, designs["test"]["design"].values,
                                extra=ctx.generation_sha256)
    for split in ("train", "test"):
        ds = designs[split]
        ds.attrs.update(ctx.provenance(inputs={}, output=outputs[split], simulator=sim_cfg["name"], split=split,
                                       **{DESIGN: design_sha}))
        write_dataset(ds, outputs[split])
