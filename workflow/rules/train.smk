# train: one surrogate per configured name on the reduced coordinates (parametric studies);
# one forecaster per model, baselines included, on the training trajectories (forecast studies).


rule train_surrogate:
    input:
        train=f"{RESULTS}/{{study}}/generate/train.nc",
        bases=get_train_bases,
        calibration=get_calibration_data,
    output:
        model=f"{RESULTS}/{{study}}/train/{{surrogate}}.nc",
    wildcard_constraints:
        study=PARAMETRIC,
    # fits start as soon as their data exist: the long ones (neural networks) end the critical
    # path, and left to the end of the run they leave the other core idle
    priority: 10
    params:
        section=get_section("train_surrogate"),
        version=SURROFLOW_VERSION,
    threads: 1
    resources:
        mem_mb=4000,
        gpu=get_surrogate_gpus,
    conda:
        CONDA_ENV
    log:
        "logs/train_surrogate/{study}_{surrogate}.log",
    benchmark:
        f"{RESULTS}/{{study}}/benchmarks/train_surrogate_{{surrogate}}.tsv"
    script:
        "../scripts/train_surrogate.py"


rule train_forecaster:
    input:
        train=f"{RESULTS}/{{study}}/generate/train.nc",
    output:
        model=f"{RESULTS}/{{study}}/train/{{model}}.nc",
    wildcard_constraints:
        study=FORECAST,
    priority: 10  # as train_surrogate
    params:
        section=get_section("train_forecaster"),
        version=SURROFLOW_VERSION,
    threads: 1
    resources:
        mem_mb=4000,
        gpu=get_forecaster_gpus,
    conda:
        CONDA_ENV
    log:
        "logs/train_forecaster/{study}_{model}.log",
    benchmark:
        f"{RESULTS}/{{study}}/benchmarks/train_forecaster_{{model}}.tsv"
    script:
        "../scripts/train_forecaster.py"


rule write_equations:
    input:
        model=f"{RESULTS}/{{study}}/train/{{model}}.nc",
        train=f"{RESULTS}/{{study}}/generate/train.nc",
    output:
        txt=f"{RESULTS}/{{study}}/forecast/equations_{{model}}.txt",
        csv=f"{RESULTS}/{{study}}/forecast/equations_{{model}}.csv",
        html=report(
            f"{RESULTS}/{{study}}/forecast/equations_{{model}}.html",
            caption="../report/equations.rst",
            category="{study}",
            subcategory="equations",
            labels={"model": "{model}"},
        ),
    wildcard_constraints:
        study=FORECAST,
    params:
        section=get_section("write_equations"),
        version=SURROFLOW_VERSION,
    threads: 1
    resources:
        mem_mb=2000,
    conda:
        CONDA_ENV
    log:
        "logs/write_equations/{study}_{model}.log",
    script:
        "../scripts/write_equations.py"
