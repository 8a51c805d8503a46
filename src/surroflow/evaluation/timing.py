"""Measured timings and cost accounting.

Timed regions hold only the call being measured: every call is made once untimed first (lazy
imports of heavy libraries, caches and JIT warm-ups fall there), then the median of repeated
wall-clock measurements is reported.
"""
from __future__ import annotations

import math
import time
from typing import Callable, Sequence

import numpy as np


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` untimed calls."""
    for _ in range(max(0, warmup)):
        fn()
    times = []
    for _ in range(max(1, int(repeats))):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def query_seconds(query: Callable[[int], object], samples: Sequence[int], repeats: int) -> float:
    """Median over ``samples`` of the median time of ``query(sample)`` (one-sample queries)."""
    if len(samples) == 0:
        return math.nan
    return float(np.median([median_seconds(lambda s=s: query(s), repeats) for s in samples]))


def break_even_queries(offline_seconds: float, hf_seconds: float, query_seconds: float) -> float:
    """Queries after which the surrogate has paid for its offline cost: ``ceil(offline / saving)``
    with ``saving = hf - query``; ``inf`` when it never pays off, NaN when a cost is unknown."""
    saving = hf_seconds - query_seconds
    if not (math.isfinite(offline_seconds) and math.isfinite(saving)):
        return math.nan
    if saving <= 0:
        return math.inf
    return float(math.ceil(offline_seconds / saving))


def speedup(hf_seconds: float, query_seconds: float) -> float:
    """``hf / query``; NaN when either time is unknown."""
    if not (math.isfinite(hf_seconds) and math.isfinite(query_seconds)) or query_seconds <= 0:
        return math.nan
    return hf_seconds / query_seconds


__all__ = ["median_seconds", "query_seconds", "break_even_queries", "speedup"]
