"""Stage ``make_design``: the train and test designs of experiments of a study.

Outputs ``train`` and ``test``: ``design(sample, parameter)`` each, from the study's
``simulator.parameters`` ranges (or the simulator's declared ones) and its ``design`` section.
"""
from __future__ import annotations

from typing import Mapping

from ..design import resolve_parameters, train_test_designs
from ..io import write_dataset
from ..simulators import get_simulator
from . import StageContext


def run(inputs: Mapping[str, str | list[str]], outputs: Mapping[str, str], ctx: StageContext) -> None:
    sim_cfg = ctx.section["simulator"]
    sim = get_simulator(sim_cfg["name"], **sim_cfg["settings"])
    params = resolve_parameters(sim.parameters(), sim_cfg["parameters"])
    designs = train_test_designs(params, ctx.section["design"])
    for split in ("train", "test"):
        ds = designs[split]
        ds.attrs.update(ctx.provenance(simulator=sim_cfg["name"], split=split))
        write_dataset(ds, outputs[split])
