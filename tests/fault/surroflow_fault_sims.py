"""Simulators that kill the process running them, for the worker-fault tests.

Imported by module path in dask worker processes (``python:surroflow_fault_sims:KillOnceBurgers``
with this folder on PYTHONPATH), never by the package.
"""
from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np

from surroflow.simulators.burgers import Burgers1D


class KillOnceBurgers(Burgers1D):
    """Burgers whose first sample SIGKILLs the process running it (a dask worker dying mid-task).

    Setting ``kill_marker``: a path; the first call creates it atomically and kills its own
    process, later calls (the retried task, other samples) find it and solve normally.
    Setting ``kill_always``: every call kills its process (a simulator that always crashes).
    """

    name: ClassVar[str] = "kill_once_burgers"
    setting_defaults: ClassVar[Mapping[str, Any]] = {**Burgers1D.setting_defaults, "kill_marker": None,
                                                     "kill_always": False}

    def run_sample(self, params: Mapping[str, float]) -> Mapping[str, np.ndarray]:
        if self.settings["kill_always"]:
            os.kill(os.getpid(), signal.SIGKILL)
        marker = self.settings["kill_marker"]
        if marker:
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
        return super().run_sample(params)


def killed_pid(marker: str | os.PathLike[str]) -> int:
    return int(Path(marker).read_text())
