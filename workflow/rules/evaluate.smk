# evaluate: error split, measured speed-up and offline cost, figures for the report
# (parametric studies); forecasts in Lyapunov times against the baselines (forecast studies).


rule evaluate_surrogates:
    input:
        unpack(get_projection_study),
        train=f"{RESULTS}/{{study}}/generate/train.nc",
        test=f"{RESULTS}/{{study}}/generate/test.nc",
        bases=get_basis_files,
        models=get_surrogate_files,
    output:
        metrics=f"{RESULTS}/{{study}}/evaluation/metrics.nc",
        summary=report(
            f"{RESULTS}/{{study}}/evaluation/summary.csv",
            caption="../report/summary.rst",
            category="{study}",
            subcategory="summary",
        ),
        summary_html=report(
            f"{RESULTS}/{{study}}/evaluation/summary.html",
            caption="../report/summary.rst",
            category="{study}",
            subcategory="summary",
        ),
        figures=report(
            directory(f"{RESULTS}/{{study}}/evaluation/figures"),
            patterns=["{name}.png"],
            caption="../report/parametric_figures.rst",
            category="{study}",
            subcategory="figures",
            labels={"figure": "{name}"},
        ),
    wildcard_constraints:
        study=PARAMETRIC,
    params:
        section=get_section("evaluate_surrogates"),
        version=SURROFLOW_VERSION,
    # one core: the solver and the queries are timed on one BLAS thread (an idle second core was
    # tried: the speed-ups of two runs moved as much, and the run waited for two free cores)
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        CONDA_ENV
    log:
        "logs/evaluate_surrogates/{study}.log",
    benchmark:
        f"{RESULTS}/{{study}}/benchmarks/evaluate_surrogates.tsv"
    script:
        "../scripts/evaluate_surrogates.py"


rule evaluate_forecast:
    input:
        test=f"{RESULTS}/{{study}}/generate/test.nc",
        models=get_forecaster_files,
    output:
        metrics=f"{RESULTS}/{{study}}/evaluation/metrics.nc",
        summary=report(
            f"{RESULTS}/{{study}}/evaluation/summary.csv",
            caption="../report/forecast_summary.rst",
            category="{study}",
            subcategory="summary",
        ),
        summary_html=report(
            f"{RESULTS}/{{study}}/evaluation/summary.html",
            caption="../report/forecast_summary.rst",
            category="{study}",
            subcategory="summary",
        ),
        figures=report(
            directory(f"{RESULTS}/{{study}}/evaluation/figures"),
            patterns=["{name}.png"],
            caption="../report/forecast_figures.rst",
            category="{study}",
            subcategory="figures",
            labels={"figure": "{name}"},
        ),
    wildcard_constraints:
        study=FORECAST,
    params:
        section=get_section("evaluate_forecast"),
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


rule evaluate_online:
    input:
        train=f"{RESULTS}/{{study}}/generate/train.nc",
        test=f"{RESULTS}/{{study}}/generate/test.nc",
    output:
        curve=f"{RESULTS}/{{study}}/evaluation/online/vpt_over_time.csv",
        summary=report(
            f"{RESULTS}/{{study}}/evaluation/online/summary.csv",
            caption="../report/online.rst",
            category="{study}",
            subcategory="online learning",
        ),
        summary_html=report(
            f"{RESULTS}/{{study}}/evaluation/online/summary.html",
            caption="../report/online.rst",
            category="{study}",
            subcategory="online learning",
        ),
        figures=report(
            directory(f"{RESULTS}/{{study}}/evaluation/online/figures"),
            patterns=["{name}.png"],
            caption="../report/online.rst",
            category="{study}",
            subcategory="online learning",
            labels={"figure": "{name}"},
        ),
    wildcard_constraints:
        study=FORECAST,
    params:
        section=get_section("evaluate_online"),
        version=SURROFLOW_VERSION,
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        CONDA_ENV
    log:
        "logs/evaluate_online/{study}.log",
    benchmark:
        f"{RESULTS}/{{study}}/benchmarks/evaluate_online.tsv"
    script:
        "../scripts/evaluate_online.py"
