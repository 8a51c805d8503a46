"""A simulator whose listed samples fail, for the all-samples-failed tests (tests/fault/test_failures.py).

Imported by module path (``python:surroflow_failure_sims:FailListedBurgers`` with this folder on
PYTHONPATH), never by the package.
"""
from __future__ import annotations

from typing import Any, ClassVar, Mapping

import numpy as np
import xarray as xr

from surroflow.simulators.base import SampleFailure
from surroflow.simulators.burgers import Burgers1D


class FailListedBurgers(Burgers1D):
    """Burgers whose samples listed in a design file fail.

    Setting ``fail_design``: the path of a ``make_design`` file (relative to the working folder,
    e.g. ``results/<study>/design/test.nc``); a sample whose parameters equal a row of it raises
    :class:`SampleFailure`, the others solve normally.  So ``fail_design`` = the test design
    makes every test sample fail and no training sample (the designs are independent).
    """

    name: ClassVar[str] = "fail_listed_burgers"
    setting_defaults: ClassVar[Mapping[str, Any]] = {**Burgers1D.setting_defaults, "fail_design": None}

    def _listed(self, params: Mapping[str, float]) -> bool:
        path = self.settings["fail_design"]
        if not path:
            return False
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            names = [str(p) for p in ds["parameter"].values]
            rows = np.asarray(ds["design"].values, dtype=float)
        point = np.array([float(params[n]) for n in names])
        return bool(np.any(np.all(np.isclose(rows, point, rtol=1e-12, atol=0.0), axis=1)))

    def run_sample(self, params: Mapping[str, float]) -> Mapping[str, np.ndarray]:
        if self._listed(params):
            raise SampleFailure(f"injected failure: sample listed in {self.settings['fail_design']}", "failed")
        return super().run_sample(params)


__all__ = ["FailListedBurgers"]
