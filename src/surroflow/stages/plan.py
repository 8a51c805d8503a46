"""Workflow planning: which studies run, and the lists of jobs each one expands to.

``workflow/rules/common.smk`` holds paths and targets only; every decision behind them lives
here, as plain functions of the *validated* config (schema defaults filled in), so that they
are unit-tested and usable without Snakemake:

* :class:`Plan` -- one per workflow run; caches the simulator of each study and knows
  which studies are skipped (a simulator that cannot run here, e.g. CalculiX without ``ccx``);
* the variables a study reduces, its batch ids, the local-basis checks, the GPU requests of
  torch estimators asked to run on CUDA, the forecast models (baselines included), and the
  studies with an uncertainty propagation (``uq``) and its surrogate;
* :class:`SlurmNodes` -- on ``--executor slurm``, what each job's CPU and memory request becomes
  on the nodes that ``sinfo`` lists (clamped where that changes no result, else refused in one
  sentence before any job is submitted), and :func:`slurm_allocation` inside a job.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from .. import SurroflowError
from ..config import forecast_models

#: kinds of torch estimators (surrogates / forecasters) that can request a GPU
TORCH_SURROGATES = ("mlp",)
TORCH_FORECASTERS = ("mlp_stepper", "node")
#: kinds of forecasters that identify equations (``Forecaster.identifies_equations``; a test
#: keeps the two in step, so planning the DAG imports no estimator module)
EQUATION_FORECASTERS = ("sindy",)
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
        n = design.get(f"n_{split}", 0) * design.get("members", 1)
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

    def adaptive_studies(self) -> list[str]:
        """The parametric studies that run here and have ``design.adaptive``."""
        return [s for s in self.studies("parametric") if self.study(s)["design"].get("adaptive")]

    def adaptive_regex(self) -> str:
        """A wildcard constraint matching the declared parametric studies with ``design.adaptive``."""
        names = [s for s in self.declared("parametric") if self.study(s)["design"].get("adaptive")]
        return "|".join(names) if names else NO_STUDY

    def online_studies(self) -> list[str]:
        """The forecast studies with a ``forecast.online`` section that can run here."""
        return [s for s in self.studies("forecast") if self.study(s)["forecast"].get("online") is not None]

    def equation_models(self, study: str) -> list[str]:
        """The forecast models that identify equations (``sindy``, in a POD basis too): the
        workflow writes ``forecast/equations_<model>.txt`` for each."""
        return [name for name, m in self.forecast_models(study).items() if m["kind"] in EQUATION_FORECASTERS]

    def forecaster_gpus(self, study: str, model: str) -> int:
        m = self.forecast_models(study)[model]
        return int(m["kind"] in TORCH_FORECASTERS and _wants_cuda(m["params"]))




# ---------------------------------------------------------------------- SLURM: requests that fit
#: ``sinfo -h -N -o SINFO_FORMAT``: one line per node and partition: name, CPUs, RealMemory (MB),
#: partition (``*`` after the cluster's default partition)
SINFO_FORMAT = "%N %c %m %P"
#: rules whose threads only size the dask cluster inside the job (one single-threaded worker per
#: thread): on fewer CPUs they compute the same results, later, so their CPUs are clamped to the
#: node; any other rule's threads may change its results (BLAS, torch) and are refused instead
SLURM_CLAMPED_CPU_RULES = frozenset({"generate_batch"})
#: the resources fitted to the nodes: threads (``_cores``), ``cpus_per_task``, ``mem_mb``
SLURM_FITTED = ("_cores", "cpus_per_task", "mem_mb")


@dataclass(frozen=True)
class SlurmNode:
    name: str
    cpus: int
    memory_mb: int


def parse_sinfo(text: str) -> "SlurmNodes":
    """The nodes of ``sinfo -h -N -o "%N %c %m %P"`` (:data:`SINFO_FORMAT`) by partition."""
    partitions: dict[str, list[SlurmNode]] = {}
    default = None
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split()
        try:
            name, cpus, memory, partition = fields
            node = SlurmNode(name, int(cpus.rstrip("+")), int(memory.rstrip("+")))
        except ValueError:
            raise SurroflowError(f"sinfo: cannot read the node line {line.strip()!r}; expected "
                                 f"'{SINFO_FORMAT}' (node, CPUs, memory in MB, partition)") from None
        if partition.endswith("*"):
            partition = default = partition.rstrip("*")
        partitions.setdefault(partition, []).append(node)
    if not partitions:
        raise SurroflowError("sinfo lists no node")
    return SlurmNodes({p: tuple(n) for p, n in partitions.items()}, default)


def _cpus(n: int) -> str:
    return f"{n} CPU" if n == 1 else f"{n} CPUs"


def _request(cpus: int | None, mem_mb: int | None) -> str:
    parts = ([_cpus(cpus)] if cpus else []) + ([f"mem_mb={mem_mb}"] if mem_mb else [])
    return " and ".join(parts) or "nothing"


@dataclass(frozen=True)
class SlurmNodes:
    """The nodes of a SLURM cluster by partition, and what a job's request becomes on them.

    A job that asks for more CPUs or memory than every node of its partition has waits in the
    queue forever (reason ``PartitionConfig``) with nothing printed.  So, before any job is
    submitted: :meth:`cpus` clamps the CPUs of the rules in :data:`SLURM_CLAMPED_CPU_RULES` to the
    largest node, :meth:`memory` clamps the memory of a retry (``attempt`` > 1: a first try
    that fitted) to it, and :meth:`misfit` is the sentence that stops a run whose job fits no
    node even so (more memory than any node has; more CPUs for a rule whose threads may change
    its results), naming the rule, the request, the largest node and the flags that fix it.
    """

    partitions: Mapping[str, tuple[SlurmNode, ...]]
    default: str | None = None

    def nodes(self, partition: str | None = None) -> tuple[str, tuple[SlurmNode, ...]] | None:
        """The partition's label and nodes: ``None``/"" the default partition (every node
        without one), "a,b" either; ``None`` for a partition sinfo does not list (sbatch names it)."""
        names = [p for p in str(partition or "").replace(",", " ").split() if p]
        if not names:
            if self.default is not None:
                return self.default, self.partitions[self.default]
            return "(all)", tuple({n.name: n for ns in self.partitions.values() for n in ns}.values())
        found = [n for p in names for n in self.partitions.get(p, ())]
        return (",".join(names), tuple(found)) if found else None

    def largest(self, partition: str | None = None, mem_mb: int | None = None) -> tuple[str, SlurmNode] | None:
        """The partition's label and its largest node: of the nodes with ``mem_mb`` the one with
        the most CPUs, else (none has that much) the one with the most memory."""
        where = self.nodes(partition)
        if where is None:
            return None
        label, nodes = where
        roomy = [n for n in nodes if n.memory_mb >= (mem_mb or 0)]
        if roomy:
            return label, max(roomy, key=lambda n: (n.cpus, n.memory_mb))
        return label, max(nodes, key=lambda n: (n.memory_mb, n.cpus))

    def cpus(self, rule: str, asked: int, partition: str | None = None) -> tuple[int, str | None]:
        """(CPUs granted, the INFO line when clamped): the threads and cpus_per_task of a job."""
        found = self.largest(partition)
        if found is None or asked <= found[1].cpus or rule not in SLURM_CLAMPED_CPU_RULES:
            return asked, None
        label, node = found
        return node.cpus, (f"SLURM: {rule} asks for {_cpus(asked)}, but the largest node of partition "
                           f"{label}, {node.name}, has {node.cpus}: its jobs get {_cpus(node.cpus)} "
                           "(threads and cpus_per_task; fewer dask workers, the same results)")

    def memory(self, rule: str, asked: int, attempt: int = 1,
               partition: str | None = None) -> tuple[int, str | None]:
        """(MB granted, the INFO line when clamped): a retry asks for ``attempt`` times its first
        try's memory; beyond the largest node it gets that node's memory, not an endless wait."""
        where = self.nodes(partition)
        if where is None or attempt <= 1:
            return asked, None
        label, nodes = where
        node = max(nodes, key=lambda n: (n.memory_mb, n.cpus))
        if asked <= node.memory_mb:
            return asked, None
        return node.memory_mb, (f"SLURM: attempt {attempt} of {rule} asks for mem_mb={asked}, more than "
                                f"the largest node of partition {label}, {node.name}, has: it gets "
                                f"mem_mb={node.memory_mb}")

    def misfit(self, rule: str, cpus: int | None, mem_mb: int | None,
               partition: str | None = None) -> str | None:
        """The sentence that refuses a job no node of its partition can run, or ``None``."""
        where = self.nodes(partition)
        if where is None:
            return None
        label, nodes = where
        if any(n.cpus >= (cpus or 0) and n.memory_mb >= (mem_mb or 0) for n in nodes):
            return None
        node = self.largest(partition, mem_mb)[1]
        fixes = []
        if (cpus or 0) > node.cpus:
            fixes.append(f"--set-threads {rule}={node.cpus} --set-resources {rule}:cpus_per_task={node.cpus}")
        if (mem_mb or 0) > node.memory_mb:
            fixes.append(f"--set-resources {rule}:mem_mb={node.memory_mb}")
        return (f"SLURM: rule {rule} asks for {_request(cpus, mem_mb)} per job, but the largest node "
                f"of partition {label} is {node.name} with {_cpus(node.cpus)} and {node.memory_mb} MB, so "
                f"its jobs would wait in the queue forever: ask for less with {' '.join(fixes)} "
                f"(or send it to a partition with bigger nodes: --set-resources {rule}:slurm_partition=NAME)")


#: inside a SLURM job: the environment variable that holds what the job was given, per resource
_ALLOCATION = {"_cores": "SLURM_CPUS_PER_TASK", "cpus_per_task": "SLURM_CPUS_PER_TASK",
               "mem_mb": "SLURM_MEM_PER_NODE"}


def slurm_allocation(name: str, value: Any, environ: Mapping[str, str]) -> Any:
    """Inside a SLURM job, ``value`` of resource ``name`` capped to what the job was given: the
    job's own Snakemake evaluates the requests again (srun --cpus-per-task, the dask cluster's
    workers and memory), and must not ask for more than the allocation that fitted them."""
    given = environ.get(_ALLOCATION.get(name, ""), "")
    if isinstance(value, bool) or not isinstance(value, int) or not given.isdigit():
        return value
    return min(value, int(given))


__all__ = ["Plan", "NO_STUDY", "TORCH_SURROGATES", "TORCH_FORECASTERS", "EQUATION_FORECASTERS", "SINFO_FORMAT",
           "SLURM_CLAMPED_CPU_RULES", "SLURM_FITTED", "SlurmNode", "SlurmNodes", "parse_sinfo",
           "slurm_allocation"]
