"""Stage ``evaluate_online``: a random-feature model that keeps learning along each test
trajectory against the same model fitted once, on a system whose parameter drifts
(:mod:`surroflow.evaluation.online`).

Inputs: ``train`` (the models' fit, up to ``forecast.online.train_until``), ``test`` (the
trajectories the online model reads as they unfold and both are scored on).  Outputs:
``curve`` (VPT over start time, CSV), ``summary`` (+ ``summary_html``: VPT per model and
phase of the drift) and ``figures`` (``vpt_over_time``).  Settings: ``ctx.section["forecast"]``
(its ``online`` section, the model it names, VPT threshold and horizon).
"""
from __future__ import annotations

from typing import Any, Mapping

from . import StageContext


def run(inputs: Mapping[str, Any], outputs: Mapping[str, str], ctx: StageContext) -> None:
    from ..evaluation.data import load_split
    from ..evaluation.forecast import check_reference
    from ..evaluation.online import evaluate_online, write_online_result
    from ..simulators import get_simulator
    from ..snapshots import lyapunov_time
    ctx.check_inputs(inputs)
    fc = ctx.section["forecast"]
    online = fc["online"]
    train = load_split(str(inputs["train"]), required=("status",), what="trajectories")
    test = load_split(str(inputs["test"]), required=("status",), what="trajectories")
    sim_cfg = ctx.section["simulator"]
    sim = get_simulator(sim_cfg["name"], **sim_cfg["settings"])
    check_reference(sim, lyapunov_time(test.ok, test.path), fc, test.path)
    drift = getattr(sim, "rho_at", None) if getattr(sim, "drifting", False) else None
    res = evaluate_online(train, test, fc, online, fc["models"][online["model"]], parameter_at=drift)
    write_online_result(res, outputs["curve"], outputs["summary"], outputs.get("summary_html"), outputs["figures"],
                        parameter_name="rho" if drift is not None else "parameter", study=ctx.study)


__all__ = ["run"]
