"""Stage ``collect_batches``: the batches of one split concatenated into the generate dataset.

Input ``batches`` (``generate_batch`` artifacts, in batch order), output ``data``
(``results/<study>/generate/<split>.nc``).  Fails loudly when more samples failed, diverged
or timed out than ``simulator.max_failure_fraction`` allows; flagged samples stay in the file
(with their status and reason) and are excluded downstream by :mod:`surroflow.snapshots`.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

import numpy as np
import xarray as xr

from .. import SurroflowError
from ..io import STATUS_FLAGS, STATUS_OK, open_dataset, status_name, write_dataset
from . import StageContext
from .generate_batch import remove_stale_temporaries

log = logging.getLogger("surroflow.collect_batches")


def run(inputs: Mapping[str, str | list[str]], outputs: Mapping[str, str], ctx: StageContext) -> None:
    batches = [inputs["batches"]] if isinstance(inputs["batches"], str) else list(inputs["batches"])
    out = outputs["data"]
    # every batch writer has finished: temporaries a killed writer left beside a batch that was
    # complete before the kill (so not rerun) are removed here
    for p in batches:
        for tmp in remove_stale_temporaries(Path(p)):
            log.info("removed %s left by a killed writer", tmp)
    parts = [open_dataset(p, stage="generate_batch", required=("status",)) for p in batches]
    ds = xr.concat(parts, dim="sample", data_vars="minimal", coords="minimal",
                   compat="override", join="override", combine_attrs="override")
    for v in list(ds.data_vars):
        if "sample" not in ds[v].dims:
            ds[v] = parts[0][v]
    n = ds.sizes["sample"]
    status = ds["status"].values
    bad = np.flatnonzero(status != STATUS_OK)
    counts = {k: int((status == c).sum()) for k, c in STATUS_FLAGS.items()}
    log.info("%s: %d samples, status counts %s", out, n, counts)
    for i in bad:
        log.warning("sample %d excluded downstream (%s): %s", int(ds["sample"][i]),
                    status_name(int(status[i])), str(ds["status_reason"][i].values))
    limit = ctx.section["simulator"]["max_failure_fraction"]
    if len(bad) / n > limit:
        raise SurroflowError(
            f"{out}: {len(bad)} of {n} samples failed or diverged ({len(bad) / n:.0%}), above "
            f"simulator.max_failure_fraction={limit}; see the batch logs")
    for key in ("batch", "batch_size"):
        ds.attrs.pop(key, None)
    ds.attrs.update(ctx.provenance(n_flagged=len(bad), split=ctx.wildcards["split"]))
    write_dataset(ds, out)
