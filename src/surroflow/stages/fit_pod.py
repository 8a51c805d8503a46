"""Stage ``fit_pod``: the global POD basis of one output variable from the training snapshots.

Reads only the training split (the test projection error is the evaluation's business).  The
backend is ``reduction.method``; the fit goes out of core (streaming) when
``reduction.memory_budget_mb`` is set and the in-memory factorisation would exceed it, or when
it would exceed the job's ``mem_mb`` (:func:`surroflow.reduction.files.choose_fit_mode`); the
basis records ``fit_mode``.  In-memory ``tsqr``/``randomized`` fits compute on the configured
dask cluster (the top-level ``dask`` section), sized to the job's threads and memory.
"""
from __future__ import annotations

import functools
from typing import Any, Mapping

from ..reduction.files import fit_pod_file, make_pod
from . import StageContext


def run(inputs: Mapping[str, Any], outputs: Mapping[str, str], ctx: StageContext) -> None:
    ctx.check_inputs(inputs)
    red = ctx.section["reduction"]
    client = None
    if ctx.dask is not None:
        from ..distributed import dask_client
        client = functools.partial(dask_client, ctx.dask, n_workers=ctx.threads, memory_mb=ctx.mem_mb)
    fit_pod_file(inputs["train"], outputs["basis"], ctx.wildcards["variable"], make_pod(red),
                 weights=red["weights"], memory_budget_mb=red["memory_budget_mb"], mem_mb=ctx.mem_mb,
                 n_workers=ctx.threads, client=client, attrs=ctx.provenance(inputs, outputs["basis"]))
