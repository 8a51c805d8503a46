"""Simulators that misbehave on purpose, for fault tests of the generate stage.

:class:`FlakyBurgers` is :class:`~surroflow.simulators.burgers.Burgers1D` with injected faults
keyed on the sample's ``amplitude``: it exists for the test suite (a failing, a diverging and a
hanging sample in one design) and has no scientific use.
"""
from __future__ import annotations

import time
from typing import Any, ClassVar, Mapping

import numpy as np

from .base import SampleFailure
from .burgers import Burgers1D, _bad, _float_setting


class FlakyBurgers(Burgers1D):
    """Burgers with faults injected above amplitude thresholds (for tests only).

    Extra settings (each ``None`` = off, the default):

    ``fail_above_amplitude``
        Raise ``SampleFailure("injected failure ...", "failed")`` when ``amplitude`` exceeds it.
    ``nan_above_amplitude``
        Return the field with its last snapshot set to NaN (a late blow-up; the generate stage
        flags it ``diverged``) when ``amplitude`` exceeds it.
    ``sleep_above_amplitude``, ``sleep_s`` (default 1.0 s)
        ``time.sleep(sleep_s)`` before solving when ``amplitude`` exceeds it (to trigger the
        per-sample timeout).

    The checks run in this order: sleep, fail, solve, NaN.
    """

    name: ClassVar[str] = "flaky_burgers"
    setting_defaults: ClassVar[Mapping[str, Any]] = {
        **Burgers1D.setting_defaults,
        "fail_above_amplitude": None, "nan_above_amplitude": None,
        "sleep_above_amplitude": None, "sleep_s": 1.0,
    }

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        s = self.settings
        self.fail_above = _float_setting("fail_above_amplitude", s["fail_above_amplitude"],
                                         positive=False, optional=True)
        self.nan_above = _float_setting("nan_above_amplitude", s["nan_above_amplitude"],
                                        positive=False, optional=True)
        self.sleep_above = _float_setting("sleep_above_amplitude", s["sleep_above_amplitude"],
                                          positive=False, optional=True)
        sleep_s = _float_setting("sleep_s", s["sleep_s"], positive=False)
        if sleep_s is None or sleep_s < 0:
            raise _bad("sleep_s", "expected a number >= 0", s["sleep_s"])
        self.sleep_s = sleep_s

    def run_sample(self, params: Mapping[str, float]) -> Mapping[str, np.ndarray]:
        amplitude = self.resolve(params)["amplitude"]
        if self.sleep_above is not None and amplitude > self.sleep_above:
            time.sleep(self.sleep_s)
        if self.fail_above is not None and amplitude > self.fail_above:
            raise SampleFailure(f"injected failure: amplitude {amplitude:g} > "
                                f"fail_above_amplitude {self.fail_above:g}", "failed")
        out = {k: np.array(v, dtype=float) for k, v in super().run_sample(params).items()}
        if self.nan_above is not None and amplitude > self.nan_above:
            out["u"][-1, :] = np.nan
        return out


__all__ = ["FlakyBurgers"]
