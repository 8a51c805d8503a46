"""Global sensitivity: first-order and total Sobol indices with confidence intervals, by SALib.

The Saltelli/Sobol' design (:func:`SALib.sample.sobol.sample`, ``N (D + 2)`` rows, second
order off) is drawn on the unit cube and mapped through each input's inverse CDF
(:meth:`~surroflow.uq.distributions.InputModel.from_uniform`), so every marginal of
``uq.inputs`` is honoured; :func:`SALib.analyze.sobol.analyze` estimates the indices (first
order after Saltelli 2010, total after Jansen) and their bootstrap confidence half-widths.
Sobol indices assume independent inputs: with a ``correlation`` they are computed on the
independent marginals (the copula dropped), and the output says so.  Fixed inputs are left out
(their indices are 0).
"""
from __future__ import annotations

import logging
import warnings
from typing import Callable, Sequence

import numpy as np
import xarray as xr

from .. import SurroflowError
from .distributions import InputModel

logger = logging.getLogger(__name__)

INDEPENDENCE_NOTE = ("Sobol indices assume independent inputs: they were computed on the independent marginals "
                     "(the correlation of uq.correlation dropped)")


def sobol_design(inputs: InputModel, n_base: int, seed: int) -> np.ndarray:
    """The ``(n_base (D + 2), n_parameters)`` inputs of the Sobol' estimators."""
    from SALib.sample import sobol as sobol_sample
    d = len(inputs.random)
    if d == 0:
        raise SurroflowError("Sobol indices need at least one input that is not fixed")
    problem = {"num_vars": d, "names": inputs.random, "bounds": [[0.0, 1.0]] * d}
    U = sobol_sample.sample(problem, int(n_base), calc_second_order=False, seed=int(seed))
    return inputs.from_uniform(U)


def sobol_indices(evaluate: Callable[[np.ndarray], np.ndarray], inputs: InputModel, qoi_names: Sequence[str],
                  n_base: int, confidence: float = 0.95, seed: int = 0) -> xr.Dataset:
    """Sobol indices of every QoI: ``evaluate(X)`` returns ``(n, n_qoi)`` for input rows ``X``.

    Returns ``sobol_first``, ``sobol_first_conf``, ``sobol_total``, ``sobol_total_conf``
    ``(qoi, input)`` (the random inputs only; ``*_conf`` is the half-width of the
    ``confidence`` interval) and the attributes ``sobol_n_base``, ``sobol_n_evaluations``,
    ``sobol_note``.
    """
    from SALib.analyze import sobol as sobol_analyze
    X = sobol_design(inputs, n_base, seed)
    Y = np.asarray(evaluate(X), dtype=float).reshape(X.shape[0], len(qoi_names))
    d = len(inputs.random)
    problem = {"num_vars": d, "names": inputs.random, "bounds": [[0.0, 1.0]] * d}
    out = {k: np.full((len(qoi_names), d), np.nan) for k in ("S1", "S1_conf", "ST", "ST_conf")}
    for k, name in enumerate(qoi_names):
        y = Y[:, k]
        if not np.all(np.isfinite(y)):
            logger.warning("QoI %s: %d non-finite surrogate values: Sobol indices NaN", name, int((~np.isfinite(y)).sum()))
            continue
        if np.ptp(y) == 0:
            logger.warning("QoI %s is constant over the inputs: Sobol indices NaN", name)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = sobol_analyze.analyze(problem, y, calc_second_order=False, conf_level=confidence, seed=int(seed))
        for key in out:
            out[key][k] = np.asarray(res[key], dtype=float)
    dims = ("qoi", "input")
    note = "computed on the surrogate"
    if inputs.correlated:
        note += "; " + INDEPENDENCE_NOTE
    half = f"half-width of the {100 * confidence:g}% bootstrap confidence interval"
    return xr.Dataset(
        {"sobol_first": (dims, out["S1"], {"long_name": "first-order Sobol index", "units": "1"}),
         "sobol_first_conf": (dims, out["S1_conf"], {"long_name": f"first-order Sobol index: {half}", "units": "1"}),
         "sobol_total": (dims, out["ST"], {"long_name": "total Sobol index", "units": "1"}),
         "sobol_total_conf": (dims, out["ST_conf"], {"long_name": f"total Sobol index: {half}", "units": "1"})},
        coords={"qoi": list(qoi_names), "input": list(inputs.random)},
        attrs={"sobol_n_base": int(n_base), "sobol_n_evaluations": int(X.shape[0]), "sobol_note": note,
               "sobol_independent_inputs": int(not inputs.correlated)})


__all__ = ["INDEPENDENCE_NOTE", "sobol_design", "sobol_indices"]
