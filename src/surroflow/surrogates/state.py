"""One pickle-free NetCDF codec for every estimator (surrogates and forecasters).

An estimator becomes a dataset: each array of ``get_state()`` is a variable
``<prefix>state__<name>`` with dimensions ``<prefix><name>_dim<i>``; the family, kind and
hyperparameters (JSON) are the attributes ``<prefix>estimator_family``, ``..._kind`` and
``..._params``.  A state entry that is itself an estimator is stored the same way under the
prefix ``<prefix><name>__`` (its name listed in ``<prefix>estimator_nested``), so models that
hold other models (one regressor per local basis, a forecaster in a POD basis) need nothing
else.  Torch weights are ``state_dict`` arrays; loading unpickles nothing.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import xarray as xr

from .. import SurroflowError
from ..io import open_dataset, write_dataset
from .base import Estimator
from .registry import make_estimator


def _json_default(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


def to_dataset(estimator: Estimator, attrs: Mapping[str, Any] | None = None, prefix: str = "") -> xr.Dataset:
    """The fitted ``estimator`` as a dataset (variables and attributes under ``prefix``)."""
    data_vars: dict[str, Any] = {}
    nested: list[str] = []
    parts: list[xr.Dataset] = []
    for name, value in estimator.get_state().items():
        if isinstance(value, Estimator):
            nested.append(name)
            parts.append(to_dataset(value, prefix=f"{prefix}{name}__"))
            continue
        arr = np.asarray(value)
        if arr.dtype == bool:
            arr = arr.astype("i1")
        data_vars[f"{prefix}state__{name}"] = (tuple(f"{prefix}{name}_dim{i}" for i in range(arr.ndim)), arr)
    ds = xr.Dataset(data_vars)
    for part in parts:
        ds = ds.merge(part, combine_attrs="no_conflicts")
    ds.attrs.update({f"{prefix}estimator_family": estimator.family, f"{prefix}estimator_kind": estimator.kind,
                     f"{prefix}estimator_params": json.dumps(estimator.get_params(deep=False), default=_json_default),
                     f"{prefix}estimator_nested": json.dumps(nested)})
    ds.attrs.update(dict(attrs or {}))
    return ds


def from_dataset(ds: xr.Dataset, prefix: str = "") -> Any:
    """The estimator stored by :func:`to_dataset` under ``prefix`` (hyperparameters and state)."""
    kind = ds.attrs.get(f"{prefix}estimator_kind")
    if not kind:
        raise SurroflowError(f"the dataset holds no estimator (attribute '{prefix}estimator_kind' missing)")
    family = str(ds.attrs.get(f"{prefix}estimator_family") or "") or None
    params = json.loads(str(ds.attrs.get(f"{prefix}estimator_params", "{}")))
    model = make_estimator(str(kind), params, family, seed=None)
    head = f"{prefix}state__"
    state: dict[str, Any] = {str(k)[len(head):]: ds[k].values for k in ds.data_vars if str(k).startswith(head)}
    for name in json.loads(str(ds.attrs.get(f"{prefix}estimator_nested", "[]"))):
        state[name] = from_dataset(ds, prefix=f"{prefix}{name}__")
    return model.set_state(state)


def save(estimator: Estimator, path: str | Path, attrs: Mapping[str, Any] | None = None) -> Path:
    """Write :func:`to_dataset` atomically (:func:`surroflow.io.write_dataset`)."""
    return write_dataset(to_dataset(estimator, attrs), path)


def load(path: str | Path) -> Any:
    """The estimator in the file ``path`` (written by :func:`save`)."""
    return from_dataset(open_dataset(path))


__all__ = ["to_dataset", "from_dataset", "save", "load"]
