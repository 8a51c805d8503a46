# generate: design of experiments, high-fidelity runs batch by batch (dask inside each job).


rule make_design:
    output:
        train=f"{RESULTS}/{{study}}/design/train.nc",
        test=f"{RESULTS}/{{study}}/design/test.nc",
    params:
        simulator=get_simulator_section,
        design=lambda w: study_cfg(w.study)["design"],
        section=sections("design"),
        version=SURROFLOW_VERSION,
    conda:
        CONDA_ENV
    log:
        "logs/make_design/{study}.log",
    benchmark:
        f"{RESULTS}/{{study}}/benchmarks/make_design.tsv"
    script:
        "../scripts/make_design.py"


rule generate_batch:
    input:
        design=f"{RESULTS}/{{study}}/design/{{split}}.nc",
    output:
        batch=f"{RESULTS}/{{study}}/generate/{{split}}/batch_{{batch}}.nc",
    params:
        simulator=get_simulator_section,
        batch_size=lambda w: study_cfg(w.study)["design"]["batch_size"],
        dask=config["dask"],
        section=sections("generate_batch"),
        version=SURROFLOW_VERSION,
    threads: 2
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        CONDA_ENV
    log:
        "logs/generate_batch/{study}_{split}_{batch}.log",
    benchmark:
        f"{RESULTS}/{{study}}/benchmarks/generate_batch_{{split}}_{{batch}}.tsv"
    script:
        "../scripts/generate_batch.py"


rule collect_batches:
    input:
        batches=get_batch_files,
    output:
        data=f"{RESULTS}/{{study}}/generate/{{split}}.nc",
    params:
        max_failure_fraction=lambda w: study_cfg(w.study)["simulator"]["max_failure_fraction"],
        section=sections("generate"),
        version=SURROFLOW_VERSION,
    resources:
        mem_mb=2000,
    conda:
        CONDA_ENV
    log:
        "logs/collect_batches/{study}_{split}.log",
    benchmark:
        f"{RESULTS}/{{study}}/benchmarks/collect_batches_{{split}}.tsv"
    script:
        "../scripts/collect_batches.py"


# Existing results (simulator `files`): the parameter table + result files are converted
# into the generate dataset directly; the table's `split` column says train or test.
FILES_STUDIES = [s for s, c in config["studies"].items() if c["simulator"]["name"] == "files"]


rule import_files:
    input:
        table=lambda w: study_cfg(w.study)["simulator"]["settings"]["table"],
    output:
        data=f"{RESULTS}/{{study}}/generate/{{split}}.nc",
    wildcard_constraints:
        study="|".join(FILES_STUDIES) or "(?!x)x",
    params:
        settings=lambda w: study_cfg(w.study)["simulator"]["settings"],
        section=sections("generate"),
        version=SURROFLOW_VERSION,
    conda:
        CONDA_ENV
    log:
        "logs/import_files/{study}_{split}.log",
    benchmark:
        f"{RESULTS}/{{study}}/benchmarks/import_files_{{split}}.tsv"
    script:
        "../scripts/import_files.py"


ruleorder: import_files > collect_batches
