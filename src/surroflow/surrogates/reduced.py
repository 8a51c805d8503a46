"""The reduced model: bases (global or local) composed with a regressor.

``inputs (parameters, [time]) -> reduced coordinates -> fields``.

* **global** bases: one :class:`~surroflow.reduction.POD` per output variable; one regressor
  predicts the concatenated coefficients, each variable's block divided by its RMS norm so that
  variables in different units (mm and MPa) weigh alike in the regressor's loss while the
  relative sizes of the modes within a variable are kept;
* **no** basis (``basis: none``, a full-field model such as a Fourier neural operator): the
  identity of :meth:`~surroflow.reduction.pod.POD.identity` per variable, so the regressor
  predicts every grid value (centred, scaled by the square root of the quadrature weight) and
  the projection error is zero by construction;
* **local** bases: one :class:`~surroflow.reduction.local.LocalPOD` of one variable, its
  selector (a classifier on the inputs, or the nearest centroid of the true state) and one
  regressor per cluster, fitted on that cluster's members (overlap included).

:meth:`ReducedModel.error_split` is the one place where the error is split, in the weighted
norm of the bases, as ``total^2 = projection^2 + selection^2 + regression^2``: projection onto
the best basis (the global one, or the best local one), the extra projection error of the local
basis actually selected (0 for global bases) and the regression error within the selected basis.

Two **formulations** of a transient problem (``formulation``, attribute ``formulation`` of the
model file):

* ``pointwise``: one regressor row per snapshot, ``(parameters, time) -> coefficients``
  (``n_samples * n_time`` rows); the only one for steady problems and for local bases;
* ``trajectory``: one regressor row per sample, ``parameters -> all coefficients at all training
  times`` (``n_samples`` rows, ``n_time * n_coefficients`` outputs, time-major).  A GP or RBF then
  solves a system of ``n_samples`` instead of ``n_samples * n_time`` rows, and one query is one
  regressor row.  Queries at the training times are exact picks of the predicted trajectory;
  times between them are interpolated linearly (coefficients, hence fields); times outside the
  training time axis are an error.
* ``auto`` (the default) picks ``trajectory`` when it is valid: the problem is transient, the
  bases are global, and the training rows are complete trajectories on one shared time axis
  (sample-major blocks of every training time, as :func:`surroflow.snapshots.snapshot_inputs`
  writes them), and the regressor kind allows it (``Surrogate.auto_trajectory``: not the MLP,
  whose epoch budget would shrink with the rows); ``pointwise`` otherwise, and says why in the
  log.  Local bases select a cluster
  per snapshot (per sample *and* time), so one sample's trajectory lives in several bases and has
  no single coefficient vector: they are pointwise only.

Either way the prediction lies in the span of the bases, so :meth:`ReducedModel.error_split`
stays exact.

The model file (:meth:`ReducedModel.to_dataset`) is self-contained and pickle-free: the bases,
the regressor state(s) (:mod:`surroflow.surrogates.state`), the space dimensions, coordinates and
shapes, the fields' units, the time coordinate, the input names, the parameters (names,
units, ranges), the formulation and, when the training stage calibrated it, the cross-conformal
calibration (``calibration_``, :class:`~surroflow.surrogates.conformal.Calibration`: the scale
field and the training samples' scores).
"""
from __future__ import annotations

import json
import logging
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr
from sklearn.base import clone

from .. import SurroflowError
from .. import snapshots as snap
from ..reduction.local import LocalPOD
from ..reduction.pod import POD
from . import state as codec
from .base import Surrogate
from .conformal import Calibration

logger = logging.getLogger(__name__)

_TINY = np.finfo(float).tiny
PARTS = ("projection", "selection", "regression", "total")
#: the formulations of a reduced model (see the module docstring)
FORMULATIONS = ("auto", "pointwise", "trajectory")
#: field values reconstructed per block (rows x space points): a block of ``Z @ modes`` stays in
#: cache while it is written into the output (1 MiB; 256 KiB and 64 KiB time the same).  Sized by
#: values, not rows: on the plate's 2,050-value displacement, 512-row blocks made a batched query
#: 3.7x slower per point than a one-point query
_RECONSTRUCT_VALUES = 1 << 17


def _reconstruct(basis: POD, Z: np.ndarray) -> np.ndarray:
    """``basis.inverse_transform(Z)`` block by block, written straight into one output array."""
    out = np.empty((Z.shape[0], basis.weights_.size))
    rows = max(1, _RECONSTRUCT_VALUES // max(1, out.shape[1]))
    for start in range(0, Z.shape[0], rows):
        block = slice(start, start + rows)
        basis.inverse_transform(Z[block], out=out[block])
    return out


def _reconstruct_std(basis: POD, S: np.ndarray) -> np.ndarray:
    """Pointwise std of ``basis.inverse_transform(Z)`` for independent coefficients of std ``S``:
    ``sqrt(S**2 @ modes**2)``."""
    return np.sqrt(np.asarray(S) ** 2 @ basis.modes_ ** 2)


def _wnorm2(A: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij,j->i", A, A, w)


def _split(u: np.ndarray, best: np.ndarray, selected: np.ndarray, pred: np.ndarray, w: np.ndarray,
           groups: np.ndarray | None) -> dict[str, Any]:
    """Relative weighted errors: aggregates, ``per_row`` and (with ``groups``) ``per_group``."""
    ref = _wnorm2(u, w)
    proj = _wnorm2(u - best, w)
    parts = {"projection": proj, "selection": np.maximum(_wnorm2(u - selected, w) - proj, 0.0),
             "regression": _wnorm2(selected - pred, w), "total": _wnorm2(u - pred, w)}
    out: dict[str, Any] = {k: float(np.sqrt(v.sum() / max(ref.sum(), _TINY))) for k, v in parts.items()}
    out["per_row"] = {k: np.sqrt(v / np.maximum(ref, _TINY)) for k, v in parts.items()}
    if groups is not None:
        g = np.asarray(groups)
        if g.shape != (u.shape[0],):
            raise SurroflowError(f"groups must give one group per row ({u.shape[0]}), got shape {g.shape}")
        uniq = np.unique(g)
        out["groups"] = uniq
        out["per_group"] = {k: np.array([np.sqrt(v[g == q].sum() / max(ref[g == q].sum(), _TINY)) for q in uniq])
                            for k, v in parts.items()}
    return out


def _prefixed(ds: xr.Dataset, prefix: str, keep_dims: Sequence[str]) -> xr.Dataset:
    """``ds`` with its variables, non-space dimensions and attributes renamed ``prefix + name``."""
    ren = {str(v): prefix + str(v) for v in ds.data_vars}
    ren.update({str(d): prefix + str(d) for d in ds.dims if str(d) not in keep_dims})
    out = ds.rename(ren)
    out.attrs = {prefix + k: v for k, v in ds.attrs.items()}
    return out


def _unprefixed(ds: xr.Dataset, prefix: str) -> xr.Dataset:
    names = [v for v in ds.data_vars if str(v).startswith(prefix)]
    sub = ds[names]
    ren = {str(v): str(v)[len(prefix):] for v in names}
    ren.update({str(d): str(d)[len(prefix):] for d in sub.dims if str(d).startswith(prefix)})
    sub = sub.rename(ren)
    sub.attrs = {k[len(prefix):]: v for k, v in ds.attrs.items() if k.startswith(prefix)}
    return sub


class ReducedModel:
    """Bases (``{variable: POD}``, or ``{variable: LocalPOD}`` for one variable) + a regressor.

    ``regressor`` is an unfitted :class:`~surroflow.surrogates.base.Surrogate`; local bases
    get one :func:`sklearn.base.clone` of it per cluster.  ``scales`` fixes the per-variable
    coefficient scales of global bases (default: the RMS norm of each variable's training
    coefficients).  Unfitted bases are fitted on the training snapshots (uniform weights).

    ``formulation`` is ``"auto"``, ``"pointwise"`` or ``"trajectory"`` (module docstring); the
    one chosen is ``formulation_`` after :meth:`fit`.

    After :meth:`fit`: ``variables``, ``input_names``, ``n_online_modes``, ``scales_``,
    ``formulation_``, ``n_regressor_rows_`` (rows the regressor(s) were fitted on: samples for
    the trajectory formulation), ``regressor_`` (global) or ``regressors_`` (one per cluster, local).
    ``calibration_`` is None until a :class:`~surroflow.surrogates.conformal.Calibration` is
    attached (:func:`~surroflow.surrogates.conformal.cross_conformal`); it is saved with the model.
    """

    def __init__(self, bases: Mapping[str, POD] | Mapping[str, LocalPOD], regressor: Surrogate,
                 scales: Sequence[float] | None = None, formulation: str = "auto") -> None:
        self.bases = dict(bases)
        if not self.bases:
            raise SurroflowError("a reduced model needs at least one basis")
        self.local = any(isinstance(b, LocalPOD) for b in self.bases.values())
        if self.local and len(self.bases) != 1:
            raise SurroflowError(f"local bases reduce one variable; got {sorted(self.bases)}")
        if formulation not in FORMULATIONS:
            raise SurroflowError(f"formulation must be one of {list(FORMULATIONS)}, got {formulation!r}")
        if formulation == "trajectory" and self.local:
            raise SurroflowError("formulation 'trajectory' needs global bases: local bases select a basis per "
                                 "snapshot (sample and time), so a trajectory has no single coefficient vector; "
                                 "use 'pointwise' or 'auto'")
        self.regressor = regressor
        self.scales = scales
        self.formulation = formulation
        self.formulation_ = "pointwise"
        self.variables = list(self.bases)
        self.input_names: list[str] = []
        #: per variable: space dims, shape, attrs (units, long_name); coords of the space dims
        self.space_: dict[str, dict[str, Any]] = {}
        self.coords_: dict[str, xr.DataArray] = {}
        self.time_dim_: str | None = None
        self.times_: np.ndarray | None = None
        self.parameters_: xr.Dataset | None = None
        self.calibration_: Calibration | None = None

    # ------------------------------------------------------------------ metadata
    def describe(self, ds: xr.Dataset) -> "ReducedModel":
        """Record the layout of the generate dataset ``ds`` (space, units, time, parameters)."""
        v0 = self.variables[0]
        self.time_dim_ = snap.time_dim_of(ds, v0)
        self.times_ = snap.snapshot_times(ds, v0)
        self.input_names = snap.input_names(ds, v0)
        for v in self.variables:
            lay = snap.snapshot_layout(ds, v)
            self.space_[v] = {"dims": lay.space_dims, "shape": lay.space_shape,
                              "attrs": {k: ds[v].attrs[k] for k in ("units", "long_name") if k in ds[v].attrs}}
            for d in lay.space_dims:
                if d in ds.coords:
                    self.coords_[d] = ds[d].reset_coords(drop=True)
        params = ds["parameter"]
        extra = [c for c in ("parameter_units", "parameter_low", "parameter_high") if c in ds.coords]
        self.parameters_ = xr.Dataset(coords={"parameter": params.values, **{c: ("parameter", ds[c].values)
                                                                             for c in extra}})
        return self

    def with_bases(self, bases: Mapping[str, POD] | Mapping[str, LocalPOD]) -> "ReducedModel":
        """An unfitted model with other ``bases`` and this one's regressor, formulation (the
        one chosen by :meth:`fit`, once fitted) and layout metadata (:meth:`describe`): the
        configuration refitted on each fold of a cross-conformal calibration."""
        fitted = hasattr(self, "regressor_" if not self.local else "regressors_")
        m = ReducedModel(bases, self.regressor, formulation=self.formulation_ if fitted else self.formulation)
        m.input_names = list(self.input_names)
        m.space_ = {v: dict(s) for v, s in self.space_.items()}
        m.coords_ = dict(self.coords_)
        m.time_dim_, m.times_, m.parameters_ = self.time_dim_, self.times_, self.parameters_
        return m

    def fit_dataset(self, ds: xr.Dataset) -> "ReducedModel":
        """:meth:`describe` then :meth:`fit` on the ok samples of a generate dataset."""
        self.describe(ds)
        X = snap.snapshot_inputs(ds, self.variables[0])
        return self.fit(X, {v: snap.snapshot_matrix(ds, v) for v in self.variables})

    # ------------------------------------------------------------------ fitting
    def _rows(self, X: Any, snapshots: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        X = np.atleast_2d(np.asarray(X, dtype=float))
        missing = [v for v in self.variables if v not in snapshots]
        if missing:
            raise SurroflowError(f"snapshots of {missing} are missing; the bases reduce {self.variables}")
        S = {v: np.atleast_2d(np.asarray(snapshots[v], dtype=float)) for v in self.variables}
        for v, a in S.items():
            if a.shape[0] != X.shape[0]:
                raise SurroflowError(f"{v}: {a.shape[0]} snapshot rows for {X.shape[0]} input rows")
        return X, S

    def fit(self, X: Any, snapshots: Mapping[str, Any]) -> "ReducedModel":
        """Fit on inputs ``X`` ``(n_rows, n_inputs)`` and ``snapshots[var]`` ``(n_rows, n_space)``."""
        X, S = self._rows(X, snapshots)
        if not self.input_names:
            self.input_names = [f"x{i}" for i in range(X.shape[1])]
        for v in self.variables:
            self.space_.setdefault(v, {"dims": (f"{v}_space",), "shape": (S[v].shape[1],), "attrs": {}})
        if self.local:
            if self.formulation == "auto" and self.time_dim_ is not None:
                logger.info("formulation auto: pointwise (local bases select a basis per snapshot)")
            return self._fit_local(X, S[self.variables[0]])
        self.formulation_ = self._choose_formulation(X)
        blocks, scales = [], []
        for i, (v, b) in enumerate(self.bases.items()):
            if not hasattr(b, "modes_"):
                b.fit(S[v])
            Z = b.transform(S[v])
            scale = (float(self.scales[i]) if self.scales is not None
                     else float(np.sqrt(np.mean(np.sum(Z ** 2, axis=1)))) or 1.0)
            blocks.append(Z / scale)
            scales.append(scale)
        self.scales_ = np.asarray(scales)
        Z = np.hstack(blocks)
        if self.formulation_ == "trajectory":
            nt = len(self.times_)  # type: ignore[arg-type]
            X, Z = X[::nt, :-1], Z.reshape(X.shape[0] // nt, nt * Z.shape[1])
        self.regressor_ = clone(self.regressor).fit(X, Z)
        self.n_regressor_rows_ = int(X.shape[0])
        return self

    def _trajectory_problem(self, X: np.ndarray) -> str | None:
        """Why the rows ``X`` are not complete trajectories on one time axis (``None``: they are);
        sets ``times_`` (and ``time_dim_``) from the rows when :meth:`describe` did not."""
        if X.shape[1] < 2:
            return "the inputs have no time column"
        t = X[:, -1]
        times = self.times_ if self.times_ is not None else np.unique(t)
        nt = len(times)
        if nt < 2 or X.shape[0] % nt:
            return f"{X.shape[0]} rows are not whole trajectories of {nt} times"
        blocks = X.reshape(-1, nt, X.shape[1])
        if not np.array_equal(blocks[:, :, -1], np.broadcast_to(times, blocks.shape[:2])):
            return "the rows are not sample-major blocks of the shared time axis"
        if not np.array_equal(blocks[:, :, :-1], np.broadcast_to(blocks[:, :1, :-1], blocks[..., :-1].shape)):
            return "the parameters change within a block of times"
        if self.times_ is None:
            self.times_ = np.asarray(times, dtype=float)
            self.time_dim_ = self.time_dim_ or (self.input_names[-1] if self.input_names else "time")
        return None

    def _choose_formulation(self, X: np.ndarray) -> str:
        """The formulation rule (module docstring) for the training rows ``X``."""
        if self.formulation == "pointwise":
            return "pointwise"
        if self.formulation == "auto" and not getattr(self.regressor, "auto_trajectory", True):
            logger.info("formulation auto: pointwise (the %s regressor trains per pass over the rows: "
                        "keep the snapshot rows)", self.regressor.kind)
            return "pointwise"
        steady = self.time_dim_ is None and self.times_ is None and self.formulation == "auto"
        problem = ("no time axis (a steady problem, or describe() was not called)" if steady
                   else self._trajectory_problem(X))
        if problem is None:
            if self.formulation == "auto":
                logger.info("formulation auto: trajectory (%d samples x %d times on one time axis)",
                            X.shape[0] // len(self.times_), len(self.times_))  # type: ignore[arg-type]
            return "trajectory"
        if self.formulation == "trajectory":
            raise SurroflowError(f"formulation 'trajectory' is not valid here: {problem}")
        logger.info("formulation auto: pointwise (%s)", problem)
        return "pointwise"

    def _fit_local(self, X: np.ndarray, S: np.ndarray) -> "ReducedModel":
        lp = self.bases[self.variables[0]]
        if not hasattr(lp, "pods_"):
            lp.fit(S, inputs=X)
        if S.shape[0] != lp.labels_.size:
            raise SurroflowError(f"the local bases were fitted on {lp.labels_.size} snapshots, the training "
                                 f"data have {S.shape[0]}: rerun fit_local_pod")
        self.scales_ = np.ones(1)
        self.regressors_ = [clone(self.regressor).fit(X[idx], lp.pods_[c].transform(S[idx]))
                            for c, idx in enumerate(lp.members_)]
        self.n_regressor_rows_ = int(X.shape[0])
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "regressor_" if not self.local else "regressors_"):
            raise SurroflowError("this ReducedModel is not fitted: call fit() or load it with from_dataset()")

    # ------------------------------------------------------------------ sizes
    @property
    def basis(self) -> str:
        """``local`` (clustered bases), ``none`` (full field: every basis is the identity of
        :meth:`~surroflow.reduction.pod.POD.identity`, the regressor predicts every grid value)
        or ``global`` (POD bases)."""
        if self.local:
            return "local"
        return "none" if all(b.method == "identity" for b in self.bases.values()) else "global"

    @property
    def n_modes(self) -> dict[str, int]:
        """Modes per variable (local: of the largest local basis)."""
        return {v: int(max(b.n_modes_)) if self.local else int(b.n_modes_) for v, b in self.bases.items()}

    @property
    def n_online_modes(self) -> int:
        """Coefficients one online query predicts (local: the largest local basis)."""
        return int(sum(self.n_modes.values()))

    @property
    def split(self) -> dict[str, slice]:
        """Where each variable's coefficients sit in :meth:`predict_coefficients`."""
        edges = np.cumsum([0, *self.n_modes.values()])
        return {v: slice(int(a), int(b)) for v, a, b in zip(self.variables, edges[:-1], edges[1:])}

    # ------------------------------------------------------------------ prediction
    def select(self, X: Any, states: Any | None = None) -> np.ndarray:
        """Local bases: the cluster of each row (classifier on ``X``, or nearest centroid of
        ``states``); global bases: zeros."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        if not self.local:
            return np.zeros(X.shape[0], dtype=int)
        lp = self.bases[self.variables[0]]
        return np.asarray(lp.select(inputs=X, states=states), dtype=int)

    def _coefficient_scales(self) -> np.ndarray:
        return np.repeat(self.scales_, list(self.n_modes.values()))

    @property
    def supports_std(self) -> bool:
        """Whether the regressor(s) give a predictive std (``return_std=True``)."""
        return bool(getattr(self.regressor, "supports_std", False))

    def _regress(self, reg: Surrogate, X: np.ndarray, return_std: bool) -> Any:
        """``reg.predict(X)`` as arrays; with ``return_std`` the pair ``(mean, std)``."""
        if not return_std:
            return np.asarray(reg.predict(X))
        if not self.supports_std:
            raise SurroflowError(f"the {self.regressor.kind} regressor gives no predictive std (return_std); "
                                 "kind 'gaussian_process' does")
        mean, std = reg.predict(X, return_std=True)
        return np.asarray(mean), np.asarray(std)

    def predict_trajectories(self, design: Any, return_std: bool = False) -> Any:
        """Trajectory formulation: coefficients ``(n, n_time, n_coefficients)`` at the training
        times for the parameter rows ``design`` (one regressor row per sample); with
        ``return_std`` also their predictive std (same shape)."""
        self._check_fitted()
        if self.formulation_ != "trajectory":
            raise SurroflowError("predict_trajectories needs the trajectory formulation; this model is "
                                 f"{self.formulation_!r}")
        design = np.atleast_2d(np.asarray(design, dtype=float))
        nt = len(self.times_)  # type: ignore[arg-type]
        sc = self._coefficient_scales()
        out = self._regress(self.regressor_, design, return_std)
        if return_std:
            return tuple(a.reshape(design.shape[0], nt, -1) * sc for a in out)
        return out.reshape(design.shape[0], nt, -1) * sc

    def _trajectory_rows(self, X: np.ndarray, return_std: bool = False) -> Any:
        """Coefficients of arbitrary ``(parameters, time)`` rows from the predicted trajectories
        of their distinct parameter rows (linear in time between the training times; so is the
        std, an upper bound of the std of the interpolant)."""
        times = np.asarray(self.times_, dtype=float)
        t = X[:, -1]
        if t.size and (t.min() < times[0] or t.max() > times[-1]):
            raise SurroflowError(f"the trajectory formulation predicts times in [{times[0]:g}, {times[-1]:g}] "
                                 f"(the training time axis); got times in [{t.min():g}, {t.max():g}]")
        design, which = np.unique(X[:, :-1], axis=0, return_inverse=True)
        out = self.predict_trajectories(design, return_std)
        which = which.ravel()
        i0 = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
        w = ((t - times[i0]) / (times[i0 + 1] - times[i0]))[:, None]   # 0 or 1 on the training times: exact
        parts = [(1.0 - w) * Z[which, i0] + w * Z[which, i0 + 1] for Z in (out if return_std else (out,))]
        return tuple(parts) if return_std else parts[0]

    def _coefficients(self, X: np.ndarray, labels: np.ndarray | None, return_std: bool = False) -> Any:
        """Coefficients of the rows ``X``; with ``return_std`` the pair ``(mean, std)``."""
        self._check_fitted()
        if not self.local:
            if self.formulation_ == "trajectory":
                return self._trajectory_rows(X, return_std)
            out = self._regress(self.regressor_, X, return_std)
            sc = self._coefficient_scales()
            return tuple(a * sc for a in out) if return_std else out * sc
        lp = self.bases[self.variables[0]]
        labels = self.select(X) if labels is None else labels
        Z = np.zeros((X.shape[0], self.n_online_modes))
        S = np.zeros_like(Z) if return_std else None
        for c, reg in enumerate(self.regressors_):
            sel = labels == c
            if np.any(sel):
                out = self._regress(reg, X[sel], return_std)
                if return_std:
                    Z[sel, :lp.n_modes_[c]] = out[0].reshape(int(sel.sum()), -1)
                    S[sel, :lp.n_modes_[c]] = out[1].reshape(int(sel.sum()), -1)  # type: ignore[index]
                else:
                    Z[sel, :lp.n_modes_[c]] = out.reshape(int(sel.sum()), -1)
        return (Z, S) if return_std else Z

    def predict_coefficients(self, X: Any) -> np.ndarray:
        """``(n_rows, n_coefficients)``: global, all variables' coefficients (``split``);
        local, those of the selected cluster (zero-padded to the largest basis)."""
        return self._coefficients(np.atleast_2d(np.asarray(X, dtype=float)), None)

    def _predict(self, X: np.ndarray, labels: np.ndarray | None, return_std: bool = False) -> Any:
        if not self.local:
            out = self._coefficients(X, None, return_std)
            Z, S = out if return_std else (out, None)
            fields = {v: _reconstruct(b, Z[:, self.split[v]]) for v, b in self.bases.items()}
            if not return_std:
                return fields
            return fields, {v: _reconstruct_std(b, S[:, self.split[v]]) for v, b in self.bases.items()}
        v = self.variables[0]
        lp = self.bases[v]
        labels = self.select(X) if labels is None else np.asarray(labels, dtype=int)
        out = self._coefficients(X, labels, return_std)
        Z, S = out if return_std else (out, None)
        field = np.empty((X.shape[0], lp.weights_.size))
        std = np.empty_like(field) if return_std else None
        for c, pod in enumerate(lp.pods_):
            sel = labels == c
            if np.any(sel):
                field[sel] = pod.inverse_transform(Z[sel, :lp.n_modes_[c]])
                if return_std:
                    std[sel] = _reconstruct_std(pod, S[sel, :lp.n_modes_[c]])  # type: ignore[index]
        return ({v: field}, {v: std}) if return_std else {v: field}

    def predict(self, X: Any, return_std: bool = False) -> Any:
        """Predicted fields ``{variable: (n_rows, n_space)}``; with ``return_std`` also their
        pointwise predictive std (coefficients taken as independent; regressors with a std only)."""
        return self._predict(np.atleast_2d(np.asarray(X, dtype=float)), None, return_std)

    def predict_fields(self, design: Any, times: Any | None = None, return_std: bool = False) -> Any:
        """Fields ``{variable: (n, [n_time], space...)}`` for the parameter rows ``design``;
        ``times`` defaults to the training time coordinate (none for steady problems).  With
        ``return_std``, ``(fields, stds)``: the pointwise predictive std of each field (see
        :meth:`predict`)."""
        design = np.atleast_2d(np.asarray(design, dtype=float))
        t = self.times_ if times is None else np.asarray(times, dtype=float)
        nt = None if t is None else len(t)

        def shaped(rows: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
            return {v: snap.fields_from_rows(a, design.shape[0], nt, self.space_[v]["shape"]) for v, a in rows.items()}
        if self.formulation_ == "trajectory" and np.array_equal(t, self.times_):
            # the fast path: one regressor row per sample, no (sample, time) rows to expand
            out = self.predict_trajectories(design, return_std)
            Z, S = (z.reshape(-1, z.shape[2]) for z in out) if return_std else (out.reshape(-1, out.shape[2]), None)
            fields = shaped({v: _reconstruct(b, Z[:, self.split[v]]) for v, b in self.bases.items()})
            if not return_std:
                return fields
            return fields, shaped({v: _reconstruct_std(b, S[:, self.split[v]]) for v, b in self.bases.items()})
        out = self.predict(snap.surrogate_inputs(design, t), return_std)
        return (shaped(out[0]), shaped(out[1])) if return_std else shaped(out)

    def field_layout(self, times: Any | None = None) -> dict[str, dict[str, Any]]:
        """Per predicted variable: its ``dims`` (``([time], space...)``, without ``sample``), the
        ``coords`` of those dimensions (``times`` default: the training times) and its
        ``attrs`` (units, long name): the layout of :meth:`predict_dataset`."""
        t = self.times_ if times is None else np.asarray(times, dtype=float)
        td = self.time_dim_ or "time"
        out = {}
        for v in self.variables:
            sp = self.space_[v]
            coords: dict[str, Any] = {d: self.coords_[d] for d in sp["dims"] if d in self.coords_}
            if t is not None:
                coords[td] = xr.DataArray(np.asarray(t, dtype=float), dims=(td,))
            out[v] = {"dims": (*(() if t is None else (td,)), *sp["dims"]), "coords": coords,
                      "attrs": dict(sp["attrs"])}
        return out

    def predict_dataset(self, design: Any, times: Any | None = None, return_std: bool = False) -> xr.Dataset:
        """:meth:`predict_fields` as a dataset: ``<variable>(sample, [time], space...)`` with the
        units and space coordinates of the training data (and ``<variable>_std`` with
        ``return_std``); attribute ``time_dim`` (``none`` for steady problems)."""
        out = self.predict_fields(design, times, return_std=return_std)
        fields, stds = out if return_std else (out, {})
        coords: dict[str, Any] = {}
        data: dict[str, Any] = {}
        for v, lay in self.field_layout(times).items():
            dims = ("sample", *lay["dims"])
            data[v] = (dims, fields[v], lay["attrs"])
            if v in stds:
                data[f"{v}_std"] = (dims, stds[v], {**{k: lay["attrs"][k] for k in ("units",) if k in lay["attrs"]},
                                                    "long_name": f"predictive std of {v}"})
            coords.update(lay["coords"])
        return xr.Dataset(data, coords=coords, attrs={"time_dim": self.time_dim_ or "none"})

    # ------------------------------------------------------------------ errors
    def error_split(self, X: Any, snapshots: Mapping[str, Any], groups: Any | None = None) -> dict[str, dict[str, Any]]:
        """Relative weighted L2 errors per variable with ``total^2 = projection^2 + selection^2
        + regression^2`` (aggregates over all rows; ``per_row``; ``per_group`` for ``groups``,
        e.g. the test sample of each row) and ``selection_accuracy``.

        Local bases with the ``nearest_centroid`` selector select by the true state (the
        selector has no other input); a classifier selector selects by ``X``, and its accuracy
        is its agreement with the nearest centroid of the true state.
        """
        X, S = self._rows(X, snapshots)
        g = None if groups is None else np.asarray(groups)
        if not self.local:
            pred = self._predict(X, None)
            out = {}
            for v, b in self.bases.items():
                P = b.project(S[v])
                out[v] = {**_split(S[v], P, P, pred[v], b.weights_, g), "selection_accuracy": 1.0}
            return out
        v = self.variables[0]
        lp = self.bases[v]
        u = S[v]
        state_labels = lp.select_by_state(u)
        sel = state_labels if lp.selector == "nearest_centroid" else self.select(X)
        pred = self._predict(X, sel)[v]
        res = _split(u, lp.project(u, lp.best_labels(u)), lp.project(u, sel), pred, lp.weights_, g)
        res["selection_accuracy"] = float(np.mean(sel == state_labels))
        res["labels_selected"] = sel
        return {v: res}

    # ------------------------------------------------------------------ storage
    def to_dataset(self, attrs: Mapping[str, Any] | None = None) -> xr.Dataset:
        """The whole model in one dataset (bases under ``<variable>__``, regressors under
        ``regressor__`` or ``regressor<cluster>__``)."""
        self._check_fitted()
        parts = []
        space_dims = sorted({d for s in self.space_.values() for d in s["dims"]})
        for v, b in self.bases.items():
            sp = self.space_[v]
            coords = {d: self.coords_[d] for d in sp["dims"] if d in self.coords_}
            bds = b.to_dataset(tuple(sp["dims"]), coords, tuple(sp["shape"]))
            parts.append(_prefixed(bds, f"{v}__", space_dims))
        regs = self.regressors_ if self.local else [self.regressor_]
        for c, reg in enumerate(regs):
            parts.append(codec.to_dataset(reg, prefix=f"regressor{c if self.local else ''}__"))
        if self.calibration_ is not None:
            parts.append(self.calibration_.to_dataset(self.space_, self.time_dim_))
        ds = xr.merge(parts, combine_attrs="no_conflicts", compat="override", join="outer")
        ds.attrs = {}
        for p in parts:
            ds.attrs.update(p.attrs)
        if self.parameters_ is not None:
            ds = ds.assign_coords({k: self.parameters_[k] for k in self.parameters_.coords})
        if self.time_dim_ is not None and self.times_ is not None:
            ds = ds.assign_coords({self.time_dim_: (self.time_dim_, self.times_)})
        ds.attrs.update({
            "model": "reduced_model", "basis": self.basis,
            "variables": json.dumps(self.variables), "input_names": json.dumps(self.input_names),
            "time_dim": self.time_dim_ or "", "coefficient_scales": json.dumps([float(s) for s in self.scales_]),
            "n_modes": json.dumps(self.n_modes), "n_online_modes": self.n_online_modes,
            "regressor_kind": self.regressor.kind, "formulation": self.formulation_,
            "space": json.dumps({v: {"dims": list(s["dims"]), "shape": [int(n) for n in s["shape"]]}
                                 for v, s in self.space_.items()}),
            "field_attrs": json.dumps({v: s["attrs"] for v, s in self.space_.items()}, default=str),
        })
        ds.attrs.update(dict(attrs or {}))
        return ds

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> "ReducedModel":
        """The model written by :meth:`to_dataset` (no pickles; a classifier selector is refit
        deterministically from its stored training data)."""
        if ds.attrs.get("model") != "reduced_model":
            raise SurroflowError("the dataset holds no reduced model (attribute 'model' is not 'reduced_model')")
        variables = json.loads(ds.attrs["variables"])
        local = ds.attrs["basis"] == "local"
        bases: dict[str, Any] = {}
        for v in variables:
            sub = _unprefixed(ds, f"{v}__")
            bases[v] = LocalPOD.from_dataset(sub) if local else POD.from_dataset(sub)
        n_regs = len(bases[variables[0]].pods_) if local else 1
        regs = [codec.from_dataset(ds, prefix=f"regressor{c if local else ''}__") for c in range(n_regs)]
        formulation = str(ds.attrs.get("formulation", "pointwise"))  # files before the trajectory formulation
        if formulation not in FORMULATIONS[1:]:
            raise SurroflowError(f"the model file's formulation {formulation!r} is not one of {list(FORMULATIONS[1:])}")
        model = cls(bases, clone(regs[0]), formulation=formulation)
        model.formulation_ = formulation
        if local:
            model.regressors_ = regs
        else:
            model.regressor_ = regs[0]
        model.scales_ = np.asarray(json.loads(ds.attrs["coefficient_scales"]), dtype=float)
        model.input_names = list(json.loads(ds.attrs["input_names"]))
        space = json.loads(ds.attrs["space"])
        fattrs = json.loads(ds.attrs.get("field_attrs", "{}"))
        model.space_ = {v: {"dims": tuple(s["dims"]), "shape": tuple(s["shape"]), "attrs": fattrs.get(v, {})}
                        for v, s in space.items()}
        model.coords_ = {d: ds[d].reset_coords(drop=True) for s in model.space_.values() for d in s["dims"]
                         if d in ds.coords}
        td = str(ds.attrs.get("time_dim", "")) or None
        model.time_dim_ = td
        model.times_ = np.asarray(ds[td].values, dtype=float) if td and td in ds.coords else None
        if formulation == "trajectory" and model.times_ is None:
            raise SurroflowError("the model file has the trajectory formulation but no time coordinate")
        model.calibration_ = Calibration.from_dataset(ds, variables)
        if "parameter" in ds.coords:
            model.parameters_ = xr.Dataset(coords={c: ds[c] for c in ("parameter", "parameter_units",
                                                                      "parameter_low", "parameter_high")
                                                   if c in ds.coords})
        return model


__all__ = ["ReducedModel", "PARTS", "FORMULATIONS"]
