"""A forecaster in a POD basis: any forecaster stepping the leading POD coefficients."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import xarray as xr

from .. import SurroflowError
from ..reduction import POD
from ..surrogates.registry import estimator_class, make_estimator, register
from .base import Forecaster, as_history

_POD_ARRAYS = ("modes", "singular_values", "energy", "mean", "weights")


@register("forecaster", "reduced")
class Reduced(Forecaster):
    """A forecaster of ``inner_kind`` (hyperparameters ``inner_params``) acting on the ``rank``
    leading POD coefficients.

    The POD (exact SVD, mean-centred, uniform weights) is fitted on all training snapshots;
    forecasts are lifted back to the full state, so they carry the projection error.  ``rank``
    defaults to the schema's ``forecast.rank``.
    """

    #: value spec of each hyperparameter, checked before any job (surrogates.registry.check_value)
    hyperparameter_specs = {"inner_kind": "str", "inner_params": "mapping|None", "rank": "int>=1"}

    def __init__(self, inner_kind: str = "ngrc", inner_params: Mapping[str, Any] | None = None,
                 rank: int = 20) -> None:
        self.inner_kind = inner_kind
        self.inner_params = inner_params
        self.rank = rank

    @property
    def uses_torch(self) -> bool:  # type: ignore[override]
        return bool(estimator_class(self.inner_kind, "forecaster").uses_torch)

    @property
    def n_history_(self) -> int:
        return self.inner_.n_history_ if hasattr(self, "inner_") else 1

    def _inner(self) -> Forecaster:
        return make_estimator(self.inner_kind, dict(self.inner_params or {}), "forecaster", seed=None,
                              where=f"reduced forecaster: inner {self.inner_kind!r}")

    def _fit(self, X):
        d = X.shape[2]
        if int(self.rank) < 1:
            raise SurroflowError(f"reduced: rank must be >= 1, got {self.rank}")
        flat = X.reshape(-1, d)
        self.pod_ = POD(method="exact", rank=int(min(self.rank, d)), energy=None).fit(flat)
        A = self.pod_.transform(flat).reshape(X.shape[0], X.shape[1], -1)
        self.inner_ = self._inner().fit(A, dt=self.dt_)
        resid = flat - self.pod_.inverse_transform(A.reshape(-1, A.shape[2]))
        self.projection_error_ = np.asarray(np.sqrt(np.mean(resid ** 2)) / np.sqrt(np.mean(X ** 2)))

    def predict_step(self, history):
        return self.rollout(history, 1)[:, 0]

    def rollout(self, initial, n_steps):
        self._check_fitted()
        h = as_history(initial, self.n_state_)
        a = self.pod_.transform(h.reshape(-1, h.shape[2])).reshape(h.shape[0], h.shape[1], -1)
        with np.errstate(all="ignore"):
            pa = self.inner_.rollout(a, n_steps)
            return self.pod_.inverse_transform(pa.reshape(-1, pa.shape[2])).reshape(h.shape[0], int(n_steps), -1)

    def _get_state(self):
        pds = self.pod_.to_dataset(("component",), {}, (int(self.n_state_),))
        st: dict[str, Any] = {f"pod_{k}_": pds[k].values for k in _POD_ARRAYS}
        st["projection_error_"] = self.projection_error_
        st["inner_"] = self.inner_         # a nested estimator (the state codec stores it by prefix)
        return st

    def _set_state(self, state):
        pds = xr.Dataset({"modes": (("mode", "component"), np.asarray(state["pod_modes_"], dtype=float)),
                          "singular_values": (("mode_all",), np.asarray(state["pod_singular_values_"], dtype=float)),
                          "energy": (("mode_all",), np.asarray(state["pod_energy_"], dtype=float)),
                          "mean": (("component",), np.asarray(state["pod_mean_"], dtype=float)),
                          "weights": (("component",), np.asarray(state["pod_weights_"], dtype=float))},
                         attrs={"method": "exact", "energy_threshold": -1.0})
        self.pod_ = POD.from_dataset(pds)
        self.projection_error_ = np.asarray(state.get("projection_error_", np.nan))
        inner = state["inner_"]
        if not isinstance(inner, Forecaster):
            raise SurroflowError("reduced forecaster state: the inner forecaster is missing")
        self.inner_ = inner


__all__ = ["Reduced"]
