# forecast (task: forecast): train forecast surrogates on trajectories, roll them out from unseen
# test initial conditions, score them in Lyapunov times against persistence and climatology
# (always trained and reported).  Needs common.smk (validated config, RESULTS, study_cfg,
# sections, SURROFLOW_VERSION).
from surroflow.config import fill_defaults, load_schema
from surroflow.forecast.models import BASELINES

_FORECAST_SCHEMA = load_schema()


def forecast_section(study):
    """The study's forecast section with the schema's defaults (also when the key is absent)."""
    section = dict(study_cfg(study).get("forecast") or {})
    return fill_defaults(section, _FORECAST_SCHEMA["$defs"]["forecast"], _FORECAST_SCHEMA)


def forecast_models(study):
    """name -> {kind, params, state}: the baselines (always) plus the configured models."""
    models = {b: {"kind": b, "params": {}, "state": "full"} for b in BASELINES}
    for name, m in forecast_section(study)["models"].items():
        models[name] = {"kind": m["kind"], "params": dict(m.get("params", {})),
                        "state": m.get("state", "inherit")}
    return models


def get_forecast_section(wildcards):
    """Scoring settings: the study's forecast section without the model definitions."""
    return {k: v for k, v in forecast_section(wildcards.study).items() if k != "models"}


def get_forecast_train_section(wildcards):
    """The keys training reads (state, rank, seed, variable)."""
    section = forecast_section(wildcards.study)
    return {k: section[k] for k in ("variable", "state", "rank", "seed")}


def get_forecast_model(wildcards):
    """One model's kind, params and state."""
    models = forecast_models(wildcards.study)
    if wildcards.model not in models:
        raise WorkflowError(f"studies.{wildcards.study}.forecast.models: no model {wildcards.model!r}; "
                            f"defined: {sorted(models)}")
    return models[wildcards.model]


def get_forecast_model_files(wildcards):
    return expand(f"{RESULTS}/{{study}}/forecast/models/{{model}}.nc", study=wildcards.study,
                  model=sorted(forecast_models(wildcards.study)))


def _forecast_study_regex():
    names = [s for s, c in config["studies"].items() if c.get("task") == "forecast"]
    return "|".join(names) if names else "(?!)"


wildcard_constraints:
    model=r"[A-Za-z0-9_-]+",


# evaluation/summary.csv is also an output of evaluate_surrogates (parametric studies): the
# forecast rules only match forecast studies, and win where both could.
ruleorder: evaluate_forecast > evaluate_surrogates


rule train_forecaster:
    wildcard_constraints:
        study=_forecast_study_regex(),
    input:
        train=f"{RESULTS}/{{study}}/generate/train.nc",
    output:
        model=f"{RESULTS}/{{study}}/forecast/models/{{model}}.nc",
    params:
        model=get_forecast_model,
        forecast=get_forecast_train_section,
        section=sections("forecast_train"),
        version=SURROFLOW_VERSION,
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        CONDA_ENV
    log:
        "logs/train_forecaster/{study}_{model}.log",
    benchmark:
        f"{RESULTS}/{{study}}/benchmarks/train_forecaster_{{model}}.tsv"
    script:
        "../scripts/train_forecaster.py"


rule evaluate_forecast:
    wildcard_constraints:
        study=_forecast_study_regex(),
    input:
        test=f"{RESULTS}/{{study}}/generate/test.nc",
        models=get_forecast_model_files,
    output:
        metrics=f"{RESULTS}/{{study}}/forecast/metrics.nc",
        summary=f"{RESULTS}/{{study}}/evaluation/summary.csv",
        figures=directory(f"{RESULTS}/{{study}}/figures"),
    params:
        forecast=get_forecast_section,
        section=sections("forecast_evaluate"),
        version=SURROFLOW_VERSION,
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        CONDA_ENV
    log:
        "logs/evaluate_forecast/{study}.log",
    benchmark:
        f"{RESULTS}/{{study}}/benchmarks/evaluate_forecast.tsv"
    script:
        "../scripts/evaluate_forecast.py"
