# reduce: POD basis per output variable from the training snapshots; local bases (k-means
# clusters, one POD each) and the projection study when a surrogate uses basis: local.


rule fit_pod:
    input:
        train=f"{RESULTS}/{{study}}/generate/train.nc",
    output:
        basis=f"{RESULTS}/{{study}}/reduce/{{variable}}.nc",
    wildcard_constraints:
        study=PARAMETRIC,
    params:
        section=get_section("fit_pod"),
        dask=config["dask"],
        version=SURROFLOW_VERSION,
    # one core: a 2-thread job waits for both cores, and on 2 cores it waited behind a long
    # 1-thread training job with the other core idle (set --set-threads fit_pod=N for large data)
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        CONDA_ENV
    log:
        "logs/fit_pod/{study}_{variable}.log",
    benchmark:
        f"{RESULTS}/{{study}}/benchmarks/fit_pod_{{variable}}.tsv"
    script:
        "../scripts/fit_pod.py"


rule fit_local_pod:
    input:
        train=f"{RESULTS}/{{study}}/generate/train.nc",
    output:
        basis=f"{RESULTS}/{{study}}/reduce/local/{{variable}}.nc",
        criterion=f"{RESULTS}/{{study}}/reduce/criterion/{{variable}}.nc",
        figure=report(
            f"{RESULTS}/{{study}}/figures/criterion_{{variable}}.png",
            caption="../report/criterion.rst",
            category="{study}",
            subcategory="reduction",
        ),
    wildcard_constraints:
        study=PARAMETRIC,
    params:
        section=get_section("fit_local_pod"),
        version=SURROFLOW_VERSION,
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        CONDA_ENV
    log:
        "logs/fit_local_pod/{study}_{variable}.log",
    benchmark:
        f"{RESULTS}/{{study}}/benchmarks/fit_local_pod_{{variable}}.tsv"
    script:
        "../scripts/fit_local_pod.py"


rule plot_projection_study:
    input:
        train=f"{RESULTS}/{{study}}/generate/train.nc",
        test=f"{RESULTS}/{{study}}/generate/test.nc",
    output:
        curves=f"{RESULTS}/{{study}}/reduce/projection_study/{{variable}}.nc",
        figure=report(
            f"{RESULTS}/{{study}}/figures/projection_error_{{variable}}.png",
            caption="../report/projection_error.rst",
            category="{study}",
            subcategory="reduction",
        ),
    wildcard_constraints:
        study=PARAMETRIC,
    params:
        section=get_section("plot_projection_study"),
        version=SURROFLOW_VERSION,
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        CONDA_ENV
    log:
        "logs/plot_projection_study/{study}_{variable}.log",
    benchmark:
        f"{RESULTS}/{{study}}/benchmarks/plot_projection_study_{{variable}}.tsv"
    script:
        "../scripts/plot_projection_study.py"
