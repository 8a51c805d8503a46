"""Workflow planning: which studies run, and the lists of jobs each one expands to.

``workflow/rules/common.smk`` holds paths and targets only; every decision behind them lives
here, as plain functions of the *validated* config (schema defaults filled in), so that they
are unit-tested and usable without Snakemake:

* :class:`Plan` -- one per workflow run; caches the simulator of each study and knows
  which studies are skipped (a simulator that cannot run here, e.g. CalculiX without ``ccx``);
* the variables a study reduces, its batch ids, the local-basis checks, the GPU requests of
  torch estimators asked to run on CUDA, the forecast models (baselines included), and the
  studies with an uncertainty propagation (``uq``) and its surrogate.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from .. import SurroflowError
from ..config import forecast_models

#: kinds of torch estimators (surrogates / forecasters) that can request a GPU
TORCH_SURROGATES = ("mlp",)
TORCH_FORECASTERS = ("mlp_stepper", "node")
#: a regular expression that matches no study name (wildcard constraint of a rule with no study)
NO_STUDY = "(?!x)x"


def _wants_cuda(params: Mapping[str, Any]) -> bool:
    return str(params.get("device", "")).startswith("cuda")


class Plan:
    """The studies of a validated config and what their rules need."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self._simulators: dict[str, Any] = {}
        #: study -> why it is skipped (its simulator cannot run on this machine)
        self.skipped: dict[str, str] = {}

    # ------------------------------------------------------------------ studies
    def study(self, study: str) -> Mapping[str, Any]:
        try:
            return self.config["studies"][study]
        except KeyError:
            raise SurroflowError(f"studies.{study}: no such study; defined: "
                                 f"{sorted(self.config['studies'])}") from None

    def simulator(self, study: str) -> Any:
        """The study's simulator, or ``None`` when it is unavailable here (reason in :attr:`skipped`)."""
        from ..simulators import SimulatorUnavailable, get_simulator
        if study not in self._simulators:
            sim = self.study(study)["simulator"]
            try:
                self._simulators[study] = get_simulator(sim["name"], **sim["settings"])
            except SimulatorUnavailable as exc:
                self._simulators[study] = None
                self.skipped[study] = str(exc)
            except SurroflowError as exc:
                text = str(exc)
                raise SurroflowError(f"studies.{study}.{text}" if text.startswith("simulator.")
                                     else f"studies.{study}: {text}") from None
        return self._simulators[study]

    def studies(self, task: str | None = None) -> list[str]:
        """The studies (of ``task``) whose simulator can run here, in config order."""
        return [s for s, c in self.config["studies"].items()
                if (task is None or c["task"] == task) and self.simulator(s) is not None]

    def declared(self, task: str | None = None, files: bool | None = None) -> list[str]:
        """Every study of the config (of ``task``; files studies only / none of them)."""
        return [s for s, c in self.config["studies"].items()
                if (task is None or c["task"] == task)
                and (files is None or (c["simulator"]["name"] == "files") == files)]

    def study_regex(self, task: str | None = None, files: bool | None = None) -> str:
        """A wildcard constraint matching exactly the :meth:`declared` studies."""
        names = self.declared(task, files)
        return "|".join(names) if names else NO_STUDY

    # ------------------------------------------------------------------ generate
    def splits(self, study: str) -> list[str]:
        """The splits whose generate data the study's jobs read: train and test, and the
        calibration split when ``design.n_calibration`` is set (the schema refuses it on forecast
        studies)."""
        return ["train", "test"] + (["calibration"] if self.study(study)["design"].get("n_calibration", 0) else [])

    def batch_ids(self, study: str, split: str) -> list[str]:
        design = self.study(study)["design"]
        n = design.get(f"n_{split}", 0)
        return [f"{b:04d}" for b in range(max(1, math.ceil(n / design["batch_size"])))]

    def per_sample_tasks(self, study: str) -> bool:
        """True when the study's batches are per-sample dask tasks (not one vectorised call run in
        the job's process, :func:`surroflow.stages.generate_batch.runs_in_process`)."""
        from .generate_batch import runs_in_process
        sim = self.simulator(study)
        if sim is None:
            return False
        return not runs_in_process(sim, self.study(study)["simulator"]["timeout_s"], self.config.get("dask"))

    def generate_threads(self, study: str, cluster_threads: int) -> int:
        """Cores a ``generate_batch`` job claims: 1 when its batch is one vectorised task run in
        the job's process, or when its tasks go to the run's LocalCluster (``dask.run_cluster``);
        else ``cluster_threads`` (one single-threaded dask worker each, in a cluster of the
        job's own)."""
        dask_cfg = self.config.get("dask") or {}
        if not self.per_sample_tasks(study):
            return 1
        if dask_cfg.get("kind") == "local" and dask_cfg.get("run_cluster"):
            return 1     # its tasks run on the run's LocalCluster; the job only waits for them
        return cluster_threads

    # ------------------------------------------------------------------ reduce
    def variables(self, study: str) -> list[str]:
        """The output variables a study reduces (``reduction.variables``, or all outputs)."""
        chosen = list(self.study(study)["reduction"]["variables"])
        if chosen:
            return chosen
        sim = self.simulator(study)
        if sim is None:
            raise SurroflowError(f"studies.{study}: skipped ({self.skipped[study]}); it has no variables")
        return [v.name for v in sim.outputs()]

    def local_surrogates(self, study: str) -> list[str]:
        return [n for n, s in self.study(study)["surrogates"].items() if s["basis"] == "local"]

    def local_variable(self, study: str) -> str:
        """The variable reduced by local bases (they need reduction.clustering and one variable)."""
        if self.study(study)["reduction"].get("clustering") is None:
            raise SurroflowError(f"studies.{study}.surrogates: basis 'local' needs reduction.clustering "
                                 "(a mapping, e.g. {n_clusters: auto})")
        variables = self.variables(study)
        if len(variables) != 1:
            raise SurroflowError(f"studies.{study}.reduction.variables: local bases reduce one variable; "
                                 f"got {variables}")
        return variables[0]

    # ------------------------------------------------------------------ train
    def surrogate_gpus(self, study: str, surrogate: str) -> int:
        """1 for a torch surrogate asked to run on CUDA, else 0 (SLURM: ``--gpus=1``)."""
        s = self.study(study)["surrogates"][surrogate]
        return int(s["kind"] in TORCH_SURROGATES and _wants_cuda(s["params"]))

    def forecast_models(self, study: str) -> dict[str, dict[str, Any]]:
        """name -> {kind, params, state}: the baselines first, then the configured models."""
        return forecast_models(self.study(study))

    # ------------------------------------------------------------------ uq
    def uq_studies(self) -> list[str]:
        """The parametric studies with a ``uq`` section whose simulator can run here."""
        return [s for s in self.studies("parametric") if self.study(s).get("uq") is not None]

    def uq_regex(self) -> str:
        """A wildcard constraint matching the declared parametric studies with a ``uq`` section."""
        names = [s for s in self.declared("parametric") if self.study(s).get("uq") is not None]
        return "|".join(names) if names else NO_STUDY

    def uq_surrogate(self, study: str) -> str:
        """The surrogate the study's uncertainty propagation runs through (``uq.surrogate``)."""
        uq = self.study(study).get("uq")
        if uq is None:
            raise SurroflowError(f"studies.{study}: no uq section")
        return str(uq["surrogate"])

    def forecaster_gpus(self, study: str, model: str) -> int:
        m = self.forecast_models(study)[model]
        return int(m["kind"] in TORCH_FORECASTERS and _wants_cuda(m["params"]))


__all__ = ["Plan", "NO_STUDY", "TORCH_SURROGATES", "TORCH_FORECASTERS"]
