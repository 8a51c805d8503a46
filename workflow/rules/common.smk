# Helpers shared by all rules: validated config, paths, and get_* input/param functions.
import math
import sys

from snakemake.exceptions import WorkflowError

from surroflow import SurroflowError, __version__ as SURROFLOW_VERSION
from surroflow.config import stage_sections, validate_config
from surroflow.simulators import SimulatorUnavailable, get_simulator

try:
    _validated = validate_config(config, source="config")
except SurroflowError as _exc:
    raise WorkflowError(str(_exc)) from None
config.clear()
config.update(_validated)

RESULTS = config["results"]
# conda environment of every rule (used with --use-conda; same pins as requirements.lock)
CONDA_ENV = "../../envs/surroflow.yaml"
SPLITS = ["train", "test"]


wildcard_constraints:
    study=r"[A-Za-z0-9_-]+",
    split=r"train|test",
    batch=r"\d\d\d\d+",
    surrogate=r"[A-Za-z0-9_-]+",
    variable=r"[A-Za-z0-9_]+",


def study_cfg(study):
    return config["studies"][study]


_SIMULATORS = {}
SKIPPED = {}


def simulator_of(study):
    if study not in _SIMULATORS:
        sim = study_cfg(study)["simulator"]
        try:
            _SIMULATORS[study] = get_simulator(sim["name"], **sim["settings"])
        except SimulatorUnavailable as exc:  # e.g. ccx not installed: skip the study, say why
            _SIMULATORS[study] = None
            SKIPPED[study] = str(exc)
            print(f"surroflow: study '{study}' skipped: {exc}", file=sys.stderr)
        except SurroflowError as exc:  # any other bad setting stops the run before any job
            raise WorkflowError(f"studies.{study}.{exc}" if str(exc).startswith("simulator.")
                                else f"studies.{study}: {exc}") from None
    return _SIMULATORS[study]


def studies(task=None):
    """Studies of a task whose simulator can run here."""
    return [s for s, c in config["studies"].items()
            if (task is None or c["task"] == task) and simulator_of(s) is not None]


def variables_of(study):
    chosen = study_cfg(study)["reduction"]["variables"]
    return chosen or [v.name for v in simulator_of(study).outputs()]


def n_samples(study, split):
    return study_cfg(study)["design"][f"n_{split}"]


def batch_ids(study, split):
    bs = study_cfg(study)["design"]["batch_size"]
    return [f"{b:04d}" for b in range(math.ceil(n_samples(study, split) / bs))]


def sections(stage, surrogate=None):
    """params function: the config subset a stage depends on (a change there reruns it)."""
    def _get(wildcards):
        return stage_sections(study_cfg(wildcards.study), stage, surrogate or wildcards.get("surrogate"))
    return _get


def get_simulator_section(wildcards):
    """The simulator section without max_failure_fraction (only collect_batches reads that)."""
    sim = study_cfg(wildcards.study)["simulator"]
    return {k: v for k, v in sim.items() if k != "max_failure_fraction"}


def get_batch_files(wildcards):
    return expand(f"{RESULTS}/{{study}}/generate/{{split}}/batch_{{batch}}.nc", study=wildcards.study,
                  split=wildcards.split, batch=batch_ids(wildcards.study, wildcards.split))


def get_surrogate_gpus(wildcards):
    """resources.gpu of train_surrogate: 1 for a torch surrogate asked to run on CUDA, else 0
    (the SLURM executor turns 1 into `sbatch --gpus=1`; 0 requests nothing)."""
    s = study_cfg(wildcards.study)["surrogates"][wildcards.surrogate]
    return 1 if s["kind"] == "mlp" and (s.get("params") or {}).get("device") == "cuda" else 0


def get_basis_files(wildcards):
    return expand(f"{RESULTS}/{{study}}/reduce/{{variable}}.nc", study=wildcards.study,
                  variable=variables_of(wildcards.study))


def local_surrogates(study):
    return [n for n, s in study_cfg(study)["surrogates"].items() if s["basis"] == "local"]


def local_variable(study):
    """The variable reduced by local bases: they need a clustering section and one variable."""
    variables = variables_of(study)
    if study_cfg(study)["reduction"].get("clustering") is None:
        raise WorkflowError(f"studies.{study}.surrogates: basis 'local' needs reduction.clustering "
                            "(a mapping, e.g. {{n_clusters: auto}})")
    if len(variables) != 1:
        raise WorkflowError(f"studies.{study}.reduction.variables: local bases reduce one variable; "
                            f"got {variables}")
    return variables[0]


def get_train_bases(wildcards):
    """A global surrogate trains on the global bases; a local one on the local bases."""
    if study_cfg(wildcards.study)["surrogates"][wildcards.surrogate]["basis"] == "local":
        return [f"{RESULTS}/{wildcards.study}/reduce/local/{local_variable(wildcards.study)}.nc"]
    return get_basis_files(wildcards)


def get_local_outputs(wildcards):
    """Local-basis artifacts the evaluation shows (none without local surrogates)."""
    if not local_surrogates(wildcards.study):
        return {}
    v = local_variable(wildcards.study)
    return {"local_basis": f"{RESULTS}/{wildcards.study}/reduce/local/{v}.nc",
            "projection_study": f"{RESULTS}/{wildcards.study}/reduce/projection_study/{v}.nc"}


def get_model_files(wildcards):
    return {name: f"{RESULTS}/{wildcards.study}/train/{name}.nc"
            for name in study_cfg(wildcards.study)["surrogates"]}


def get_all_targets(wildcards):
    targets = []
    for s in studies("parametric"):
        targets.append(f"{RESULTS}/{s}/evaluation/summary.csv")
    for s in studies("forecast"):
        targets.append(f"{RESULTS}/{s}/evaluation/summary.csv")
    return targets
