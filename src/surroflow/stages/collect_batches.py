"""Stage ``collect_batches``: the batches of one split concatenated into the generate dataset.

Inputs ``design`` (the split's ``make_design`` artifact) and ``batches`` (``generate_batch``
artifacts, in batch order); output ``data`` (``results/<study>/generate/<split>.nc``).

Before merging, the batches must belong together: each made from this design file with this
study's settings (:meth:`StageContext.check_inputs`), together holding every sample id of the
design exactly once and in order, with the design's parameter rows, and identical coordinates
(time axis, grid, mesh).  A batch copied over another, or computed with other settings, is
refused with a sentence naming it.  Fails loudly when more samples failed, diverged or timed
out than ``simulator.max_failure_fraction`` allows; flagged samples stay in the file (with
their status and reason) and are excluded downstream by :mod:`surroflow.snapshots`.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import xarray as xr

from .. import SurroflowError
from ..io import STATUS_FLAGS, STATUS_OK, open_dataset, remove_stale_temporaries, status_name, write_dataset
from . import StageContext

log = logging.getLogger("surroflow.collect_batches")


def check_batches(design: xr.Dataset, design_path: str, parts: Sequence[xr.Dataset],
                  paths: Sequence[str]) -> None:
    """Refuse batches that are not exactly the design's samples, rows and coordinates."""
    want = design["sample"].values
    seen: dict[int, str] = {}
    for ds, p in zip(parts, paths):
        for s in ds["sample"].values.tolist():
            if s in seen:
                raise SurroflowError(f"{p}: sample {s} is also in {seen[s]} (a batch copied over "
                                     "another?); delete both and rerun")
            seen[int(s)] = p
    got = np.array(list(seen), dtype=want.dtype)
    missing = sorted(set(want.tolist()) - set(got.tolist()))
    extra = sorted(set(got.tolist()) - set(want.tolist()))
    if missing or extra:
        raise SurroflowError(f"{design_path}: the batches {'lack samples ' + str(missing[:10]) if missing else ''}"
                             f"{' and ' if missing and extra else ''}"
                             f"{'hold samples not in the design ' + str(extra[:10]) if extra else ''}; "
                             f"rerun the batches of this split")
    if not np.array_equal(got, want):
        raise SurroflowError(f"{design_path}: the batches hold the design's samples out of order; rerun them")
    for ds, p in zip(parts, paths):
        rows = design["design"].sel(sample=ds["sample"].values)
        if ds["design"].shape != rows.shape or not np.array_equal(ds["design"].values, rows.values):
            raise SurroflowError(f"{p}: its design rows differ from {design_path} (made from another design?); "
                                 "rerun this batch")
    first, p0 = parts[0], paths[0]
    for ds, p in zip(parts[1:], paths[1:]):
        for name, c in first.coords.items():
            if "sample" in c.dims:
                continue
            if name not in ds.coords or ds[name].shape != c.shape or not np.array_equal(ds[name].values, c.values):
                raise SurroflowError(f"{p}: coordinate {name!r} differs from {p0} (batches computed with "
                                     "different settings); rerun the batches of this split")
        for name, v in first.data_vars.items():
            if "sample" in v.dims:
                continue
            if name not in ds or ds[name].shape != v.shape or not np.array_equal(ds[name].values, v.values):
                raise SurroflowError(f"{p}: {name!r} differs from {p0} (batches computed with different "
                                     "settings); rerun the batches of this split")


def run(inputs: Mapping[str, str | list[str]], outputs: Mapping[str, str], ctx: StageContext) -> None:
    batches = [inputs["batches"]] if isinstance(inputs["batches"], str) else list(inputs["batches"])
    out = outputs["data"]
    # every batch writer has finished: temporaries a killed writer left beside a batch that was
    # complete before the kill (so not rerun) are removed here
    for p in batches:
        for tmp in remove_stale_temporaries(Path(p)):
            log.info("removed %s left by a killed writer", tmp)
    ctx.check_inputs(inputs)
    design = open_dataset(inputs["design"], stage="make_design", required=("design",))
    parts = [open_dataset(p, stage="generate_batch", required=("status", "design")) for p in batches]
    check_batches(design, str(inputs["design"]), parts, batches)
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
    for key in ("batch", "batch_size", "artifact_id", "lineage"):
        ds.attrs.pop(key, None)
    ds.attrs.update(ctx.provenance(inputs, out, n_flagged=len(bad), split=ctx.wildcards["split"]))
    write_dataset(ds, out)
