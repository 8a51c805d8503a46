"""The Python API: load a model that a study trained and use it.

    import surroflow as sf
    model = sf.load_model("results/burgers", "gp")          # study folder + model name
    ds = model.predict({"nu": 0.05, "amplitude": 1.0})       # xarray.Dataset: u(sample, time, x)
    ds = model.predict(design_dataset, return_std=True)      # batched; u_std where the model has one
    ds = model.predict(design_dataset, interval=0.95)        # u_lower, u_upper: the conformal band
    fc = sf.load_model("results/lorenz63_forecast", "opinf")
    traj = fc.rollout(initial_states, 500)                    # forecasters

A parametric model (:class:`ParametricModel`) is the study's reduced model (global or local
bases + regressor) read from ``<study>/train/<name>.nc``; a forecaster (:class:`ForecasterModel`)
the model of ``train_forecaster``.  Loading never unpickles: model files hold arrays and JSON
(:mod:`surroflow.surrogates.state`).  Inputs are checked by name against the parameters the
model was trained on, and against their training ranges: outside them a
:class:`~surroflow.SurroflowWarning` names the parameter (``extrapolate=True``, the default) or
a :class:`~surroflow.SurroflowError` refuses (``extrapolate=False``).  Prediction is batched:
all rows go through the regressor and the reconstruction in one call.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr

from . import SurroflowError, SurroflowWarning
from .io import open_dataset

#: the stages whose files :func:`load_model` reads
MODEL_STAGES = ("train_surrogate", "train_forecaster")


def model_path(study: str | os.PathLike[str], name: str) -> Path:
    """``<study>/train/<name>.nc``, with an error that lists the models the folder holds."""
    folder = Path(study)
    if not folder.is_dir():
        raise SurroflowError(f"{folder}: no such study folder (expected e.g. results/<study>)")
    path = folder / "train" / f"{name}.nc"
    if not path.is_file():
        have = sorted(p.stem for p in (folder / "train").glob("*.nc"))
        raise SurroflowError(f"{path}: no model {name!r} in {folder}; trained models there: {have or 'none'}")
    return path


def load_model(study: str | os.PathLike[str], name: str) -> "ParametricModel | ForecasterModel":
    """The model ``name`` of the study folder ``study`` (e.g. ``results/burgers``)."""
    path = model_path(study, name)
    stage = str(open_dataset(path, stage=MODEL_STAGES, load=False).attrs["stage"])
    if stage == "train_surrogate":
        from .evaluation.parametric import load_model as load_surrogate
        return ParametricModel(load_surrogate(str(path)), path)
    from .evaluation.forecast import load_forecaster
    return ForecasterModel(load_forecaster(path), path)


class ParametricModel:
    """A trained parametric surrogate: parameters -> named fields (see the module docstring).

    Attributes: ``name``, ``kind``, ``basis`` (``global``, ``local`` or ``none``: full field), ``parameters`` (names,
    in order), ``units`` and ``bounds`` (``{name: (low, high)}``, the training ranges),
    ``variables`` (the predicted fields), ``supports_std``, ``reduced_model`` (the
    :class:`~surroflow.surrogates.reduced.ReducedModel`).
    """

    def __init__(self, loaded: Any, path: Path) -> None:
        self.path = path
        self.name, self.kind = loaded.name, loaded.kind
        self.reduced_model = m = loaded.model
        self.basis = loaded.basis
        self.variables: list[str] = list(m.variables)
        p = m.parameters_
        if p is None:
            raise SurroflowError(f"{path}: the model file records no parameters; rerun train_surrogate")
        self.parameters: list[str] = [str(n) for n in p["parameter"].values]
        units = p["parameter_units"].values if "parameter_units" in p.coords else [""] * len(self.parameters)
        self.units = dict(zip(self.parameters, (str(u) for u in units)))
        self.bounds: dict[str, tuple[float, float]] = {}
        if "parameter_low" in p.coords and "parameter_high" in p.coords:
            self.bounds = {n: (float(lo), float(hi)) for n, lo, hi in
                           zip(self.parameters, p["parameter_low"].values, p["parameter_high"].values)}

    @property
    def supports_std(self) -> bool:
        return self.reduced_model.supports_std

    def __repr__(self) -> str:
        return (f"ParametricModel({self.name!r}, kind={self.kind!r}, basis={self.basis!r}, "
                f"parameters={self.parameters}, variables={self.variables})")

    # ------------------------------------------------------------------ inputs
    def design_matrix(self, inputs: Any, extrapolate: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """``(n, n_parameters)`` rows in the model's parameter order from a mapping of names to
        values (scalars or equal-length sequences), a design dataset (``design(sample,
        parameter)``), a DataArray with a ``parameter`` dimension, a DataFrame with one column
        per parameter, or an array whose columns are the parameters in order; and the sample
        ids where the input had them.  Names and ranges are checked (module docstring)."""
        samples = None
        if isinstance(inputs, xr.Dataset):
            if "design" not in inputs:
                raise SurroflowError("a dataset input needs a 'design(sample, parameter)' variable (a design file)")
            inputs = inputs["design"]
        if isinstance(inputs, xr.DataArray):
            if "parameter" not in inputs.dims:
                raise SurroflowError(f"a DataArray input needs a 'parameter' dimension; it has {list(inputs.dims)}")
            self._check_names([str(n) for n in inputs["parameter"].values])
            da = inputs.sel(parameter=self.parameters)
            other = [d for d in da.dims if d != "parameter"]
            if len(other) > 1:
                raise SurroflowError(f"a DataArray input has one dimension beside 'parameter'; it has {other}")
            if other and other[0] in da.coords:
                samples = np.asarray(da[other[0]].values)
            X = np.asarray(da.transpose(*other, "parameter").values, dtype=float).reshape(-1, len(self.parameters))
        elif isinstance(inputs, Mapping) or hasattr(inputs, "columns"):
            names = [str(k) for k in (inputs.columns if hasattr(inputs, "columns") else inputs.keys())]
            self._check_names(names)
            cols = [np.atleast_1d(np.asarray(inputs[n], dtype=float)) for n in self.parameters]
            lengths = {n: c.size for n, c in zip(self.parameters, cols)}
            if len(set(lengths.values())) > 1:
                raise SurroflowError(f"parameter values of different lengths: {lengths}")
            X = np.column_stack([c.ravel() for c in cols])
        else:
            X = np.atleast_2d(np.asarray(inputs, dtype=float))
            if X.ndim != 2 or X.shape[1] != len(self.parameters):
                raise SurroflowError(f"an array input has one column per parameter {self.parameters}; got shape "
                                     f"{np.shape(inputs)}")
        bad = ~np.isfinite(X)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise SurroflowError(f"parameter {self.parameters[j]!r} of input row {i} is {X[i, j]}: values must be finite")
        self._check_ranges(X, extrapolate)
        return X, samples

    def _check_names(self, names: Sequence[str]) -> None:
        missing = [n for n in self.parameters if n not in names]
        unknown = [n for n in names if n not in self.parameters]
        if missing or unknown:
            what = "; ".join(s for s in (f"missing {missing}" if missing else "",
                                         f"unknown {unknown}" if unknown else "") if s)
            raise SurroflowError(f"model {self.name!r} takes the parameters {self.parameters}: {what}")

    def _check_ranges(self, X: np.ndarray, extrapolate: bool) -> None:
        for j, n in enumerate(self.parameters):
            if n not in self.bounds:
                continue
            lo, hi = self.bounds[n]
            out = (X[:, j] < lo) | (X[:, j] > hi)
            if out.any():
                msg = (f"parameter {n!r}: {int(out.sum())} of {len(X)} input rows outside the training range "
                       f"[{lo:g}, {hi:g}] (e.g. {X[out, j][0]:g})")
                if not extrapolate:
                    raise SurroflowError(msg + "; extrapolate=False refuses them")
                warnings.warn(msg + ": the surrogate extrapolates there", SurroflowWarning, stacklevel=3)

    # ------------------------------------------------------------------ prediction
    def predict(self, inputs: Any, return_std: bool = False, extrapolate: bool = True,
                times: Any | None = None, interval: float | None = None) -> xr.Dataset:
        """Fields for the parameter rows of ``inputs`` (see :meth:`design_matrix`), as a dataset
        ``<variable>(sample, [time], space...)`` with units and coordinates, and
        ``design(sample, parameter)``; with ``return_std`` also ``<variable>_std`` (the pointwise
        predictive std: Gaussian-process models only).  ``times`` defaults to the training times.

        ``interval`` (a level in (0, 1), e.g. 0.95) adds ``<variable>_lower`` and
        ``<variable>_upper``: the model's conformal band ``u_hat -+ q s`` at that level, which
        holds a *whole* field (every variable, point and time) with that probability for inputs
        drawn like the calibration design (:mod:`surroflow.surrogates.conformal`); the band's
        calibration (method, samples) is in the attributes.  It exists at the training times only,
        and at levels the number of calibration samples allows."""
        if return_std and not self.supports_std:
            raise SurroflowError(f"model {self.name!r} ({self.kind}) gives no predictive std; "
                                 "kind 'gaussian_process' does")
        half = self._band(interval, times) if interval is not None else None
        X, samples = self.design_matrix(inputs, extrapolate)
        ds = self.reduced_model.predict_dataset(X, times, return_std=return_std)
        if half is not None:
            cal = self.reduced_model.calibration_
            for v in self.variables:
                h = half[v].reshape(ds[v].shape[1:])
                for side, sign in (("lower", -1.0), ("upper", 1.0)):
                    ds[f"{v}_{side}"] = (ds[v].dims, ds[v].values + sign * h,
                                         {**ds[v].attrs, "long_name": f"{side} bound of the {interval:g} conformal "
                                                                      f"band of {v}"})
            ds.attrs.update({"interval_level": float(interval), "interval_calibration": cal.method,
                             "interval_n_calibration": cal.n})
        ds = ds.assign(design=(("sample", "parameter"), X, {"long_name": "parameters of the query"}))
        ds = ds.assign_coords(sample=samples if samples is not None else np.arange(X.shape[0]),
                              parameter=self.parameters)
        ds["parameter_units"] = ("parameter", [self.units[n] for n in self.parameters])
        ds = ds.set_coords("parameter_units")
        ds.attrs.update({"model_name": self.name, "model_kind": self.kind, "basis": self.basis,
                         "model_file": str(self.path)})
        return ds


    def _band(self, level: float, times: Any | None) -> dict[str, np.ndarray]:
        """Half-widths of the conformal band at ``level`` (a clear error when there is none)."""
        m = self.reduced_model
        cal = m.calibration_
        why = ("the model file has no conformal band (rerun train_surrogate)" if cal is None
               else cal.why_not(level) if 0.0 < float(level) < 1.0 else f"a level must lie in (0, 1), got {level}")
        if why:
            raise SurroflowError(f"model {self.name!r}: no conformal interval at level {level}: {why}")
        if times is not None and (m.times_ is None or not np.array_equal(np.asarray(times, dtype=float),
                                                                         np.asarray(m.times_, dtype=float))):
            raise SurroflowError(f"model {self.name!r}: the conformal band was calibrated at the training times "
                                 "only; predict without times= for an interval")
        return cal.halfwidth(level)


class ForecasterModel:
    """A trained forecaster of a chaotic system: ``rollout(initial_state, n_steps)``.

    Attributes: ``name``, ``kind``, ``state`` (``full`` or ``pod``), ``dt`` (the sample
    interval it steps), ``n_history`` (states it needs), ``n_state`` (components per state).
    """

    def __init__(self, loaded: Any, path: Path) -> None:
        self.path = path
        self.name, self.kind, self.state = loaded.name, loaded.kind, loaded.state
        self.model = loaded.model
        self.dt = float(loaded.dt_sample)
        self.n_history = int(self.model.n_history_)
        self.n_state = int(self.model.n_state_)

    def __repr__(self) -> str:
        return (f"ForecasterModel({self.name!r}, kind={self.kind!r}, state={self.state!r}, dt={self.dt:g}, "
                f"n_state={self.n_state}, n_history={self.n_history})")

    def rollout(self, initial_state: Any, n_steps: int) -> xr.DataArray:
        """Autoregressive forecast of ``n_steps`` sample intervals from ``initial_state``: one state
        ``(n_state,)``, a history ``(n_history, n_state)`` or a batch ``(n, n_history, n_state)``
        (the last ``n_history`` states are used).  Returns ``(sample, lead, component)`` with the
        lead time as coordinate; a rollout that blows up is NaN from that step on."""
        a = np.asarray(initial_state, dtype=float)
        if a.ndim == 1:
            a = a[None, None, :]
        elif a.ndim == 2:
            a = a[None]
        if a.ndim != 3 or a.shape[2] != self.n_state:
            raise SurroflowError(f"model {self.name!r} steps states of {self.n_state} components; initial_state "
                                 f"has shape {np.shape(initial_state)}")
        if a.shape[1] < self.n_history:
            raise SurroflowError(f"model {self.name!r} needs the last {self.n_history} states; got {a.shape[1]}")
        if int(n_steps) < 1:
            raise SurroflowError(f"n_steps must be >= 1, got {n_steps}")
        out = self.model.rollout(a, int(n_steps))
        return xr.DataArray(out, dims=("sample", "lead", "component"),
                            coords={"lead": ("lead", self.dt * np.arange(1, int(n_steps) + 1), {"long_name": "lead time"})},
                            attrs={"model_name": self.name, "model_kind": self.kind, "model_file": str(self.path)})


__all__ = ["load_model", "model_path", "ParametricModel", "ForecasterModel"]
