"""Loading what an evaluation reads: generate data (split, ok samples, flagged counts) and the
costs measured upstream (high-fidelity wall times).

Both evaluations (parametric and forecast) open their generate data through :func:`load_split`;
sample status is the business of :mod:`surroflow.snapshots`.  A cost that was not measured
(imported ``files`` data carry ``wall_time`` NaN) is NaN here, never 0.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import xarray as xr

from ..io import open_dataset
from ..snapshots import n_flagged, ok_mask, require_ok_samples

#: the stages that write generate data (simulated batches collected, or imported files)
GENERATE_STAGES = ("collect_batches", "import_files")

logger = logging.getLogger(__name__)


@dataclass
class SplitData:
    """One split of a study's generate data."""

    path: str
    #: every sample (flagged ones included)
    all: xr.Dataset
    #: the samples with status ok (the only ones evaluated)
    ok: xr.Dataset
    #: how many samples are flagged (failed, diverged, timeout): excluded and counted
    n_flagged: int

    @property
    def n_ok(self) -> int:
        return int(self.ok.sizes["sample"])


def load_split(path: str | os.PathLike[str], required: Sequence[str] = ("design", "status"),
               what: str = "samples") -> SplitData:
    """The generate data at ``path``, its ok samples and the flagged count (a clear error,
    :func:`surroflow.snapshots.require_ok_samples`, when no sample is ok)."""
    ds = open_dataset(path, stage=GENERATE_STAGES, required=tuple(required))
    ok = require_ok_samples(ds, str(path), what, "nothing to evaluate")
    n_bad = n_flagged(ds)
    if n_bad:
        logger.warning("%s: %d of %d %s excluded (status not ok)", path, n_bad, ds.sizes["sample"], what)
    return SplitData(str(path), ds, ok, n_bad)


def _ok_wall_times(data: SplitData) -> np.ndarray:
    if "wall_time" not in data.all.variables:
        return np.full(data.n_ok, np.nan)
    return np.asarray(data.all["wall_time"].values, dtype=float)[ok_mask(data.all)]


def generation_seconds(data: SplitData) -> float:
    """Solver seconds spent on the split: the sum of the wall times of all samples (flagged ones
    cost time too), NaN when an ok sample has no measured time (imported data)."""
    if not np.all(np.isfinite(_ok_wall_times(data))):
        return math.nan
    return float(np.nansum(np.asarray(data.all["wall_time"].values, dtype=float)))


def median_sample_seconds(data: SplitData) -> float:
    """Median solver seconds per ok sample (the high-fidelity cost of one query), NaN when not
    measured."""
    t = _ok_wall_times(data)
    if t.size == 0 or not np.all(np.isfinite(t)):
        return math.nan
    return float(np.median(t))


__all__ = ["GENERATE_STAGES", "SplitData", "load_split", "generation_seconds", "median_sample_seconds"]
