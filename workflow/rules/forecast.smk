# Forecast task (task: forecast): train forecast surrogates on trajectories, roll them out from
# unseen test initial conditions, score them in Lyapunov times against persistence and
# climatology.  Needs common.smk (config validated with defaults; study_cfg(study)).
import surroflow
from surroflow.forecast.models import BASELINES


def forecast_studies():
    """Names of the studies whose task is forecast."""
    return [s for s, sc in config["studies"].items() if sc.get("task") == "forecast"]


def forecast_models(study):
    """name -> {kind, params, state}: the configured models plus the baselines (always)."""
    section = study_cfg(study)["forecast"]
    models = {b: {"kind": b, "params": {}, "state": "full"} for b in BASELINES}
    for name, m in section["models"].items():
        models[name] = {"kind": m["kind"], "params": dict(m.get("params", {})),
                        "state": m.get("state", "inherit")}
    return models


def get_forecast_section(wildcards):
    """The study's forecast section without the model definitions (scoring settings)."""
    return {k: v for k, v in study_cfg(wildcards.study)["forecast"].items() if k != "models"}


def get_forecast_train_section(wildcards):
    """Only the keys training depends on (a change of plot or scoring settings retrains nothing)."""
    section = study_cfg(wildcards.study)["forecast"]
    return {k: section[k] for k in ("variable", "state", "rank", "seed")}


def get_forecast_model(wildcards):
    """One model's kind, params and state (a rule depends only on its own model)."""
    models = forecast_models(wildcards.study)
    if wildcards.model not in models:
        raise ValueError(f"studies.{wildcards.study}.forecast.models: no model {wildcards.model!r}; "
                         f"defined: {sorted(models)}")
    return models[wildcards.model]


def get_forecast_model_files(wildcards):
    return expand("results/{study}/forecast/models/{model}.nc", study=wildcards.study,
                  model=sorted(forecast_models(wildcards.study)))


def forecast_outputs():
    """Final forecast artifacts of every forecast study (for rule all)."""
    return [p for s in forecast_studies() for p in (
        f"results/{s}/forecast/metrics.nc", f"results/{s}/evaluation/summary.csv", f"results/{s}/figures")]


wildcard_constraints:
    model="[A-Za-z0-9_-]+",


rule train_forecaster:
    input:
        train="results/{study}/generate/train.nc",
    output:
        model="results/{study}/forecast/models/{model}.nc",
    params:
        model=get_forecast_model,
        forecast=get_forecast_train_section,
        version=surroflow.__version__,
    threads: 1
    resources:
        mem_mb=4000,
    log:
        "logs/train_forecaster/{study}/{model}.log",
    benchmark:
        "results/{study}/benchmarks/train_forecaster/{model}.tsv"
    script:
        "../scripts/train_forecaster.py"


rule evaluate_forecast:
    input:
        test="results/{study}/generate/test.nc",
        models=get_forecast_model_files,
    output:
        metrics="results/{study}/forecast/metrics.nc",
        summary="results/{study}/evaluation/summary.csv",
        figures=directory("results/{study}/figures"),
    params:
        forecast=get_forecast_section,
        version=surroflow.__version__,
    threads: 1
    resources:
        mem_mb=4000,
    log:
        "logs/evaluate_forecast/{study}.log",
    benchmark:
        "results/{study}/benchmarks/evaluate_forecast.tsv"
    script:
        "../scripts/evaluate_forecast.py"
