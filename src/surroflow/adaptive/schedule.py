"""The schedule of adaptive rounds: which runs a round has and how many it may add, from the
settings alone (no model code: the config reads it to give each round its own settings).

Every selected point is run and counted, flagged or not (a failed run costs what a good one
does), so the runs before round ``r`` are ``initial`` plus each earlier round's selection.
"""
from __future__ import annotations

from typing import Any, Mapping

from .. import SurroflowError


def round_view(adaptive: Mapping[str, Any], round_index: int) -> dict[str, Any]:
    """What round ``round_index`` depends on: the settings of ``design.adaptive`` without
    ``budget`` and ``max_rounds``, plus ``round``, ``n_hf`` (the runs before it: ``initial`` and
    every earlier round's selection), ``k`` (the most points it selects:
    ``min(per_round, budget - n_hf)``) and ``last`` (``round >= max_rounds``)."""
    r = int(round_index)
    if r < 0:
        raise SurroflowError(f"round {r}: rounds count from 0")
    budget, per_round = int(adaptive["budget"]), int(adaptive["per_round"])
    n_hf = int(adaptive["initial"])
    for _ in range(r):
        n_hf += max(0, min(per_round, budget - n_hf))
    view = {k: v for k, v in adaptive.items() if k not in ("budget", "max_rounds")}
    view.update({"round": r, "n_hf": n_hf, "k": max(0, min(per_round, budget - n_hf)),
                 "last": r >= int(adaptive["max_rounds"])})
    return view


__all__ = ["round_view"]
