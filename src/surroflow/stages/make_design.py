"""Stage ``make_design``: the train, test and calibration designs of experiments of a study.

Outputs ``train``, ``test`` and ``calibration``: ``design(sample, parameter)`` each, from the
study's ``simulator.parameters`` ranges (or the simulator's declared ones) and its ``design``
section (:func:`surroflow.design.train_test_designs`; the calibration design is empty when
``design.n_calibration`` is 0, and then nothing runs it; called outside the workflow, its
output may then be left out).
"""
from __future__ import annotations

from typing import Mapping

from .. import SurroflowError
from ..design import resolve_parameters, train_test_designs
from ..io import write_dataset
from ..lineage import DESIGN, content_sha256
from ..simulators import get_simulator
from ..snapshots import SPLITS
from . import StageContext


def run(inputs: Mapping[str, str | list[str]], outputs: Mapping[str, str], ctx: StageContext) -> None:
    sim_cfg = ctx.section["simulator"]
    sim = get_simulator(sim_cfg["name"], **sim_cfg["settings"])
    params = resolve_parameters(sim.parameters(), sim_cfg["parameters"])
    designs = train_test_designs(params, ctx.section["design"])
    # one design hash for all splits: every later artifact carries it, so data, bases and models
    # made from different designs are refused when a stage reads them together
    design_sha = content_sha256(*(designs[s]["design"].values for s in SPLITS), extra=ctx.generation_sha256)
    for split in SPLITS:
        ds = designs[split]
        if split not in outputs:
            if ds.sizes["sample"] == 0:     # no calibration design asked for: its file is optional
                continue
            raise SurroflowError(f"make_design: design.n_{split} is {ds.sizes['sample']}, but the stage was given "
                                 f"no '{split}' output to write it to")
        ds.attrs.update(ctx.provenance(inputs={}, output=outputs[split], simulator=sim_cfg["name"], split=split,
                                       **{DESIGN: design_sha}))
        write_dataset(ds, outputs[split])
