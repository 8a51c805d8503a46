"""A reduced model: POD bases (one per output variable) composed with a regressor.

Inputs are the design parameters and, for transient problems, the time coordinate; outputs are
the concatenated POD coefficients of all reduced variables.  ``predict_fields`` reconstructs
full fields ``(n_samples, n_time, space...)``.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import xarray as xr

from .. import SurroflowError, snapshots
from ..reduction.local import LocalPOD
from ..reduction.pod import POD
from ..snapshots import snapshot_matrix, surrogate_inputs as inputs_for, time_dim_of
from .base import Surrogate

_TINY = np.finfo(float).tiny
logger = logging.getLogger(__name__)


def training_arrays(train: xr.Dataset, bases: Mapping[str, POD]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs, scaled coefficients and the per-variable scales.

    Each variable's block of coefficients is divided by its RMS norm, so that variables in
    different units (mm and MPa) weigh alike in a regressor's loss while the relative sizes of
    the modes within a variable are kept.
    """
    td = time_dim_of(train)
    times = train[td].values.astype(float) if td else None
    X = inputs_for(train["design"].values, times)
    blocks, scales = [], []
    for v in bases:
        Z = bases[v].transform(snapshot_matrix(train, v))
        scale = float(np.sqrt(np.mean(np.sum(Z ** 2, axis=1)))) or 1.0
        blocks.append(Z / scale)
        scales.append(scale)
    return X, np.hstack(blocks), np.asarray(scales)


class ReducedModel:
    """Bases + regressor; ``split`` gives where each variable's coefficients sit in the output."""

    def __init__(self, bases: Mapping[str, POD], regressor: Surrogate,
                 scales: Sequence[float] | None = None) -> None:
        self.bases = dict(bases)
        self.regressor = regressor
        sizes = [b.n_modes_ for b in self.bases.values()]
        edges = np.cumsum([0, *sizes])
        self.split = {v: slice(int(a), int(b)) for v, a, b in zip(self.bases, edges[:-1], edges[1:])}
        self.scale_vector = np.repeat(np.ones(len(sizes)) if scales is None else np.asarray(scales, float), sizes)

    def predict_coefficients(self, X: np.ndarray) -> np.ndarray:
        return self.regressor.predict(X) * self.scale_vector

    def predict_fields(self, design: np.ndarray, times: np.ndarray | None,
                       space_shapes: Mapping[str, Sequence[int]]) -> dict[str, np.ndarray]:
        X = inputs_for(design, times)
        Z = self.predict_coefficients(X)
        n = np.atleast_2d(design).shape[0]
        nt = 1 if times is None else len(times)
        out = {}
        for v, b in self.bases.items():
            flat = b.inverse_transform(Z[:, self.split[v]])
            lead = (n, nt) if times is not None else (n,)
            out[v] = flat.reshape(*lead, *space_shapes[v])
        return out


# =========================================================================== reduced models
def _regressor_factory(regressor: str | Callable[[], Any], params: Mapping[str, Any] | None) -> Callable[[], Any]:
    if callable(regressor) and not isinstance(regressor, str):
        return regressor
    from . import make_surrogate
    kind, p = str(regressor), dict(params or {})
    return lambda: make_surrogate(kind, **p)


def _wnorm2(A: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij,j->i", A, A, w)


def _split_from_parts(u: np.ndarray, best_proj: np.ndarray, sel_proj: np.ndarray, pred: np.ndarray,
                      w: np.ndarray, groups: np.ndarray | None) -> dict[str, Any]:
    """Weighted squared errors per row and their relative aggregates."""
    ref = _wnorm2(u, w)
    parts = {
        "projection": _wnorm2(u - best_proj, w),
        "selection": np.maximum(_wnorm2(u - sel_proj, w) - _wnorm2(u - best_proj, w), 0.0),
        "regression": _wnorm2(sel_proj - pred, w),
        "total": _wnorm2(u - pred, w),
    }
    out: dict[str, Any] = {k: float(np.sqrt(v.sum() / max(ref.sum(), _TINY))) for k, v in parts.items()}
    out["per_row"] = {k: np.sqrt(v / np.maximum(ref, _TINY)) for k, v in parts.items()}
    if groups is not None:
        g = np.asarray(groups)
        uniq = np.unique(g)
        out["per_group"] = {k: np.array([np.sqrt(v[g == q].sum() / max(ref[g == q].sum(), _TINY)) for q in uniq])
                            for k, v in parts.items()}
        out["groups"] = uniq
    return out


class LocalReducedModel:
    """A selector plus one regressor per local basis: ``inputs -> local coordinates -> field``.

    Parameters
    ----------
    local_pod : an unfitted or fitted :class:`LocalPOD` (fitted on the training snapshots if not).
    regressor : a surroflow surrogate kind (``rbf``, ``gaussian_process``...) built with
        :func:`surroflow.surrogates.make_surrogate`, or a zero-argument factory returning an
        object with ``fit(X, Y)`` / ``predict(X)``.
    regressor_params : hyperparameters of the surrogate kind.

    ``n_online_modes`` is the rank of the largest local basis: the cost of one online evaluation.
    """

    def __init__(self, local_pod: LocalPOD, regressor: str | Callable[[], Any] = "rbf",
                 regressor_params: Mapping[str, Any] | None = None) -> None:
        self.local_pod = local_pod
        self.regressor = regressor
        self.regressor_params = regressor_params

    def fit(self, inputs: np.ndarray, snapshots: np.ndarray, weights: np.ndarray | None = None) -> "LocalReducedModel":
        inputs = np.asarray(inputs, dtype=float)
        X = np.asarray(snapshots, dtype=float)
        if not hasattr(self.local_pod, "pods_"):
            self.local_pod.fit(X, weights, inputs=inputs)
        lp = self.local_pod
        make = _regressor_factory(self.regressor, self.regressor_params)
        self.regressors_ = []
        for c, idx in enumerate(lp.members_):
            reg = make()
            reg.fit(inputs[idx], lp.pods_[c].transform(X[idx]))
            self.regressors_.append(reg)
        return self

    @property
    def n_online_modes(self) -> int:
        return int(max(self.local_pod.n_modes_))

    def predict_field(self, inputs: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """Predicted fields ``(n, n_space)``; ``labels`` overrides the selector."""
        inputs = np.atleast_2d(np.asarray(inputs, dtype=float))
        lp = self.local_pod
        labels = lp.select_by_inputs(inputs) if labels is None else np.asarray(labels, dtype=int)
        out = np.empty((inputs.shape[0], lp.weights_.size))
        for c, pod in enumerate(lp.pods_):
            sel = labels == c
            if np.any(sel):
                z = np.asarray(self.regressors_[c].predict(inputs[sel]))
                out[sel] = pod.inverse_transform(z.reshape(int(sel.sum()), -1))
        return out

    predict = predict_field

    def project(self, fields: np.ndarray) -> np.ndarray:
        """Projection onto the best local basis of each field (the projection error floor)."""
        return self.local_pod.project(fields)

    def error_split(self, inputs: np.ndarray, snapshots_true: np.ndarray,
                    groups: np.ndarray | None = None) -> dict[str, Any]:
        """Relative weighted L2 errors with ``total^2 = projection^2 + selection^2 + regression^2``.

        projection: onto the best local basis; selection: the extra projection error of the
        basis the selector picked; regression: prediction minus the projection onto the selected
        basis.  Returns the aggregate relative errors, ``per_row`` arrays and, with ``groups``,
        ``per_group`` (e.g. per test sample), plus ``selection_accuracy`` (agreement of the
        selected cluster with the nearest centroid of the true state) and ``labels_selected``.
        """
        u = np.atleast_2d(np.asarray(snapshots_true, dtype=float))
        lp = self.local_pod
        state_labels = lp.select_by_state(u)
        sel = lp.select_by_inputs(inputs) if lp.selector != "nearest_centroid" else state_labels
        best = lp.best_labels(u)
        out = _split_from_parts(u, lp.project(u, best), lp.project(u, sel),
                                self.predict_field(inputs, sel), lp.weights_, groups)
        # agreement with the cluster the state belongs to (what the classifier was trained on)
        out["selection_accuracy"] = float(np.mean(sel == state_labels))
        out["labels_selected"] = sel
        return out

    # storage
    def to_dataset(self, space_dims: Sequence[str], space_coords: Mapping[str, Any],
                   space_shape: Sequence[int], attrs: Mapping[str, Any] | None = None) -> xr.Dataset:
        """Local bases plus every cluster's regressor state (``c{i}__state__*``) in one dataset."""
        from .io import surrogate_to_dataset
        ds = self.local_pod.to_dataset(space_dims, space_coords, space_shape, attrs)
        for c, reg in enumerate(self.regressors_):
            sds = surrogate_to_dataset(reg)
            sds = sds.rename({d: f"c{c}__{d}" for d in sds.dims})
            sds = sds.rename({v: f"c{c}__{v}" for v in sds.data_vars})
            kind, hyper = sds.attrs["surrogate_kind"], sds.attrs["hyperparameters"]
            sds.attrs = {}
            ds = ds.merge(sds, combine_attrs="override")
            ds.attrs[f"c{c}__surrogate_kind"] = kind
            ds.attrs[f"c{c}__hyperparameters"] = hyper
        ds.attrs["model"] = "local_reduced_model"
        ds.attrs["regressor"] = str(self.regressor)
        ds.attrs["regressor_params"] = json.dumps(dict(self.regressor_params or {}), default=str)
        return ds

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> "LocalReducedModel":
        from .io import surrogate_from_dataset
        lp = LocalPOD.from_dataset(ds)
        model = cls(lp, str(ds.attrs.get("regressor", "rbf")), json.loads(ds.attrs.get("regressor_params", "{}")))
        model.regressors_ = []
        for c in range(len(lp.pods_)):
            pre = f"c{c}__"
            sub = ds[[v for v in ds.data_vars if str(v).startswith(pre)]]
            sub = sub.rename({v: str(v)[len(pre):] for v in sub.data_vars})
            sub = sub.rename({d: str(d)[len(pre):] for d in sub.dims if str(d).startswith(pre)})
            sub.attrs = {"surrogate_kind": ds.attrs[pre + "surrogate_kind"],
                         "hyperparameters": ds.attrs[pre + "hyperparameters"]}
            model.regressors_.append(surrogate_from_dataset(sub))
        return model


class GlobalReducedModel:
    """One POD basis plus one regressor, with the API of :class:`LocalReducedModel`."""

    def __init__(self, pod: POD, regressor: str | Callable[[], Any] = "rbf",
                 regressor_params: Mapping[str, Any] | None = None) -> None:
        self.pod = pod
        self.regressor = regressor
        self.regressor_params = regressor_params

    def fit(self, inputs: np.ndarray, snapshots: np.ndarray, weights: np.ndarray | None = None) -> "GlobalReducedModel":
        X = np.asarray(snapshots, dtype=float)
        if not hasattr(self.pod, "modes_"):
            self.pod.fit(X, weights)
        self.regressor_ = _regressor_factory(self.regressor, self.regressor_params)()
        self.regressor_.fit(np.asarray(inputs, dtype=float), self.pod.transform(X))
        return self

    @property
    def n_online_modes(self) -> int:
        return int(self.pod.n_modes_)

    def predict_field(self, inputs: np.ndarray) -> np.ndarray:
        inputs = np.atleast_2d(np.asarray(inputs, dtype=float))
        z = np.asarray(self.regressor_.predict(inputs)).reshape(inputs.shape[0], -1)
        return self.pod.inverse_transform(z)

    predict = predict_field

    def project(self, fields: np.ndarray) -> np.ndarray:
        return self.pod.project(np.atleast_2d(fields))

    def error_split(self, inputs: np.ndarray, snapshots_true: np.ndarray,
                    groups: np.ndarray | None = None) -> dict[str, Any]:
        u = np.atleast_2d(np.asarray(snapshots_true, dtype=float))
        P = self.project(u)
        out = _split_from_parts(u, P, P, self.predict_field(inputs), self.pod.weights_, groups)
        out["selection_accuracy"] = 1.0
        return out


def train_local_model_file(train_nc: str | os.PathLike[str], basis_nc: str | os.PathLike[str],
                           out_nc: str | os.PathLike[str], kind: str = "rbf",
                           params: Mapping[str, Any] | None = None, *,
                           attrs: Mapping[str, Any] | None = None) -> Path:
    """Train one surrogate per local basis (on each cluster's members, overlap included) and
    write the local reduced model (bases, selector data and regressor states) to ``out_nc``.

    The inputs of every snapshot are ``[parameters..., time]`` from the training file's design;
    the basis file is the output of :func:`local_pod_file`.
    """
    from ..io import open_dataset, write_dataset
    t0 = time.perf_counter()
    bds = open_dataset(basis_nc, required=("modes", "n_modes", "centroids", "membership"))
    variable = str(bds.attrs["variable"])
    lp = LocalPOD.from_dataset(bds)
    ds = open_dataset(train_nc, required=(variable, "design"))
    X = snapshots.snapshot_matrix(ds, variable)
    inputs = snapshots.snapshot_inputs(ds, variable)
    if X.shape[0] != lp.labels_.size:
        raise SurroflowError(f"{basis_nc}: fitted on {lp.labels_.size} snapshots, {train_nc} has "
                             f"{X.shape[0]}: rerun the reduce stage")
    model = LocalReducedModel(lp, kind, dict(params or {})).fit(inputs, X)
    fit_seconds = time.perf_counter() - t0
    lay = snapshots.snapshot_layout(ds, variable)
    coords = {d: ds[d] for d in lay.space_dims if d in ds.coords}
    td = lay.time_dim
    out = model.to_dataset(lay.space_dims, coords, lay.space_shape, attrs={
        **{k: v for k, v in bds.attrs.items() if k not in ("stage", "created", "complete")},
        "fit_seconds": fit_seconds, "surrogate_kind": kind, "n_online_modes": model.n_online_modes,
        "input_names": [*map(str, ds["parameter"].values), *([td] if td else [])],
        **dict(attrs or {})})
    write_dataset(out, out_nc)
    logger.info("%s: local model (%s, %d clusters, %d online modes) trained in %.2f s", variable, kind,
                len(lp.pods_), model.n_online_modes, fit_seconds)
    return Path(out_nc)


def load_local_model(path: str | os.PathLike[str]) -> LocalReducedModel:
    """A :class:`LocalReducedModel` from :func:`train_local_model_file` (refits the selector
    classifier from its stored training data; no pickles)."""
    from ..io import open_dataset
    return LocalReducedModel.from_dataset(open_dataset(path, required=("modes", "n_modes")))
