# uq: propagation of input uncertainty and Sobol sensitivity on one trained surrogate, with a
# high-fidelity check run in the same job (parametric studies with a `uq:` section).

rule propagate_uq:
    input:
        train=f"{RESULTS}/{{study}}/generate/train.nc",
        bases=get_uq_bases,
        model=get_uq_model,
    output:
        statistics=f"{RESULTS}/{{study}}/uq/statistics.nc",
        summary=report(
            f"{RESULTS}/{{study}}/uq/summary.csv",
            caption="../report/uq_summary.rst",
            category="{study}",
            subcategory="uncertainty",
        ),
        summary_html=report(
            f"{RESULTS}/{{study}}/uq/summary.html",
            caption="../report/uq_summary.rst",
            category="{study}",
            subcategory="uncertainty",
        ),
        figures=report(
            directory(f"{RESULTS}/{{study}}/uq/figures"),
            patterns=["{name}.png"],
            caption="../report/uq_figures.rst",
            category="{study}",
            subcategory="uncertainty",
            labels={"figure": "{name}"},
        ),
    wildcard_constraints:
        study=UQ,
    params:
        section=get_section("propagate_uq"),
        version=SURROFLOW_VERSION,
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        CONDA_ENV
    log:
        "logs/propagate_uq/{study}.log",
    benchmark:
        f"{RESULTS}/{{study}}/benchmarks/propagate_uq.tsv"
    script:
        "../scripts/propagate_uq.py"
