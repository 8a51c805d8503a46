"""Stage ``train_surrogate``: one configured surrogate composed with the study's bases.

Inputs: ``train`` (the training generate dataset) and ``bases`` (the global basis files
``reduce/<variable>.nc`` of stage ``fit_pod``, or the one local basis file of stage
``fit_local_pod``; none for a full-field surrogate, ``basis: none``, whose identity "bases" are
:func:`full_field_bases` of the training data).  Output: ``model``, a self-contained
:class:`~surroflow.surrogates.reduced.ReducedModel` file with the attributes ``model_name``,
``model_kind`` and ``fit_seconds`` (the regressor fit alone: the heavy imports happen when the
estimator is built, the snapshots are read before the clock starts).

Then the conformal calibration, stored in the model file (scale field, scores, cost): with the
optional input ``calibration`` (the generate data of the study's calibration design,
``design.n_calibration`` samples), split-conformal
(:func:`~surroflow.surrogates.conformal.split_conformal`: the fitted model's residuals on those
samples, their high-fidelity seconds recorded as the band's cost); without it, cross-conformal
(:func:`~surroflow.surrogates.conformal.cross_conformal`: the same configuration refitted on
``calibration_folds`` folds of the training samples).  Calibration samples never reach the
bases or the regressor; the test design is not an input of this stage.

BLAS and torch are limited to the job's threads: results are reproducible bit for bit, and jobs
running side by side do not oversubscribe the cores.  Flagged samples are left out (and counted).
"""
from __future__ import annotations

import logging
import time
from typing import Any, Mapping, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from .. import SurroflowError
from .. import snapshots as snap
from ..io import open_dataset, write_dataset
from ..reduction.local import LocalPOD
from ..reduction.pod import POD
from ..surrogates.conformal import Calibration, cross_conformal, split_conformal
from ..surrogates.reduced import ReducedModel
from ..surrogates.registry import make_estimator
from . import StageContext

logger = logging.getLogger(__name__)

GENERATE_STAGES = ("collect_batches", "import_files")
#: most values per snapshot of a full-field model (basis none): its identity basis is dense
MAX_FULL_FIELD = 8192


def _as_list(paths: str | Sequence[str]) -> list[str]:
    return [paths] if isinstance(paths, str) else [str(p) for p in paths]


def open_generate(path: str, required: tuple[str, ...] = ()) -> Any:
    """A generate dataset (stage ``collect_batches`` or ``import_files``), checked."""
    return open_dataset(path, stage=GENERATE_STAGES, required=("status", *required))


def full_field_bases(train: Any, snapshots: Mapping[str, np.ndarray], weights: str) -> dict[str, POD]:
    """``{variable: POD.identity}`` of the training ``snapshots`` (``{variable: matrix}`` of the
    ok samples of ``train``) for a full-field model (``basis: none``): no reduction, the weights
    of ``reduction.weights`` (the norm the evaluation measures in is the one of the POD models)."""
    too_big = {v: S.shape[1] for v, S in snapshots.items() if S.shape[1] > MAX_FULL_FIELD}
    if too_big:
        raise SurroflowError(f"basis none: the full field of {too_big} has more than {MAX_FULL_FIELD} values per "
                             "snapshot; the identity basis is stored dense, so full-field models are for grids "
                             "of moderate size: use basis global")
    return {v: POD.identity(S, snap.space_weights(train, v, weights)) for v, S in snapshots.items()}


def load_bases(paths: Sequence[str], basis: str, where: str) -> dict[str, POD] | dict[str, LocalPOD]:
    """``{variable: POD}`` from ``fit_pod`` files, or ``{variable: LocalPOD}`` from one
    ``fit_local_pod`` file."""
    if basis == "local":
        if len(paths) != 1:
            raise SurroflowError(f"{where}: a local model takes one local basis file, got {len(paths)}")
        ds = open_dataset(paths[0], stage="fit_local_pod", required=("modes", "n_modes", "centroids"))
        return {str(ds.attrs["variable"]): LocalPOD.from_dataset(ds)}
    bases: dict[str, POD] = {}
    for p in paths:
        ds = open_dataset(p, stage="fit_pod", required=("modes", "mean", "weights"))
        bases[str(ds.attrs["variable"])] = POD.from_dataset(ds)
    if not bases:
        raise SurroflowError(f"{where}: no basis file given")
    return bases


def calibrate_split(model: ReducedModel, paths: Sequence[str], where: str) -> Calibration:
    """Split-conformal calibration of the fitted ``model`` on the one calibration generate file
    in ``paths`` (its flagged samples left out and counted; its times must be the training times)."""
    from ..evaluation.data import generation_seconds, load_split
    if len(paths) != 1:
        raise SurroflowError(f"{where}: the calibration input is one generate file, got {len(paths)}")
    data = load_split(paths[0], ("design",), "calibration samples")
    cal_ds, v0 = data.ok, model.variables[0]
    times = snap.snapshot_times(cal_ds, v0)
    if (times is None) != (model.times_ is None) or (
            times is not None and not np.array_equal(np.asarray(times, float), np.asarray(model.times_, float))):
        raise SurroflowError(f"{paths[0]}: the calibration samples' times differ from the training times; "
                             "both splits must come from the same simulator settings")
    X = snap.snapshot_inputs(cal_ds, v0)
    S = {v: snap.snapshot_matrix(cal_ds, v) for v in model.variables}
    groups = snap.snapshot_groups(cal_ds, v0)
    return split_conformal(model, X, S, groups, samples=cal_ds["sample"].values[np.unique(groups)],
                           generation_seconds=generation_seconds(data))


def run(inputs: Mapping[str, Any], outputs: Mapping[str, str], ctx: StageContext) -> None:
    name = ctx.wildcards["surrogate"]
    cfg = ctx.section["surrogate"][name]
    kind, basis = cfg["kind"], cfg["basis"]
    where = f"studies.{ctx.study}.surrogates.{name}"
    ctx.check_inputs(inputs)
    with threadpool_limits(ctx.threads):
        regressor = make_estimator(kind, cfg["params"], "surrogate", where=f"{where}.params")
        if kind == "mlp":   # torch
            from ..surrogates.torch_utils import set_threads
            set_threads(ctx.threads)
        train = open_generate(inputs["train"], ("design",))
        n_excluded = snap.n_flagged(train)
        train = snap.require_ok_samples(train, f"{where}: {inputs['train']}", "training samples")
        S: dict[str, np.ndarray] = {}
        if basis == "none":
            red = ctx.section["reduction"]
            S = {v: snap.snapshot_matrix(train, v) for v in (list(red["variables"]) or snap.output_variables(train))}
            bases = full_field_bases(train, S, red["weights"])
        else:
            bases = load_bases(_as_list(inputs["bases"]), basis, where)
        model = ReducedModel(bases, regressor, formulation=cfg["formulation"]).describe(train)
        if cfg["params"].get("architecture") == "fno":
            dims = {v: model.space_[v]["dims"] for v in model.variables}
            if len(dims) != 1 or any(len(d) != 1 for d in dims.values()):
                raise SurroflowError(f"{where}: architecture fno needs one output variable on a 1-D grid "
                                     f"(reduction.variables); this study's are {dims}")
            (d,), = dims.values()
            periodic = d in train.coords and int(train[d].attrs.get("periodic", 0)) == 1
            if not periodic:
                raise SurroflowError(f"{where}: architecture fno treats the grid {d!r} as periodic (Fourier "
                                     f"layers, cos/sin position channels), but coordinate {d!r} is not marked "
                                     "periodic (attribute periodic = 1); use architecture dense")
        X = snap.snapshot_inputs(train, model.variables[0])
        S = S or {v: snap.snapshot_matrix(train, v) for v in model.variables}
        logger.info("%s (%s, %s bases of %s): %d training rows x %d inputs (%d flagged samples excluded)",
                    name, kind, basis, model.variables, X.shape[0], X.shape[1], n_excluded)
        t0 = time.perf_counter()
        model.fit(X, S)
        fit_seconds = time.perf_counter() - t0
        logger.info("%s: fitted in %.2f s, %d online modes", name, fit_seconds, model.n_online_modes)
        if _as_list(inputs.get("calibration") or []):
            model.calibration_ = calibrate_split(model, _as_list(inputs["calibration"]), where)
        else:
            groups = snap.snapshot_groups(train, model.variables[0])
            rows = np.unique(groups)
            model.calibration_ = cross_conformal(model, X, S, groups, int(cfg["calibration_folds"]),
                                                 samples=train["sample"].values[rows],
                                                 points=train["point"].values[rows] if "point" in train.coords else None)
    cal = model.calibration_
    if cal.why_not():
        logger.warning("%s: no conformal band at level 0.95: %s", name, cal.why_not())
    attrs = ctx.provenance(inputs, outputs["model"], model_name=name, model_kind=kind, fit_seconds=fit_seconds,
                           n_train_rows=int(X.shape[0]), n_regressor_rows=int(model.n_regressor_rows_),
                           n_excluded_samples=int(n_excluded))
    write_dataset(model.to_dataset(attrs), outputs["model"])


__all__ = ["run", "load_bases", "full_field_bases", "open_generate", "calibrate_split"]
