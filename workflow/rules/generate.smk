# generate: design of experiments, high-fidelity runs batch by batch (dask inside each job);
# or, for a `files` study, the existing results imported split by split.


rule make_design:
    output:
        train=f"{RESULTS}/{{study}}/design/train.nc",
        test=f"{RESULTS}/{{study}}/design/test.nc",
        calibration=f"{RESULTS}/{{study}}/design/calibration.nc",
    wildcard_constraints:
        study=SIMULATED,
    params:
        section=get_section("make_design"),
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
    wildcard_constraints:
        study=SIMULATED,
    params:
        section=get_section("generate_batch"),
        dask=config["dask"],
        version=SURROFLOW_VERSION,
    threads: get_generate_threads
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
        design=f"{RESULTS}/{{study}}/design/{{split}}.nc",
        batches=get_batch_files,
    output:
        data=f"{RESULTS}/{{study}}/generate/{{split}}.nc",
    wildcard_constraints:
        study=SIMULATED,
    params:
        section=get_section("collect_batches"),
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


rule import_files:
    input:
        table=get_files_table,
    output:
        data=f"{RESULTS}/{{study}}/generate/{{split}}.nc",
    wildcard_constraints:
        study=IMPORTED,
    params:
        section=get_section("import_files"),
        version=SURROFLOW_VERSION,
    resources:
        mem_mb=2000,
    conda:
        CONDA_ENV
    log:
        "logs/import_files/{study}_{split}.log",
    benchmark:
        f"{RESULTS}/{{study}}/benchmarks/import_files_{{split}}.tsv"
    script:
        "../scripts/import_files.py"
