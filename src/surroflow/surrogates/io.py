"""Saving and loading surrogates as NetCDF: hyperparameters as JSON, state as arrays."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .. import SurroflowError
from ..io import open_dataset, write_dataset
from . import make_surrogate
from .base import Surrogate


def surrogate_to_dataset(model: Surrogate, attrs: dict[str, Any] | None = None) -> xr.Dataset:
    state = model.get_state()
    data_vars = {}
    for name, arr in state.items():
        arr = np.asarray(arr)
        dims = tuple(f"{name}_dim{i}" for i in range(arr.ndim))
        data_vars[f"state__{name}"] = (dims, arr)
    return xr.Dataset(data_vars, attrs={"surrogate_kind": model.kind,
                                        "hyperparameters": json.dumps(model.get_params(), default=str),
                                        **(attrs or {})})


def surrogate_from_dataset(ds: xr.Dataset) -> Surrogate:
    kind = ds.attrs.get("surrogate_kind")
    if not kind:
        raise SurroflowError("dataset holds no surrogate (attribute 'surrogate_kind' missing)")
    model = make_surrogate(str(kind), **json.loads(ds.attrs["hyperparameters"]))
    state = {str(k)[len("state__"):]: ds[k].values for k in ds.data_vars if str(k).startswith("state__")}
    return model.set_state(state)


def save_surrogate(model: Surrogate, path: str | Path, attrs: dict[str, Any] | None = None) -> None:
    write_dataset(surrogate_to_dataset(model, attrs), path)


def load_surrogate(path: str | Path) -> Surrogate:
    return surrogate_from_dataset(open_dataset(path))
