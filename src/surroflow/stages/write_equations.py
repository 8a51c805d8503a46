"""Stage ``write_equations``: the equations an equation-identifying forecaster (``sindy``) found,
beside the simulator's own (:mod:`surroflow.evaluation.equations`).

Inputs: ``model`` (the ``train_forecaster`` file of one such model) and ``train`` (its training
data: the state components' names).  Outputs: ``txt`` (``forecast/equations_<model>.txt``),
``csv`` and ``html`` (the term-by-term table).  The truth is compared only where it applies:
a full-state model of an exactly and fully observed system whose simulator states its
equations, fitted in the data's own units (``scaling: none``); otherwise the file says why not.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

import numpy as np

from .. import SurroflowError
from .. import snapshots as snap
from ..evaluation.equations import write_equations
from ..forecast import Reduced
from ..io import open_dataset
from ..surrogates.state import from_dataset
from . import StageContext
from .train_surrogate import open_generate

logger = logging.getLogger(__name__)


def run(inputs: Mapping[str, Any], outputs: Mapping[str, str], ctx: StageContext) -> None:
    name = ctx.wildcards["model"]
    ctx.check_inputs(inputs)
    mds = open_dataset(inputs["model"], stage="train_forecaster")
    model = from_dataset(mds)
    inner = model.inner_ if isinstance(model, Reduced) else model
    if not hasattr(inner, "equation_terms"):
        raise SurroflowError(f"{inputs['model']}: model {name!r} ({mds.attrs.get('model_kind')}) identifies no "
                             "equations; write_equations takes sindy models")
    ds = open_generate(inputs["train"])
    var = snap.forecast_variable(ds, ctx.section["forecast"]["variable"])
    space = [d for d in ds[var].dims if d not in ("sample", "time")]
    components = [str(c) for c in np.asarray(ds[space[0]].values)] if len(space) == 1 and space[0] in ds.coords \
        else [f"x{i}" for i in range(inner.n_state_)]
    sim_cfg = ctx.section["simulator"]
    true, why = None, ""
    if isinstance(model, Reduced):
        variables = [f"a{i + 1}" for i in range(inner.n_state_)]
        why = f"the model steps {inner.n_state_} POD coefficients (a1..a{inner.n_state_}), not the state"
    else:
        variables = components if len(components) == inner.n_state_ else [f"x{i}" for i in range(inner.n_state_)]
        true, why = _truth(sim_cfg, inner, len(components))
    params = inner.get_params()
    header = [f"Equations identified by model '{name}' (kind {mds.attrs.get('model_kind')}) of study '{ctx.study}'",
              f"simulator {sim_cfg['name']}, settings {dict(sim_cfg['settings'])}",
              f"fitted on {mds.attrs.get('n_train_trajectories')} trajectories x {mds.attrs.get('n_train_steps')} "
              f"states every {float(mds.attrs['dt_sample']):g} time units in {float(mds.attrs['fit_seconds']):.3g} s",
              "hyperparameters: " + ", ".join(f"{k}={v}" for k, v in sorted(params.items()))]
    score = write_equations(inner.equation_terms(variables), true, outputs["txt"], outputs["csv"], outputs["html"],
                            header, why)
    logger.info("%s: %s", name, ", ".join(f"{k}={v}" for k, v in score.items()) or f"no truth ({why})")


def _truth(sim_cfg: Mapping[str, Any], model: Any, n_data: int) -> tuple[dict | None, str]:
    """The simulator's stated equations when they apply to this model, else ``(None, why)``."""
    from ..simulators import get_simulator
    if sim_cfg["name"] == "files":
        return None, "the data were imported from files (no simulator states their equations)"
    sim = get_simulator(sim_cfg["name"], **sim_cfg["settings"])
    true = sim.equation_terms() if hasattr(sim, "equation_terms") else None
    if true is None:
        return None, f"simulator {sim_cfg['name']!r} does not state its equations term by term"
    if n_data != len(true) or model.n_state_ != len(true):
        return None, f"the data hold {n_data} of the system's {len(true)} state components (partial observation)"
    if getattr(model, "scaling", "none") != "none":
        return None, f"the model was fitted on standardised variables (scaling: {model.scaling})"
    return true, ""


__all__ = ["run"]
