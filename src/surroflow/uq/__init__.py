"""Uncertainty quantification on a trained surrogate: propagation of input uncertainty and
global sensitivity (the ``propagate_uq`` stage, ``uq:`` section of a parametric study).

* :mod:`.distributions` -- input marginals (scipy.stats) and the Gaussian copula;
* :mod:`.qoi` -- quantities of interest, scalar reductions of predicted fields;
* :mod:`.statistics` -- streaming moments of fields, statistics with confidence intervals,
  agreement with the high-fidelity check;
* :mod:`.sensitivity` -- Sobol indices by SALib;
* :mod:`.propagate` -- the surrogate Monte Carlo, the high-fidelity check and the cost;
* :mod:`.files`, :mod:`.figures` -- what the stage reads and writes.

:func:`config_problems` holds the checks of a ``uq`` section that JSON Schema cannot express
(``surroflow.config`` runs them before any job).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from .distributions import InputModel, input_problems
from .qoi import QoI, qoi_problems
from .statistics import StreamingMoments, sample_statistics


def config_problems(study: str, sc: Mapping[str, Any], parameters: Sequence[str],
                    outputs: Mapping[str, Sequence[str]], time_dim: str | None) -> list[str]:
    """Problems of the (defaults-filled) ``uq`` section of study ``study``: the surrogate's name,
    the inputs against the model's ``parameters`` (the design's), the QoIs against the simulator's
    ``outputs`` (``{name: dims}``) and the Sobol base size; one line each naming its key."""
    uq = sc.get("uq")
    if uq is None:
        return []
    where = f"studies.{study}.uq"      # a parametric study's (the config check refuses others)
    out: list[str] = []
    if uq["surrogate"] not in sc["surrogates"]:
        out.append(f"{where}.surrogate: {uq['surrogate']!r} is not a surrogate of the study; defined: "
                   f"{sorted(sc['surrogates'])}")
    chosen = list(sc["reduction"]["variables"]) or list(outputs)
    predicted = {v: d for v, d in outputs.items() if v in chosen}
    out += input_problems(uq["inputs"], uq.get("correlation"), parameters, where)
    out += [p.replace(f"is not an output of the simulator; allowed: {sorted(predicted)}",
                      f"is not a variable the surrogate predicts; allowed: {sorted(predicted)}")
            for p in qoi_problems(uq["qoi"], predicted, time_dim, where)]
    sobol = uq.get("sobol")
    if sobol is not None:
        n = int(sobol["n_base"])
        if n & (n - 1):
            out.append(f"{where}.sobol.n_base: {n} is not a power of 2 (the Sobol' sequence's balance "
                       f"needs one); e.g. {1 << (n.bit_length() - 1)} or {1 << n.bit_length()}")
    return out


__all__ = ["InputModel", "QoI", "StreamingMoments", "config_problems", "input_problems", "qoi_problems",
           "sample_statistics"]
