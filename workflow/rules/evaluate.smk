# evaluate: error split, measured speed-up and offline cost, figures for the report.

FIGURES = ["singular_values", "fields", "error_parameters", "error_split"]


rule evaluate_surrogates:
    wildcard_constraints:
        study="|".join(s for s, c in config["studies"].items() if c["task"] == "parametric") or "(?!x)x",
    input:
        unpack(lambda w: {"test": f"{RESULTS}/{w.study}/generate/test.nc",
                          "train": f"{RESULTS}/{w.study}/generate/train.nc",
                          "bases": get_basis_files(w),
                          **get_local_outputs(w),
                          **{f"model_{k}": v for k, v in get_model_files(w).items()}}),
    output:
        metrics=f"{RESULTS}/{{study}}/evaluation/metrics.nc",
        summary=report(f"{RESULTS}/{{study}}/evaluation/summary.csv",
                       caption="../report/summary.rst", category="{study}", subcategory="summary"),
        singular_values=report(f"{RESULTS}/{{study}}/figures/singular_values.png",
                               caption="../report/singular_values.rst", category="{study}", subcategory="reduction"),
        fields=report(f"{RESULTS}/{{study}}/figures/fields.png",
                      caption="../report/fields.rst", category="{study}", subcategory="fields"),
        error_parameters=report(f"{RESULTS}/{{study}}/figures/error_parameters.png",
                                caption="../report/error_parameters.rst", category="{study}", subcategory="errors"),
        error_split=report(f"{RESULTS}/{{study}}/figures/error_split.png",
                           caption="../report/error_split.rst", category="{study}", subcategory="errors"),
    params:
        evaluation=lambda w: study_cfg(w.study)["evaluation"],
        surrogates=lambda w: list(study_cfg(w.study)["surrogates"]),
        section=sections("evaluate"),
        version=SURROFLOW_VERSION,
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
