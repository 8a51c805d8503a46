# Paths, wildcard constraints, targets and the get_* functions of the rules.  Every decision
# (which studies run, their variables, batches, local-basis checks, GPU requests, forecast
# models) is a function of surroflow.stages.plan; this file only wires them to the rules.
import contextlib
import os
import sys
import types

from snakemake.exceptions import ResourceValidationError, WorkflowError
from snakemake.logging import logger
from snakemake.resources import Resource

from surroflow import SurroflowError, __version__ as SURROFLOW_VERSION
from surroflow.config import load_yaml_strict, stage_sections, validate_config
from surroflow.stages.plan import SINFO_FORMAT, SLURM_FITTED, Plan, parse_sinfo, slurm_allocation

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
MODEL_ERROR = PLAN.study_regex("model_error")
SIMULATED = PLAN.study_regex(files=False)
IMPORTED = PLAN.study_regex(files=True)
UQ = PLAN.uq_regex()
ADAPTIVE = PLAN.adaptive_regex()


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
        name = wildcards.get("surrogate") or wildcards.get("model") or wildcards.get("round")
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
    """A global surrogate trains on the global bases, a local one on the local basis, a
    full-field one (basis none) on none."""
    basis = PLAN.study(wildcards.study)["surrogates"][wildcards.surrogate]["basis"]
    if basis == "none":
        return []
    if basis == "local":
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


def get_equation_targets(wildcards):
    """The equations of every equation-identifying forecaster (sindy) of the studies that run."""
    return [f"{RESULTS}/{s}/forecast/equations_{m}.txt" for s in _planned(PLAN.studies, "forecast")
            for m in _planned(PLAN.equation_models, s)]


def get_round_design(wildcards):
    """Round r's design: what round r - 1 selected."""
    return f"{RESULTS}/{wildcards.study}/rounds/{int(wildcards.round) - 1}/selected.nc"


def get_round_data(wildcards):
    """The runs of rounds 1..r (round 0's are the first design.adaptive.initial train samples)."""
    return [f"{RESULTS}/{wildcards.study}/rounds/{k}/generate.nc" for k in range(1, int(wildcards.round) + 1)]


def get_adaptive_rounds(wildcards):
    """Every round's indicator and model, round 0 to the one whose checkpoint says stop."""
    from surroflow.io import open_dataset

    indicators, models = [], []
    for r in range(0, 10_000):
        out = checkpoints.adapt_round.get(study=wildcards.study, round=str(r)).output
        indicators.append(out.indicator)
        models.append(out.model)
        with open_dataset(out.indicator, stage="adapt_round") as ds:
            if ds.attrs.get("stop"):
                break
    return {"indicators": indicators, "models": models}


def get_adaptive_targets(wildcards):
    """The adaptive summary of every study with design.adaptive that runs here."""
    return [f"{RESULTS}/{s}/evaluation/adaptive_summary.csv" for s in _planned(PLAN.adaptive_studies)]


def get_online_targets(wildcards):
    """The online-learning summary of every forecast study with a forecast.online section."""
    return [f"{RESULTS}/{s}/evaluation/online/summary.csv" for s in _planned(PLAN.online_studies)]


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
            and (any(not os.path.exists(f) for split in _planned(PLAN.splits, s) for f in batch_files(s, split))
                 # adaptive rounds still to run (how many is known only as they finish)
                 or (s in PLAN.adaptive_studies()
                     and not os.path.exists(f"{RESULTS}/{s}/evaluation/adaptive_summary.csv")))]
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


# SLURM: requests that fit the nodes.  A job asking for more CPUs or memory than every node has
# waits in the queue forever (PartitionConfig), silently.  The requests of the profile and of the
# command line (--default-resources, --set-resources, --set-threads) reach every rule through
# Snakemake's resource settings; each threads/cpus_per_task/mem_mb there is evaluated through
# _fit_to_slurm, which passes it through unless the executor is slurm (known only once the DAG is
# built: the Snakefile is read first).  The first request evaluated checks every job of the run,
# before any submission.  Decisions: surroflow.stages.plan.SlurmNodes; docs/hpc.md.
_SLURM = {"nodes": None, "checked": False, "said": set()}


def _int(value):
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _slurm_nodes():
    """The nodes sinfo lists, read once (None when sinfo does not answer: requests go as asked)."""
    import subprocess

    if _SLURM["nodes"] is None:
        try:
            out = subprocess.run(["sinfo", "-h", "-N", "-o", SINFO_FORMAT], capture_output=True,
                                 text=True, timeout=60, check=True).stdout
            _SLURM["nodes"] = parse_sinfo(out)
        except (OSError, subprocess.SubprocessError, SurroflowError) as exc:
            logger.warning(f"surroflow: cannot read the SLURM nodes with sinfo ({exc}); "
                           "jobs are submitted with the requests as given")
            _SLURM["nodes"] = False
    return _SLURM["nodes"] or None


def _check_slurm_jobs(nodes, rule):
    """Stop the run, before its first submission (a job of ``rule`` was next), when a job fits
    no node of its partition."""
    _SLURM["checked"] = True
    refused = {}
    for job in workflow.dag.needrun_jobs():
        res = job.resources   # evaluated through _fit_to_slurm: CPUs of generation jobs clamped
        cpus = _int(res.get("cpus_per_task")) or _int(res.get("_cores"))
        why = nodes.misfit(job.rule.name, cpus, _int(res.get("mem_mb")), res.get("slurm_partition"))
        if why:
            refused.setdefault(job.rule.name, why)
    for why in refused.values():
        logger.error(f"surroflow: error: {why}")
    if refused:
        # what onerror does (Snakemake skips it when the scheduler raises), then the one
        # exception a resource may raise that Snakemake reports without a traceback of its own
        stop_run_cluster()
        release_results_lock()
        raise ResourceValidationError(f"surroflow: nothing was submitted, not even this {rule} job: "
                                      f"{', '.join(refused)} ask(s) for more than any node of the "
                                      "cluster has (above)")


def _fit_to_slurm(rule, name, value, attempt):
    """``value`` of resource ``name`` (threads: ``_cores``) of a job of ``rule``, as SLURM can give it."""
    executor = getattr(workflow.executor_plugin, "name", None)
    if executor == "slurm-jobstep":   # inside the job: what the allocation holds
        return slurm_allocation(name, value, os.environ)
    if executor != "slurm" or _int(value) is None:
        return value
    nodes = _slurm_nodes()
    if nodes is None:
        return value
    if not _SLURM["checked"]:
        _check_slurm_jobs(nodes, rule)
    partition = workflow.get_rule(rule).resources.get("slurm_partition")
    partition = None if partition.is_evaluable() else partition.value
    if name == "mem_mb":
        value, note = nodes.memory(rule, value, attempt, partition)
    else:
        value, note = nodes.cpus(rule, value, partition)
    if note and note not in _SLURM["said"]:
        _SLURM["said"].add(note)
        logger.info(f"surroflow: {note}")
    return value


def _fitted(res):
    """``res`` evaluated through _fit_to_slurm; the same raw text, so that jobs get the same flags."""

    def fitted(wildcards, **kwargs):
        value = res.evaluate(wildcards, **kwargs).value
        return _fit_to_slurm(kwargs["rulename"], res.name, value, kwargs.get("attempt", 1))

    return Resource(res.name, fitted, raw=res.raw)


def fit_requests_to_slurm(settings):
    """Route the profile's and command line's requests through _fit_to_slurm: Snakemake 9's parsed
    --default-resources, --set-resources and --set-threads, which every rule copies when it is
    defined (so: before the first rule)."""
    for resources in (settings._parsed_default_resources, *settings._parsed_overwrite_resources.values()):
        for name in SLURM_FITTED:
            if name in resources:
                resources[name] = _fitted(resources[name])
    threads = settings._parsed_overwrite_threads
    threads.update({name: _fitted(res) for name, res in threads.items()})


fit_requests_to_slurm(workflow.resource_settings)
