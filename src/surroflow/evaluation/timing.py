"""Measured timings and cost accounting.

Timed regions hold only the call being measured: every call is made once untimed first (lazy
imports of heavy libraries, caches and JIT warm-ups fall there).  A surrogate query (often
0.1 ms) is timed like :mod:`timeit` does: each measurement is a loop of enough calls to last
``min_seconds`` (10 ms), and the fastest of ``repeats`` measurements is its time, since the
slower ones measure what else the machine was doing (:func:`best_seconds`); a median of single
calls moved by 2x between two runs on the same machine.

Speed-ups compare times measured side by side (:func:`interleaved_seconds`): high-fidelity
samples and surrogate queries alternate in one process, so both see the same load and a
speed-up does not depend on what else ran when the data were generated.  They run with the
BLAS/OpenMP pools held to the job's threads (:func:`job_threads`): a job that claims one core
and lets a batched matrix product spawn a thread per core times thread contention, not the
surrogate (measured: a 16-point batched query 50x slower on 2 loaded cores).
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from typing import Callable, Hashable, Iterator, Mapping, Sequence, TypeVar

import numpy as np

K = TypeVar("K", bound=Hashable)


@contextmanager
def job_threads(threads: int = 1) -> Iterator[None]:
    """Hold the BLAS and OpenMP thread pools of this process to ``threads`` inside the block
    (the high-fidelity solvers run the same way in their generate jobs)."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=max(1, int(threads))):
        yield


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


def best_seconds(fn: Callable[[], object], repeats: int, min_seconds: float = 0.01,
                 max_seconds: float = 1.0) -> float:
    """Seconds per call of ``fn()``, as :mod:`timeit` measures it: one timed call sizes a loop
    of ``number`` calls lasting about ``min_seconds``; the fastest of ``repeats`` loops, divided
    by ``number``.  A call longer than ``max_seconds / repeats`` gets fewer loops, and one of
    ``max_seconds`` or longer only the sizing call: a slow batched query is timed in seconds, not
    minutes, and its run-to-run noise is small against its length.  Call it after a warm-up call."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    number = int(min(10_000, max(1, math.ceil(min_seconds / max(first, 1e-7)))))
    best = first if number == 1 else math.inf
    loops = min(int(repeats), int(max_seconds // max(first * number, 1e-9)))
    if loops < 1 and number > 1:          # sized to a loop of several calls: time that loop once
        loops = 1
    for _ in range(loops):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, time.perf_counter() - t0)
    return best / number


def query_seconds(query: Callable[[int], object], samples: Sequence[int], repeats: int) -> float:
    """Median over ``samples`` of the time of ``query(sample)`` (:func:`best_seconds`; one-sample
    queries, no high-fidelity runs beside them: :func:`interleaved_seconds` without ``hf``)."""
    return interleaved_seconds(None, {0: query}, samples, 0, repeats)[1][0]


def interleaved_seconds(hf: Callable[[int], object] | None, queries: Mapping[K, Callable[[int], object]],
                        samples: Sequence[int], hf_samples: int, repeats: int) -> tuple[float, dict[K, float]]:
    """High-fidelity samples and surrogate queries timed side by side, in this process.

    One untimed warm-up call of ``hf`` and of every query on ``samples[0]``; then rounds over
    ``samples`` (cycled; ``max(len(samples), hf_samples)`` rounds): in each, the high-fidelity
    run ``hf(sample)`` (in the first ``hf_samples`` rounds), then every query in order, all timed
    alike by :func:`best_seconds` with ``repeats`` loops on the same sample (a solver run of a
    second or more is timed once; a 0.1 s one is the fastest of ``repeats`` runs, as the query
    beside it).  Returns the median high-fidelity seconds (NaN without ``hf`` or with
    ``hf_samples == 0``) and per query the median over the rounds (NaN for all when ``samples``
    is empty).
    """
    samples = list(samples)
    if not samples:
        return math.nan, {k: math.nan for k in queries}
    hf_n = max(0, int(hf_samples)) if hf is not None else 0
    if hf_n:
        hf(samples[0])
    for q in queries.values():
        q(samples[0])
    hf_times: list[float] = []
    q_times: dict[K, list[float]] = {k: [] for k in queries}
    for j in range(max(len(samples), hf_n)):
        s = samples[j % len(samples)]
        if j < hf_n:
            hf_times.append(best_seconds(lambda s=s: hf(s), repeats))  # type: ignore[misc]
        for k, q in queries.items():
            q_times[k].append(best_seconds(lambda q=q, s=s: q(s), repeats))
    hf_s = float(np.median(hf_times)) if hf_times else math.nan
    return hf_s, {k: float(np.median(v)) for k, v in q_times.items()}


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


__all__ = ["job_threads", "median_seconds", "best_seconds", "query_seconds", "interleaved_seconds", "break_even_queries", "speedup"]
