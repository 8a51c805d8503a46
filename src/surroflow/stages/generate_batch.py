"""Stage ``generate_batch``: run the high-fidelity simulator over one batch of a design, on dask.

One batch = one NetCDF file written atomically, so a killed run resumes without recomputing
finished batches.  Each sample's outcome is recorded in ``status(sample)`` with a reason; the
fields of a failed or diverged sample are NaN (never zero-filled) and downstream stages
exclude them.  The Lyapunov attributes of a chaotic simulator (:func:`surroflow.dynamics.
lyapunov_attrs`) are attached here, outside the simulator.

Input ``design`` (a ``make_design`` artifact), output ``batch``; the batch number is the
``batch`` wildcard, its size ``design.batch_size``.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import xarray as xr

from .. import SurroflowError
from ..design import design_records
from ..io import STATUS_FLAGS, STATUS_OK, open_dataset, status_attrs, status_name, write_dataset
from ..logging_utils import Progress, format_rate
from ..simulators import SampleFailure, get_simulator
from ..simulators.base import Simulator
from . import StageContext

log = logging.getLogger("surroflow.generate_batch")


# --------------------------------------------------------------------------- running
def _run_with_timeout(sim: Simulator, params: Mapping[str, float], timeout: float | None
                      ) -> Mapping[str, np.ndarray] | SampleFailure:
    """Run one sample; a Python simulator over ``timeout`` is abandoned and flagged 'timeout'.

    A Python function cannot be killed from inside the worker: the abandoned thread finishes in
    the background (external solvers are killed by their own subprocess timeout).
    """
    if timeout is None:
        try:
            return sim.run_sample(params)
        except SampleFailure as exc:
            return exc
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["out"] = sim.run_sample(params)
        except BaseException as exc:  # noqa: BLE001 - reported as the sample's failure
            box["out"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        return SampleFailure(f"exceeded timeout of {timeout:g} s", "timeout")
    out = box["out"]
    if isinstance(out, BaseException) and not isinstance(out, SampleFailure):
        raise out
    return out


def run_samples(sim_name: str, settings: Mapping[str, Any], records: Sequence[Mapping[str, float]],
                timeout: float | None) -> list[tuple[Any, float]]:
    """Run samples inside one dask task; return ``(result_or_failure, wall_seconds)`` per sample.

    The simulator is built inside the worker (after the process starts), never pickled.
    Unexpected exceptions become 'failed' samples with the exception text as the reason.
    """
    sim = get_simulator(sim_name, **settings)
    out: list[tuple[Any, float]] = []
    if getattr(sim, "vectorised", False) and timeout is None:
        t0 = time.perf_counter()
        try:
            results = sim.run_batch(list(records))
        except Exception as exc:  # noqa: BLE001
            results = [SampleFailure(f"{type(exc).__name__}: {exc}", "failed")] * len(records)
        per = (time.perf_counter() - t0) / max(1, len(records))
        return [(r, per) for r in results]
    for rec in records:
        t0 = time.perf_counter()
        try:
            res = _run_with_timeout(sim, rec, timeout)
        except Exception as exc:  # noqa: BLE001
            res = SampleFailure(f"{type(exc).__name__}: {exc}", "failed")
        out.append((res, time.perf_counter() - t0))
    return out


def _check_result(sim: Simulator, res: Any) -> tuple[dict[str, np.ndarray] | None, int, str]:
    if isinstance(res, SampleFailure):
        if res.status not in STATUS_FLAGS or res.status == "ok":
            return None, STATUS_FLAGS["failed"], res.reason
        return None, STATUS_FLAGS[res.status], res.reason
    fields: dict[str, np.ndarray] = {}
    for var in sim.outputs():
        if var.name not in res:
            return None, STATUS_FLAGS["failed"], f"simulator returned no {var.name!r}"
        arr = np.asarray(res[var.name], dtype=float)
        shape = sim.output_shape(var)
        if arr.shape != shape:
            return None, STATUS_FLAGS["failed"], f"{var.name!r} has shape {arr.shape}, expected {shape}"
        if not np.all(np.isfinite(arr)):
            return None, STATUS_FLAGS["diverged"], f"non-finite values in {var.name!r}"
        fields[var.name] = arr
    return fields, STATUS_OK, ""


def batch_dataset(sim: Simulator, design: xr.Dataset, results: Sequence[tuple[Any, float]]) -> xr.Dataset:
    """Assemble one batch's results into the canonical generated dataset."""
    from ..dynamics import lyapunov_attrs

    n = design.sizes["sample"]
    status = np.zeros(n, dtype="i1")
    reasons = np.empty(n, dtype=object)
    walls = np.zeros(n)
    arrays = {v.name: np.full((n, *sim.output_shape(v)), np.nan) for v in sim.outputs()}
    for i, (res, wall) in enumerate(results):
        fields, code, reason = _check_result(sim, res)
        status[i], reasons[i], walls[i] = code, reason, wall
        if fields is not None:
            for name, arr in fields.items():
                arrays[name][i] = arr
    data_vars: dict[str, Any] = {
        v.name: (("sample", *v.dims), arrays[v.name], {"units": v.units, "long_name": v.long_name or v.name})
        for v in sim.outputs()}
    data_vars["status"] = (("sample",), status, status_attrs())
    data_vars["status_reason"] = (("sample",), reasons.astype(str),
                                  {"long_name": "why the sample is not ok (empty when ok)"})
    data_vars["wall_time"] = (("sample",), walls,
                              {"units": "s", "long_name": "high-fidelity wall time per sample"})
    mesh = getattr(sim, "mesh_variables", None)
    if callable(mesh):
        data_vars.update(mesh())
    coords = {name: (c.dims, np.asarray(c.values), {"units": c.units, "long_name": c.long_name, **dict(c.extra_attrs)})
              for name, c in sim.coordinates().items()}
    ds = xr.Dataset(data_vars, coords=coords)
    ds = ds.assign(design=design["design"]).assign_coords(
        {k: design.coords[k] for k in design.coords if k != "sample"})
    ds = ds.assign_coords(sample=design["sample"].values)
    ds.attrs.update(sim.attrs())
    ds.attrs.update(lyapunov_attrs(sim))
    ds.attrs["time_dim"] = sim.time_dim or "none"
    ds.attrs["simulator"] = sim.name
    return ds


#: seconds between two looks at the batch's futures
POLL_S = 0.05


def _gather(groups: Sequence[Sequence[Mapping[str, float]]], futures: Sequence[Any],
            first_sample: int, progress: Progress | None = None,
            is_flagged: Callable[[Any], bool] | None = None) -> list[tuple[Any, float]]:
    """Results of the per-group futures in design order; a lost task becomes a clear error.

    Futures are taken as they complete, each counted on ``progress`` (with the samples
    ``is_flagged`` so far); at the first one that did not finish, the rest are read in design
    order, so the error names the first lost group of the design.  Completion is polled
    (``Future.done``, every :data:`POLL_S`): ``distributed.as_completed`` was seen to wait forever
    on futures that had all finished, when earlier clusters had run in the same process.
    """
    from distributed import KilledWorker

    done: dict[int, list[tuple[Any, float]]] = {}
    flagged = 0
    pending = list(range(len(futures)))
    failed = False
    while pending and not failed:
        ready = [k for k in pending if futures[k].done()]
        if not ready:
            time.sleep(POLL_S)
            continue
        for k in ready:
            pending.remove(k)
            if futures[k].status != "finished":
                failed = True   # an error: raised below, in design order
                break
            done[k] = futures[k].result()
            if is_flagged is not None:
                flagged += sum(bool(is_flagged(res)) for res, _ in done[k])
            if progress is not None:
                progress.update(len(groups[k]), f"{flagged} flagged")
    results: list[tuple[Any, float]] = []
    offset = first_sample
    for k, (group, fut) in enumerate(zip(groups, futures)):
        try:
            results.extend(done[k] if k in done else fut.result())
        except KilledWorker as exc:
            raise SurroflowError(
                f"samples {offset}..{offset + len(group) - 1}: every dask worker that ran them died "
                f"(distributed.scheduler.allowed-failures reached): the simulator crashes the "
                f"process or runs out of memory; raise the rule's mem_mb or fix the simulator "
                f"({exc})") from None
        offset += len(group)
    return results


def runs_in_process(sim: Simulator, timeout: float | None, dask_cfg: Mapping[str, Any] | None) -> bool:
    """True when a batch is one vectorised task (a simulator with ``vectorised = True`` and no
    per-sample timeout) on the local cluster kind: it then runs in the job's own process, on one
    core.  Otherwise each sample is a dask task on the configured cluster."""
    kind = (dask_cfg or {}).get("kind", "local")
    return bool(getattr(sim, "vectorised", False)) and timeout is None and kind == "local"


def run_design(sub: xr.Dataset, ctx: StageContext, label: str) -> xr.Dataset:
    """The generate dataset of the design points ``sub`` (a slice of a design dataset): run as
    :func:`run` describes, flagged samples logged; the caller adds provenance and writes it."""
    from ..distributed import dask_client

    records = design_records(sub)
    sim_cfg = ctx.section["simulator"]
    name, settings, timeout = sim_cfg["name"], dict(sim_cfg["settings"]), sim_cfg["timeout_s"]
    sim = get_simulator(name, **settings)   # validates settings before any work
    n = sub.sizes["sample"]
    if runs_in_process(sim, timeout, ctx.dask):
        # a vectorised simulator integrates the whole batch in one call: one task, no cluster to
        # start (that would cost more than the batch) -- it runs here, in the job's process
        log.info("%s: %d samples in one vectorised call in this job's process (one step: no "
                 "per-sample progress)", label, n)
        results = run_samples(name, settings, records, timeout)
    else:
        groups = [[r] for r in records]
        with dask_client(ctx.dask, n_workers=ctx.threads, memory_mb=ctx.mem_mb) as client:
            futures = client.map(run_samples, [name] * len(groups), [settings] * len(groups), groups,
                                 [timeout] * len(groups), pure=False)
            progress = Progress(n, label, unit="samples", logger=log)
            results = _gather(groups, futures, int(sub["sample"].values[0]) if n else 0, progress,
                              lambda res: _check_result(sim, res)[1] != STATUS_OK)
    ds = batch_dataset(sim, sub, results)
    for i in np.flatnonzero(ds["status"].values != STATUS_OK):
        log.warning("sample %d flagged %s: %s", int(ds["sample"][i]), status_name(int(ds["status"][i])),
                    str(ds["status_reason"][i].values))
    return ds


def run(inputs: Mapping[str, str | list[str]], outputs: Mapping[str, str], ctx: StageContext) -> None:
    """Run batch number ``ctx.wildcards['batch']`` of the design ``inputs['design']``.

    A vectorised batch (:func:`runs_in_process`) is integrated in this process in one call;
    otherwise samples are spread over the dask cluster of ``ctx.dask``
    (:mod:`surroflow.distributed`, sized to the job's threads and memory), the simulator
    constructed in each worker.  A
    task whose worker dies is retried by dask on another worker; a sample that fails, diverges
    or times out is flagged in ``status(sample)``, never retried.  The file is written
    atomically when all samples are done, so a killed job leaves no output and only its own
    batch is rerun.

    Logged: as dask samples complete, a progress line (:class:`surroflow.logging_utils.Progress`:
    count, rate, ETA, samples flagged so far; every ~2 s or 10% of the batch, and the last);
    a vectorised batch is one step and says so; then one summary line per batch.
    """
    out = Path(outputs["batch"])   # temporaries a killed writer left beside it: removed by run_rule
    batch, batch_size = int(ctx.wildcards["batch"]), int(ctx.section["design"]["batch_size"])
    ctx.check_inputs(inputs)
    design = open_dataset(inputs["design"], stage="make_design", required=("design",))
    n = design.sizes["sample"]
    lo, hi = batch * batch_size, min(n, (batch + 1) * batch_size)
    if lo >= n:
        raise SurroflowError(f"{inputs['design']}: batch {batch} starts at sample {lo} but the design has {n}")
    sub = design.isel(sample=slice(lo, hi))
    label = f"{ctx.study} {ctx.wildcards['split']} batch {ctx.wildcards['batch']}"
    log.info("%s: samples %d..%d of %d (%s)", label, lo, hi - 1, n, ctx.section["simulator"]["name"])
    t0 = time.perf_counter()
    ds = run_design(sub, ctx, label)
    ds.attrs.update(ctx.provenance(inputs, str(out), batch=batch, batch_size=batch_size,
                                   split=ctx.wildcards["split"]))
    write_dataset(ds, out)
    wall = time.perf_counter() - t0
    flagged = int(np.sum(ds["status"].values != STATUS_OK))
    log.info("%s done in %.1f s (%s samples/s): %d ok, %d flagged", label, wall,
             format_rate((hi - lo) / wall) if wall > 0 else "?", hi - lo - flagged, flagged)
