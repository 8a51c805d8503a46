# adaptive sampling (design.adaptive of a parametric study): round after round an error
# indicator picks the next high-fidelity runs (results/<study>/rounds/<r>/); adapt_round is a
# checkpoint whose `stop` attribute says whether round r + 1 exists.  Then adaptive against
# one-shot sampling of the same budget on the test design.


rule generate_round:
    input:
        design=get_round_design,
    output:
        data=f"{RESULTS}/{{study}}/rounds/{{round}}/generate.nc",
    wildcard_constraints:
        study=ADAPTIVE,
        round=r"[1-9]\d*",
    params:
        section=get_section("generate_round"),
        dask=config["dask"],
        version=SURROFLOW_VERSION,
    threads: get_generate_threads
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        CONDA_ENV
    log:
        "logs/generate_round/{study}_{round}.log",
    benchmark:
        f"{RESULTS}/{{study}}/benchmarks/generate_round_{{round}}.tsv"
    script:
        "../scripts/generate_round.py"


checkpoint adapt_round:
    input:
        train=f"{RESULTS}/{{study}}/generate/train.nc",
        rounds=get_round_data,
    output:
        model=f"{RESULTS}/{{study}}/rounds/{{round}}/model.nc",
        indicator=f"{RESULTS}/{{study}}/rounds/{{round}}/indicator.nc",
        selected=f"{RESULTS}/{{study}}/rounds/{{round}}/selected.nc",
    wildcard_constraints:
        study=ADAPTIVE,
        round=r"\d+",
    params:
        section=get_section("adapt_round"),
        version=SURROFLOW_VERSION,
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        CONDA_ENV
    log:
        "logs/adapt_round/{study}_{round}.log",
    benchmark:
        f"{RESULTS}/{{study}}/benchmarks/adapt_round_{{round}}.tsv"
    script:
        "../scripts/adapt_round.py"


rule evaluate_adaptive:
    input:
        unpack(get_adaptive_rounds),
        train=f"{RESULTS}/{{study}}/generate/train.nc",
        test=f"{RESULTS}/{{study}}/generate/test.nc",
    output:
        curve=f"{RESULTS}/{{study}}/evaluation/adaptive_curve.csv",
        summary=report(
            f"{RESULTS}/{{study}}/evaluation/adaptive_summary.csv",
            caption="../report/adaptive_summary.rst",
            category="{study}",
            subcategory="adaptive sampling",
        ),
        summary_html=report(
            f"{RESULTS}/{{study}}/evaluation/adaptive_summary.html",
            caption="../report/adaptive_summary.rst",
            category="{study}",
            subcategory="adaptive sampling",
        ),
        figures=report(
            directory(f"{RESULTS}/{{study}}/evaluation/adaptive_figures"),
            patterns=["{name}.png"],
            caption="../report/adaptive_figures.rst",
            category="{study}",
            subcategory="adaptive sampling",
            labels={"figure": "{name}"},
        ),
    wildcard_constraints:
        study=ADAPTIVE,
    params:
        section=get_section("evaluate_adaptive"),
        version=SURROFLOW_VERSION,
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        CONDA_ENV
    log:
        "logs/evaluate_adaptive/{study}.log",
    benchmark:
        f"{RESULTS}/{{study}}/benchmarks/evaluate_adaptive.tsv"
    script:
        "../scripts/evaluate_adaptive.py"
