# Paths, wildcard constraints, targets and the get_* functions of the rules.  Every decision
# (which studies run, their variables, batches, local-basis checks, GPU requests, forecast
# models) is a function of surroflow.stages.plan; this file only wires them to the rules.
import contextlib
import os
import sys
import types

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

from surroflow import SurroflowError, __version__ as SURROFLOW_VERSION
from surroflow.config import load_yaml_strict, stage_sections, validate_config
from surroflow.stages.plan import Plan

try:
    # snakemake's YAML loader keeps the last of two equal keys: read the files again, refusing them
    for _configfile in workflow.configfiles:
        load_yaml_strict(_configfile)
    _validated = validate_config(config, source="config")
except SurroflowError as _exc:
    raise WorkflowError(str(_exc)) from None
config.clear()
config.update(_validated)

PLAN = Plan(config)
RESULTS = config["results"]
# conda environment of every rule (used with --use-conda; same pins as requirements.lock).  Its
# path has no wildcard, so Snakemake resolves it once, not per job (measured: `snakemake -n` on
# 117 jobs takes the same time with and without it)
CONDA_ENV = "../../envs/surroflow.yaml"

PARAMETRIC = PLAN.study_regex("parametric")
FORECAST = PLAN.study_regex("forecast")
SIMULATED = PLAN.study_regex(files=False)
IMPORTED = PLAN.study_regex(files=True)
UQ = PLAN.uq_regex()


wildcard_constraints:
    study=r"[A-Za-z0-9_-]+",
    split=r"train|test|calibration",
    batch=r"\d\d\d\d+",
    surrogate=r"[A-Za-z0-9_-]+",
    model=r"[A-Za-z0-9_-]+",
    variable=r"[A-Za-z0-9_]+",


def _planned(fn, *args):
    """A plan function's answer; its SurroflowError stops the run before any job."""
    try:
        return fn(*args)
    except SurroflowError as exc:
        raise WorkflowError(str(exc)) from None


def get_section(stage):
    """params function: the config sections `stage` depends on (a change there reruns it)."""

    def _get(wildcards):
        name = wildcards.get("surrogate") or wildcards.get("model")
        return _planned(stage_sections, PLAN.study(wildcards.study), stage, name)

    return _get


def get_files_table(wildcards):
    return PLAN.study(wildcards.study)["simulator"]["settings"]["table"]


def batch_files(study, split):
    ids = _planned(PLAN.batch_ids, study, split)
    return [f"{RESULTS}/{study}/generate/{split}/batch_{b}.nc" for b in ids]


def get_batch_files(wildcards):
    return batch_files(wildcards.study, wildcards.split)


def get_generate_threads(wildcards):
    """2 dask workers per batch job, or 1 core when the batch is one vectorised task."""
    return _planned(PLAN.generate_threads, wildcards.study, 2)


def get_basis_files(wildcards):
    return [f"{RESULTS}/{wildcards.study}/reduce/{v}.nc"
            for v in _planned(PLAN.variables, wildcards.study)]


def get_calibration_data(wildcards):
    """The calibration split's generate data, when the study has one (else the surrogates are
    calibrated cross-conformally on their training samples)."""
    if "calibration" in _planned(PLAN.splits, wildcards.study):
        return [f"{RESULTS}/{wildcards.study}/generate/calibration.nc"]
    return []


def get_train_bases(wildcards):
    """A global surrogate trains on the global bases, a local one on the local basis."""
    if PLAN.study(wildcards.study)["surrogates"][wildcards.surrogate]["basis"] == "local":
        v = _planned(PLAN.local_variable, wildcards.study)
        return [f"{RESULTS}/{wildcards.study}/reduce/local/{v}.nc"]
    return get_basis_files(wildcards)


def get_projection_study(wildcards):
    """The projection study of the local-basis variable (none without local surrogates)."""
    if not PLAN.local_surrogates(wildcards.study):
        return {}
    v = _planned(PLAN.local_variable, wildcards.study)
    return {"projection_study": f"{RESULTS}/{wildcards.study}/reduce/projection_study/{v}.nc"}


def get_surrogate_files(wildcards):
    return [f"{RESULTS}/{wildcards.study}/train/{name}.nc" for name in PLAN.study(wildcards.study)["surrogates"]]


def get_forecaster_files(wildcards):
    return [f"{RESULTS}/{wildcards.study}/train/{name}.nc"
            for name in _planned(PLAN.forecast_models, wildcards.study)]


def get_surrogate_gpus(wildcards):
    """resources.gpu: 1 for a torch surrogate asked to run on CUDA, else 0 (SLURM: --gpus=1)."""
    return _planned(PLAN.surrogate_gpus, wildcards.study, wildcards.surrogate)


def get_forecaster_gpus(wildcards):
    return _planned(PLAN.forecaster_gpus, wildcards.study, wildcards.model)


def get_uq_model(wildcards):
    return f"{RESULTS}/{wildcards.study}/train/{_planned(PLAN.uq_surrogate, wildcards.study)}.nc"


def get_uq_bases(wildcards):
    """The bases the propagated surrogate was trained on (global, or its local basis)."""
    return get_train_bases(types.SimpleNamespace(study=wildcards.study,
                                                 surrogate=_planned(PLAN.uq_surrogate, wildcards.study)))


def get_uq_targets(wildcards):
    """The uq summary of every study with a uq section that can run here."""
    return [f"{RESULTS}/{s}/uq/summary.csv" for s in _planned(PLAN.uq_studies)]


def get_overview_section(wildcards):
    """params of the overview: what each study that runs here is (task, description)."""
    return {"studies": {s: _planned(stage_sections, PLAN.study(s), "overview") for s in _planned(PLAN.studies)}}


def get_all_targets(wildcards):
    """The summary of every study that can run here (the evaluation rules make the rest)."""
    studies = _planned(PLAN.studies)
    for study, why in PLAN.skipped.items():
        logger.warning(f"surroflow: study '{study}' skipped: {why}")
    return [f"{RESULTS}/{s}/evaluation/summary.csv" for s in studies]


def take_results_lock():
    from surroflow.stages import lock

    try:
        lock.acquire(RESULTS, os.getcwd())
    except SurroflowError as exc:
        logger.error(f"surroflow: error: {exc}")
        sys.exit(1)


def release_results_lock():
    from surroflow.stages import lock

    lock.release(RESULTS, os.getcwd())


_RUN_CLUSTER = {}


def start_run_cluster():
    """One dask LocalCluster for the run (dask.run_cluster), when some batch of per-sample tasks
    is still to compute; every generation job joins it (surroflow.distributed)."""
    import subprocess
    import time

    from surroflow.distributed import RUN_CLUSTER_ENV

    dask_cfg = config["dask"]
    if dask_cfg["kind"] != "local" or not dask_cfg["run_cluster"]:
        return
    todo = [s for s in PLAN.studies() if PLAN.study(s)["simulator"]["name"] != "files"
            and PLAN.per_sample_tasks(s)
            and any(not os.path.exists(f) for split in _planned(PLAN.splits, s)
                    for f in batch_files(s, split))]
    if not todo:
        return
    folder = os.path.join(RESULTS, ".dask")
    os.makedirs(folder, exist_ok=True)
    address_file = os.path.join(folder, f"run-{os.getpid()}.json")
    with contextlib.suppress(FileNotFoundError):
        os.remove(address_file)
    workers = max(1, int(workflow.cores or 1))
    with open(os.path.join(folder, "cluster.log"), "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "surroflow", "cluster", "--address-file", address_file,
                                 "--workers", str(workers), "--parent-pid", str(os.getpid())],
                                stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 60
    while not os.path.exists(address_file) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    if not os.path.exists(address_file):
        proc.terminate()
        logger.warning("surroflow: the run's dask cluster did not start; every batch job starts its own "
                       f"(see {RESULTS}/.dask/cluster.log)")
        return
    _RUN_CLUSTER["proc"] = proc
    os.environ[RUN_CLUSTER_ENV] = address_file
    logger.info(f"surroflow: one dask LocalCluster with {workers} worker(s) for this run "
                f"({', '.join(todo)}): {address_file}")


def stop_run_cluster():
    proc = _RUN_CLUSTER.pop("proc", None)
    if proc is not None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except Exception:
            proc.kill()
