# model_error: an imperfect model assimilates sparse noisy observations of the training truth
# (ensemble Kalman filter), its analysis increments are regressed on candidate terms (passes of
# filter, regression and correction: one rule, the passes depend on each other), and the
# corrected model is scored against the imperfect and the true model on the test design.


rule discover_model_error:
    input:
        train=f"{RESULTS}/{{study}}/generate/train.nc",
    output:
        analysis=f"{RESULTS}/{{study}}/model_error/analysis.nc",
        correction=f"{RESULTS}/{{study}}/model_error/correction.nc",
        csv=f"{RESULTS}/{{study}}/model_error/correction.csv",
        html=report(
            f"{RESULTS}/{{study}}/model_error/correction.html",
            caption="../report/model_error_correction.rst",
            category="{study}",
            subcategory="model error",
        ),
        figure=report(
            f"{RESULTS}/{{study}}/model_error/coefficients.png",
            caption="../report/model_error_correction.rst",
            category="{study}",
            subcategory="model error",
        ),
    wildcard_constraints:
        study=MODEL_ERROR,
    params:
        section=get_section("discover_model_error"),
        version=SURROFLOW_VERSION,
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        CONDA_ENV
    log:
        "logs/discover_model_error/{study}.log",
    benchmark:
        f"{RESULTS}/{{study}}/benchmarks/discover_model_error.tsv"
    script:
        "../scripts/discover_model_error.py"


rule evaluate_model_error:
    input:
        train=f"{RESULTS}/{{study}}/generate/train.nc",
        test=f"{RESULTS}/{{study}}/generate/test.nc",
        correction=f"{RESULTS}/{{study}}/model_error/correction.nc",
    output:
        metrics=f"{RESULTS}/{{study}}/evaluation/metrics.nc",
        summary=report(
            f"{RESULTS}/{{study}}/evaluation/summary.csv",
            caption="../report/model_error_summary.rst",
            category="{study}",
            subcategory="summary",
        ),
        summary_html=report(
            f"{RESULTS}/{{study}}/evaluation/summary.html",
            caption="../report/model_error_summary.rst",
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
        study=MODEL_ERROR,
    params:
        section=get_section("evaluate_model_error"),
        version=SURROFLOW_VERSION,
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        CONDA_ENV
    log:
        "logs/evaluate_model_error/{study}.log",
    benchmark:
        f"{RESULTS}/{{study}}/benchmarks/evaluate_model_error.tsv"
    script:
        "../scripts/evaluate_model_error.py"
